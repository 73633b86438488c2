"""The lease lifecycle engine: keep database credentials and tokens valid, forever.

Public names only; the work happens in the private modules.
"""

from ._clock import Clock, SystemClock, VirtualClock
from ._handle import EventCallback, ManagedSecret
from ._manager import DEFAULT_DRAIN_PERIOD, LeaseManager
from ._models import EventKind, Grant, Lease, LeaseEvent, SecretKind, SecretState
from ._sources import SecretSource, database_dynamic, database_static, token_login

__all__ = [
    "DEFAULT_DRAIN_PERIOD",
    "Clock",
    "EventCallback",
    "EventKind",
    "Grant",
    "Lease",
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
