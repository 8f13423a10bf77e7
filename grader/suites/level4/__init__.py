"""Level 4 suites: the production monitor (history, retries, alerts, metrics, admin API)."""
