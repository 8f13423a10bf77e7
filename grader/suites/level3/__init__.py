"""Level 3 suites: Celery beat, tasks, workers and FastAPI (the Redis coordinator comes later)."""
