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
    UnexpectedStatus,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
    VaultUnavailable,
)
from ._models import AuthResult, HealthStatus, LeaseInfo, SealStatus, Secret, TokenInfo, WrapInfo
from .auth import (
    AppRoleAuth,
    AuthMethod,
    JWTAuth,
    KubernetesAuth,
    LDAPAuth,
    TokenAuth,
    UserpassAuth,
)

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
    "LeaseInfo",
    "MalformedResponse",
    "PreconditionFailed",
    "RateLimited",
    "RetryPolicy",
    "SealStatus",
    "Secret",
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
