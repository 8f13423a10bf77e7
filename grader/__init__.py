"""cronkata's grading harness: catalog, virtual time, isolated loading, pytest plugin and CLI."""

__version__ = "0.1.0"
