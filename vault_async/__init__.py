"""vault_async: a native asyncio client for HashiCorp Vault / OpenBao."""

from ._client import AsyncVaultClient
from ._config import ClientConfig, RetryPolicy
from ._exceptions import (
    BadGateway,
    Forbidden,
    InternalServerError,
    InvalidConfig,
    InvalidPath,
    InvalidRequest,
    MalformedResponse,
    PreconditionFailed,
    RateLimited,
    ResponseTooLarge,
    UnexpectedStatus,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
    VaultUnavailable,
)
from ._models import AuthResult, HealthStatus, LeaseInfo, SealStatus, Secret, TokenInfo, WrapInfo
from ._nodes import NodeStatus
from .auth import (
    AppRoleAuth,
    AuthMethod,
    JWTAuth,
    KubernetesAuth,
    LDAPAuth,
    TokenAuth,
    UserpassAuth,
)
from .lifecycle import Lease, LeaseEvent, LeaseManager, ManagedSecret, SecretState

__all__ = [
    "AppRoleAuth",
    "AsyncVaultClient",
    "AuthMethod",
    "AuthResult",
    "BadGateway",
    "ClientConfig",
    "Forbidden",
    "HealthStatus",
    "InternalServerError",
    "InvalidConfig",
    "InvalidPath",
    "InvalidRequest",
    "JWTAuth",
    "KubernetesAuth",
    "LDAPAuth",
    "Lease",
    "LeaseEvent",
    "LeaseInfo",
    "LeaseManager",
    "MalformedResponse",
    "ManagedSecret",
    "NodeStatus",
    "PreconditionFailed",
    "RateLimited",
    "ResponseTooLarge",
    "RetryPolicy",
    "SealStatus",
    "Secret",
    "SecretState",
    "TokenAuth",
    "TokenInfo",
    "UnexpectedStatus",
    "UserpassAuth",
    "VaultConnectionError",
    "VaultError",
    "VaultTimeout",
    "VaultUnavailable",
    "WrapInfo",
]
