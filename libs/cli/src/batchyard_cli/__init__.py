"""The `batchyard` command line: a typed HTTP client of the batch API and typer commands over it."""

__version__ = "0.1.0"
