"""`batchyard-api`: the HTTP API on BATCHYARD_HTTP_PORT (default 8000)."""

from __future__ import annotations

from batch_api.bootstrap import ApiSettings, bootstrap
from servicekit.logging import configure_logging
from servicekit.runtime import serve
from servicekit.tracing import configure_tracing


def main() -> None:
    settings = ApiSettings()
    configure_logging("batch-api", settings.log_level)
    configure_tracing("batch-api")
    serve(bootstrap(settings), settings)


if __name__ == "__main__":
    main()
