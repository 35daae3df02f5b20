"""Background jobs: small idempotent coroutines, run by arq workers or in-process."""
