"""Static secrets from Vault KV v2, AWS Secrets Manager and GCP Secret Manager.

One interface (:class:`StaticSecretProvider`) with a TTL cache and change events; each
provider imports its SDK only when it first reads a secret::

    from vault_async.static import aws_secrets_manager, gcp_secret_manager, vault_kv
"""

from ._core import DEFAULT_TTL, CachedSecrets, ChangeCallback, SecretFetcher, StaticSecretProvider
from ._errors import (
    MissingExtra,
    SecretAccessDenied,
    SecretConfigError,
    SecretNotFound,
    SecretUnavailable,
    StaticSecretError,
)
from ._value import SecretChange, StaticSecret
from .aws import AwsSecretsManagerFetcher, aws_secrets_manager
from .gcp import GcpSecretManagerFetcher, gcp_secret_manager
from .vault_kv import VaultKvFetcher, vault_kv

__all__ = [
    "DEFAULT_TTL",
    "AwsSecretsManagerFetcher",
    "CachedSecrets",
    "ChangeCallback",
    "GcpSecretManagerFetcher",
    "MissingExtra",
    "SecretAccessDenied",
    "SecretChange",
    "SecretConfigError",
    "SecretFetcher",
    "SecretNotFound",
    "SecretUnavailable",
    "StaticSecret",
    "StaticSecretError",
    "StaticSecretProvider",
    "VaultKvFetcher",
    "aws_secrets_manager",
    "gcp_secret_manager",
    "vault_kv",
]
