"""``python -m devstack``: same as the ``batchyard-dev`` console script."""

from devstack.cli import main

raise SystemExit(main())
