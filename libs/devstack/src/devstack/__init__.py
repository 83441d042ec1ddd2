"""Batchyard local dev stack: Kafka (KRaft), FerretDB and the services, run by PID.

Run it as ``python -m devstack <command>`` or ``batchyard-dev <command>`` from
anywhere inside the repo. Tests can reuse :mod:`devstack.services` to start an
isolated copy of the services against the running infrastructure.
"""

__version__ = "0.1.0"
