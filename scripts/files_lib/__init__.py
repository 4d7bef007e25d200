"""scripts/files-per-request: the project's files that run code while the real proxy serves one request."""
