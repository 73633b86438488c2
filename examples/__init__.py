"""Example services on the lease engine; each starts with ``python -m examples.<name>``."""
