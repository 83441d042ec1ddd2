"""Batchyard's built-in job types, registered as `batchyard.job_types` entry points:
`demo.sleep`, `http.request`, `templates.consolidate` and `files.extract_metadata`.

They live in a library rather than in the executor because two services host them: the
executors run them and the rollback service calls their `compensate` hooks."""
