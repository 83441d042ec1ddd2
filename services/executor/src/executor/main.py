"""`batchyard-executor`: runs jobs; health and metrics on BATCHYARD_HTTP_PORT."""

from __future__ import annotations

from executor.bootstrap import ExecutorSettings, bootstrap
from servicekit.logging import configure_logging
from servicekit.runtime import serve
from servicekit.tracing import configure_tracing


def main() -> None:
    settings = ExecutorSettings()
    configure_logging("executor", settings.log_level)
    configure_tracing("executor")
    app, _ = bootstrap(settings)
    serve(app, settings)


if __name__ == "__main__":
    main()
