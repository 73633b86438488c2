"""The service's settings, from the environment (the contract is in the README).

One job, reading and checking the contract; past 300 lines because every setting's check
and its one-line error sit beside its declaration, where a reader looks for them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from vault_async._config import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from vault_async.auth.kubernetes import DEFAULT_JWT_FILE

from ._durations import parse_seconds
from .telemetry import OTEL_MISSING, otel_installed

__all__ = [
    "DEFAULT_MAX_REQUEST_BODY_BYTES",
    "ENVIRONMENT",
    "MAX_STARTUP_JITTER",
    "LogFormat",
    "LogLevel",
    "Settings",
    "SettingsError",
    "check_credential_files",
    "load_settings",
]

AuthMethodName = Literal["token", "approle", "kubernetes", "jwt"]
CredsFileFormat = Literal["json", "env"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]

DEFAULT_MAX_REQUEST_BODY_BYTES = 64 * 1024
"""A user is two short strings: 64 KiB is ample, and bounds what one request can cost."""

MAX_STARTUP_JITTER = 600.0
"""Longest VAULT_STARTUP_JITTER: 10 minutes spread even thousands of replicas under a login
quota of a few per second, while a slip of unit cannot hold a replica unready for hours."""


ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("VAULT_ADDR", "Vault's address, e.g. https://vault:8200"),
    ("VAULT_FAILOVER_ADDRS", "more nodes of the same cluster, comma-separated, tried in order"),
    ("VAULT_NAMESPACE", "OpenBao (2.3+) or Vault Enterprise namespace, e.g. team-a or team-a/app"),
    ("VAULT_CACERT", "PEM file of the CA that signed Vault's certificate"),
    ("VAULT_CAPATH", "directory of PEM CA certificates (no hash links needed)"),
    ("VAULT_TLS_SERVER_NAME", "host name Vault's certificate is checked against"),
    ("VAULT_CLIENT_CERT", "client certificate (PEM) for TLS client auth"),
    ("VAULT_CLIENT_KEY", "private key of VAULT_CLIENT_CERT"),
    ("VAULT_SKIP_VERIFY", "true: Vault's certificate is not checked (never in production)"),
    ("VAULT_CLIENT_TIMEOUT", f"seconds per Vault request (default {DEFAULT_TIMEOUT:g})"),
    ("VAULT_MAX_RETRIES", f"retries of a failed Vault request (default {DEFAULT_MAX_RETRIES})"),
    (
        "VAULT_MAX_RESPONSE_BYTES",
        f"largest Vault answer read (default {DEFAULT_MAX_RESPONSE_BYTES // 2**20} MiB)",
    ),
    ("VAULT_TOKEN", "token auth (the default method)"),
    (
        "VAULT_TOKEN_FILE",
        "token auth from a file an Agent's auto-auth writes (its sink): re-read when it "
        "changes, never renewed or revoked",
    ),
    ("VAULT_AUTH_METHOD", "token (default), approle, kubernetes or jwt"),
    ("VAULT_AUTH_MOUNT", "mount of the auth method, when not its default"),
    ("VAULT_ROLE_ID", "AppRole role ID"),
    ("VAULT_SECRET_ID", "AppRole secret ID (or VAULT_SECRET_ID_FILE)"),
    ("VAULT_SECRET_ID_FILE", "file holding the AppRole secret ID"),
    ("VAULT_AUTH_ROLE", "Kubernetes or JWT role"),
    ("VAULT_JWT_FILE", "file holding the JWT (jwt; kubernetes has a default)"),
    ("DATABASE_URL", "postgresql+asyncpg://host:port/dbname, no credentials in Vault mode"),
    ("VAULT_DB_MOUNT", "database secrets engine mount (default database)"),
    ("VAULT_DB_ROLE", "dynamic database role the service logs in with"),
    ("VAULT_DB_STATIC_ROLE", "static database role instead of VAULT_DB_ROLE"),
    (
        "VAULT_DB_CREDS_FILE",
        "file an Agent template renders database/creds/<role> to, instead of VAULT_DB_ROLE "
        "(the Agent owns the lease; VAULT_ADDR optional)",
    ),
    ("VAULT_DB_CREDS_FORMAT", "json or env (KEY=value lines); default: detected"),
    ("DB_ASSUME_ROLE", "SET ROLE on each of the service's connections"),
    ("VAULT_DB_MIGRATION_ROLE", "role Alembic logs in with (default VAULT_DB_ROLE)"),
    ("DB_OWNER_ROLE", "role migrations SET ROLE to, so it owns every object"),
    ("VAULT_STARTUP_TIMEOUT", "seconds to wait for the first token and credential (default 30)"),
    (
        "VAULT_STARTUP_JITTER",
        "longest random wait before the first login, e.g. 10s, to spread a fleet "
        "(default 0, at most 10m)",
    ),
    ("DB_POOL_SIZE", "connections the pool keeps open (default 10)"),
    ("DB_POOL_OVERFLOW", "connections opened past DB_POOL_SIZE under load (default 10)"),
    (
        "DB_POOL_PREWARM",
        "true (default): a rotation opens the new login's connections before the old ones go",
    ),
    (
        "DB_POOL_PREWARM_MARGIN",
        "connections a rotation may open past size plus overflow (default: a tenth, at least 2)",
    ),
    ("VAULT_HEALTH_PROBE_INTERVAL", "seconds of Vault silence before /healthz asks (default 10)"),
    (
        "MAX_REQUEST_BODY_BYTES",
        f"largest request body accepted, else 413 (default {DEFAULT_MAX_REQUEST_BODY_BYTES})",
    ),
    ("LOG_LEVEL", "DEBUG, INFO (default), WARNING or ERROR; no level logs a secret"),
    ("LOG_FORMAT", "text (default: event then key=value fields) or json (one object a line)"),
    ("OTEL_ENABLED", "true: Vault requests and lease events as OpenTelemetry spans, and metrics"),
)
"""Every variable the service reads, with its meaning: ``python -m app --help`` shows it."""


class SettingsError(Exception):
    """A missing or contradictory setting; the message is one line naming it."""


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() is the one reader of the environment, so that a mapping can stand
        # in for it; pydantic-settings' own source would merge os.environ back in.
        return (init_settings,)

    vault_addr: str | None = None
    vault_namespace: str | None = None
    vault_cacert: Path | None = None
    vault_token: SecretStr | None = None
    vault_token_file: Path | None = None
    vault_auth_method: AuthMethodName | None = None
    vault_auth_mount: str | None = None
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    vault_secret_id_file: Path | None = None
    vault_auth_role: str | None = None
    vault_jwt_file: Path | None = None

    database_url: str = Field(...)
    vault_db_mount: str = "database"
    vault_db_role: str | None = None
    vault_db_static_role: str | None = None
    vault_db_creds_file: Path | None = None
    vault_db_creds_format: CredsFileFormat | None = None
    db_assume_role: str | None = None
    vault_db_migration_role: str | None = None
    db_owner_role: str | None = None
    vault_startup_timeout: float = Field(default=30.0, gt=0)
    vault_health_probe_interval: float = Field(default=10.0, gt=0)
    vault_startup_jitter: float = 0.0
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_pool_overflow: int = Field(default=10, ge=0, le=1000)
    db_pool_prewarm: bool = True
    db_pool_prewarm_margin: int | None = Field(default=None, ge=0, le=1000)
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"
    max_request_body_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BODY_BYTES, gt=0)
    otel_enabled: bool = False

    @field_validator("otel_enabled")
    @classmethod
    def _otel_installed(cls, value: bool) -> bool:
        if value and not otel_installed():
            raise ValueError(OTEL_MISSING)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("vault_auth_method", "log_format", "vault_db_creds_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "vault_startup_timeout", "vault_health_probe_interval", "vault_startup_jitter",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            seconds = parse_seconds(value)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds):
            raise ValueError(f"must be a duration such as 10s, 500ms or 1m30s, got {value[:40]!r}")
        return seconds

    @field_validator("vault_startup_jitter")
    @classmethod
    def _bounded_jitter(cls, value: float) -> float:
        if not 0.0 <= value <= MAX_STARTUP_JITTER:
            raise ValueError(
                f"must be >= 0 and at most 10m ({MAX_STARTUP_JITTER:g} s), got {value:g} s"
            )
        return value

    @field_validator("vault_addr")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = urlsplit("")
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"must start with http:// or https:// and name a host, got {value[:100]!r}"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        if url.drivername != "postgresql+asyncpg":
            raise ValueError("must start with postgresql+asyncpg://")
        if not url.host or not url.database:
            raise ValueError("needs a host and a database name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.vault_db_role and self.vault_db_static_role:
            raise ValueError("VAULT_DB_ROLE and VAULT_DB_STATIC_ROLE are exclusive; set one")
        if self.vault_db_creds_file and (self.vault_db_role or self.vault_db_static_role):
            raise ValueError(
                "VAULT_DB_CREDS_FILE replaces VAULT_DB_ROLE and VAULT_DB_STATIC_ROLE; set one"
            )
        if self.vault_db_creds_format and not self.vault_db_creds_file:
            raise ValueError("VAULT_DB_CREDS_FORMAT needs VAULT_DB_CREDS_FILE")
        url = make_url(self.database_url)
        if self.vault_mode or self.file_mode:
            if url.username or url.password:
                raise ValueError(
                    "DATABASE_URL must not carry a user or password when Vault supplies them"
                )
            if self.vault_mode and not self.vault_addr:
                raise ValueError("VAULT_ADDR is required with VAULT_DB_ROLE/VAULT_DB_STATIC_ROLE")
            if self.vault_addr:
                self._check_auth()
        elif not url.username:
            raise ValueError(
                "set VAULT_DB_ROLE, VAULT_DB_STATIC_ROLE or VAULT_DB_CREDS_FILE, "
                "or put a user in DATABASE_URL"
            )
        return self

    def _check_auth(self) -> None:
        method = self.auth_method
        if self.vault_token_file is not None and method != "token":
            raise ValueError(f"VAULT_TOKEN_FILE is token auth: unset it with {method}")
        if method == "token" and (self.vault_token is None) == (self.vault_token_file is None):
            if self.vault_token is not None:
                raise ValueError("VAULT_TOKEN and VAULT_TOKEN_FILE are exclusive; set one")
            raise ValueError(
                "VAULT_TOKEN or VAULT_TOKEN_FILE is required (or set VAULT_AUTH_METHOD)"
            )
        if method == "approle":
            if not self.vault_role_id:
                raise ValueError("VAULT_ROLE_ID is required with VAULT_AUTH_METHOD=approle")
            if (self.vault_secret_id is None) == (self.vault_secret_id_file is None):
                raise ValueError(
                    "set exactly one of VAULT_SECRET_ID and VAULT_SECRET_ID_FILE for approle"
                )
        if method in ("kubernetes", "jwt"):
            if not self.vault_auth_role:
                raise ValueError(f"VAULT_AUTH_ROLE is required with VAULT_AUTH_METHOD={method}")
            if method == "jwt" and self.vault_jwt_file is None:
                raise ValueError("VAULT_JWT_FILE is required with VAULT_AUTH_METHOD=jwt")

    @property
    def auth_method(self) -> AuthMethodName:
        return self.vault_auth_method or "token"

    @property
    def vault_mode(self) -> bool:
        """The lease engine obtains the database credential (VAULT_DB_ROLE/STATIC_ROLE)."""
        return bool(self.vault_db_role or self.vault_db_static_role)

    @property
    def file_mode(self) -> bool:
        """The database credential is read from VAULT_DB_CREDS_FILE (an Agent renders it)."""
        return self.vault_db_creds_file is not None

    @property
    def uses_vault(self) -> bool:
        """A Vault client is opened: Vault mode, or file mode with VAULT_ADDR set."""
        return self.vault_mode or (self.file_mode and bool(self.vault_addr))

    @property
    def migration_role(self) -> str | None:
        return self.vault_db_migration_role or self.vault_db_role


def check_credential_files(settings: Settings) -> None:
    """The login's credential file is readable and not empty: checked before Vault is asked.

    Separate from :func:`load_settings`, which checks the contract alone (a file mounted
    only where the service runs is no error there). The contents are not kept.
    """
    if not settings.uses_vault:
        return
    method = settings.auth_method
    if method == "token" and settings.vault_token_file is not None:
        _check_readable(settings.vault_token_file, "VAULT_TOKEN_FILE")
    if method == "approle" and settings.vault_secret_id_file is not None:
        _check_readable(settings.vault_secret_id_file, "VAULT_SECRET_ID_FILE")
    if method in ("kubernetes", "jwt"):
        _check_readable(settings.vault_jwt_file or Path(DEFAULT_JWT_FILE), "VAULT_JWT_FILE")


def _check_readable(path: Path, setting: str) -> None:
    try:
        with path.open("rb") as file:
            empty = not file.read(4096).strip()
    except OSError as error:
        raise SettingsError(f"cannot read {setting} '{path}': {error.strerror}") from None
    if empty:
        raise SettingsError(f"{setting} '{path}' is empty")


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if not loc:
        return message
    name = loc[0].upper()
    if first.get("type") == "missing":
        return f"{name} is required"
    return f"{name} {message}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the settings; raise SettingsError with one line on a problem."""
    env = os.environ if environ is None else environ
    values = {
        name: env[name.upper()]
        for name in Settings.model_fields
        if (env.get(name.upper()) or "").strip()  # blank is unset
    }
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise SettingsError(_one_line(error)) from None
