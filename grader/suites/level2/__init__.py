"""Level 2 suites: real jobs with APScheduler (database, persistence, misfires, failures)."""
