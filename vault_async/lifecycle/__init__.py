"""The lease lifecycle engine: keep database credentials and tokens valid, forever.

Public names only; the work happens in the private modules.
"""

from ._clock import Clock, SystemClock, VirtualClock
from ._config import DEFAULT_DRAIN_PERIOD, LeaseConfig
from ._events import EventCallback
from ._handle import ManagedSecret
from ._manager import LeaseManager
from ._models import EventKind, Grant, Lease, LeaseEvent, SecretKind, SecretState
from ._sources import SecretSource, database_dynamic, database_static, token_login

__all__ = [
    "DEFAULT_DRAIN_PERIOD",
    "Clock",
    "EventCallback",
    "EventKind",
    "Grant",
    "Lease",
    "LeaseConfig",
    "LeaseEvent",
    "LeaseManager",
    "ManagedSecret",
    "SecretKind",
    "SecretSource",
    "SecretState",
    "SystemClock",
    "VirtualClock",
    "database_dynamic",
    "database_static",
    "token_login",
]
