"""Level 1 suites: hello world with APScheduler."""
