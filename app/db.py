"""The declarative base and the runtime the service builds from its settings."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from vault_async import AsyncVaultClient, ClientConfig
from vault_async._prometheus import LatencyRecorder, LatencyTransport
from vault_async._transport import Transport, default_transport
from vault_async.auth import AppRoleAuth, AuthMethod, JWTAuth, KubernetesAuth, TokenAuth
from vault_async.auth.kubernetes import DEFAULT_JWT_FILE
from vault_async.file_credentials import FileCredentials
from vault_async.lifecycle import LeaseConfig, LeaseManager
from vault_async.runtime import VaultRuntime, open_runtime
from vault_async.sqlalchemy import Prewarm

from .settings import Settings
from .telemetry import traced

__all__ = [
    "Base",
    "build_auth",
    "build_client",
    "build_credentials_file",
    "engine_options",
    "lease_config",
    "open_service_runtime",
    "prewarm",
]

POOL_TIMEOUT = 10
"""Seconds a request waits for a pooled connection before it fails."""

SHUTDOWN_TIMEOUT = 5.0
"""Seconds the lease engine may spend revoking at shutdown (SIGTERM-to-exit stays < 10 s)."""

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the service's models."""

    metadata = MetaData(naming_convention=NAMING)


def build_client(settings: Settings, latency: LatencyRecorder | None = None) -> AsyncVaultClient:
    """An unopened ``AsyncVaultClient`` for the settings (latency recorded when asked)."""
    # Client knobs (timeouts, retries, TLS client certs) come from VAULT_* as the client reads
    # them; the contract's own settings take precedence.
    config = ClientConfig.from_env().replace(
        addr=settings.vault_addr or "",
        token=settings.vault_token.get_secret_value() if settings.vault_token else None,
        namespace=settings.vault_namespace,
        ca_cert=str(settings.vault_cacert) if settings.vault_cacert else None,
    )
    transport: Transport = default_transport(config)
    if latency is not None:
        transport = LatencyTransport(transport, latency, config.timeout)
    return AsyncVaultClient(config=config, transport=transport)


def build_auth(settings: Settings) -> AuthMethod:
    """The auth method object named by ``VAULT_AUTH_METHOD``."""
    mount = settings.vault_auth_mount
    method = settings.auth_method
    if method == "approle":
        return AppRoleAuth(
            settings.vault_role_id or "",
            secret_id=settings.vault_secret_id.get_secret_value()
            if settings.vault_secret_id
            else None,
            secret_id_file=str(settings.vault_secret_id_file)
            if settings.vault_secret_id_file
            else None,
            mount_point=mount or "approle",
        )
    if method == "kubernetes":
        return KubernetesAuth(
            settings.vault_auth_role or "",
            jwt_file=settings.vault_jwt_file or DEFAULT_JWT_FILE,
            mount_point=mount or "kubernetes",
        )
    if method == "jwt":
        return JWTAuth(
            settings.vault_auth_role or "",
            jwt_file=str(settings.vault_jwt_file),
            mount_point=mount or "jwt",
        )
    if settings.vault_token_file is not None:
        return TokenAuth(token_file=settings.vault_token_file)
    token = settings.vault_token
    return TokenAuth(token=token.get_secret_value() if token else None)


def build_credentials_file(settings: Settings) -> FileCredentials | None:
    """The Agent-rendered credential file of ``VAULT_DB_CREDS_FILE`` (None when unset)."""
    if settings.vault_db_creds_file is None:
        return None
    return FileCredentials(
        settings.vault_db_creds_file,
        format=settings.vault_db_creds_format,
        name="VAULT_DB_CREDS_FILE",
    )


def lease_config(settings: Settings) -> LeaseConfig:
    """The lease engine's settings: the service's shutdown bound and start-up jitter."""
    return LeaseConfig(
        shutdown_timeout=SHUTDOWN_TIMEOUT, startup_jitter=settings.vault_startup_jitter
    )


def engine_options(settings: Settings) -> dict[str, Any]:
    """The same pool in every mode, so plain and Vault modes compare like with like."""
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_pool_overflow,
        "pool_timeout": POOL_TIMEOUT,
    }


def prewarm(settings: Settings) -> Prewarm:
    """How a rotation opens the new login's connections (DB_POOL_PREWARM*)."""
    return Prewarm(enabled=settings.db_pool_prewarm, margin=settings.db_pool_prewarm_margin)


def open_service_runtime(settings: Settings) -> AbstractAsyncContextManager[VaultRuntime]:
    """The runtime (client, lease engine, engine) for the service's settings."""
    latency = LatencyRecorder()
    if not settings.vault_mode and not settings.file_mode:
        plain = open_runtime(
            settings.database_url,
            latency=latency,
            engine_options=engine_options(settings),
            prewarm=prewarm(settings),
        )
        return traced(plain, None) if settings.otel_enabled else plain
    client = build_client(settings, latency) if settings.uses_vault else None
    manager = None if client is None else LeaseManager(client, lease_config(settings))
    opened = open_runtime(
        settings.database_url,
        client=client,
        manager=manager,
        auth=build_auth(settings) if client is not None else None,
        credentials=build_credentials_file(settings),
        db_role=settings.vault_db_role,
        db_static_role=settings.vault_db_static_role,
        db_mount=settings.vault_db_mount,
        assume_role=settings.db_assume_role,
        latency=latency,
        ready_timeout=settings.vault_startup_timeout,
        ready_timeout_name="VAULT_STARTUP_TIMEOUT",
        probe_interval=settings.vault_health_probe_interval,
        engine_options=engine_options(settings),
        prewarm=prewarm(settings),
    )
    return traced(opened, manager) if settings.otel_enabled else opened
