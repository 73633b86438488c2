"""A real OpenBao + PostgreSQL stack on loopback, for tests, benchmarks and local development."""

from ._configure import DevNamespace
from ._errors import DevStackError
from ._stack import DevStack

__all__ = ["DevNamespace", "DevStack", "DevStackError"]
