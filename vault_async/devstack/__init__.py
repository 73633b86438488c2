"""A real OpenBao + PostgreSQL stack on loopback, for tests, benchmarks and local development."""

from ._errors import DevStackError
from ._stack import DevNamespace, DevStack

__all__ = ["DevNamespace", "DevStack", "DevStackError"]
