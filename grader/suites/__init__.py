"""The hidden suites: one module per exercise, run against the learner's files by the plugin."""
