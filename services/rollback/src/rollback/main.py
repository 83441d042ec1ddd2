"""`batchyard-rollback`: runs rollbacks; health and metrics on its port."""

from __future__ import annotations

from rollback.bootstrap import bootstrap
from servicekit.logging import configure_logging
from servicekit.runtime import serve
from servicekit.settings import settings_with_port
from servicekit.tracing import configure_tracing


def main() -> None:
    settings = settings_with_port(8002)()
    configure_logging("rollback", settings.log_level)
    configure_tracing("rollback")
    app, _ = bootstrap(settings)
    serve(app, settings)


if __name__ == "__main__":
    main()
