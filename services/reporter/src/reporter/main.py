"""`batchyard-reporter`: projects events into read models; health and metrics on its port."""

from __future__ import annotations

from reporter.bootstrap import bootstrap
from reporter.settings import ReporterSettings
from servicekit.logging import configure_logging
from servicekit.runtime import serve
from servicekit.tracing import configure_tracing


def main() -> None:
    settings = ReporterSettings()
    configure_logging("reporter", settings.log_level)
    configure_tracing("reporter")
    app, _ = bootstrap(settings)
    serve(app, settings)


if __name__ == "__main__":
    main()
