"""A failed start (service or migrations) as one line naming the setting to fix, and an exit code.

Exit codes, the same for ``python -m app`` and ``alembic upgrade head``:

- 0: a clean stop (also Ctrl-C or SIGTERM);
- 1: Vault or the database refused, or did not answer, at start-up;
- 2: a setting is wrong (found before Vault is asked, or an argument the client rejects);
- 3: the service cannot listen on ``--host``/``--port`` (in use, or not allowed).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from vault_async import Forbidden, InvalidConfig, InvalidPath
from vault_async.runtime import StartupError

from .settings import Settings, SettingsError

__all__ = ["EXIT_CANNOT_LISTEN", "EXIT_REFUSED", "EXIT_SETTING", "Failure", "explain"]

EXIT_REFUSED = 1
EXIT_SETTING = 2
EXIT_CANNOT_LISTEN = 3


@dataclass(frozen=True, slots=True)
class Failure:
    """What to print (one line, to stderr) and the exit code."""

    code: int
    line: str


def explain(
    error: BaseException,
    settings: Settings | None,
    *,
    what: str = "start-up failed",
    db_role_setting: str = "VAULT_DB_ROLE",
) -> Failure:
    """One line for ``error``; ``db_role_setting`` names the role the database login came from."""
    if isinstance(error, SettingsError):
        return Failure(EXIT_SETTING, f"configuration error: {error}")
    if isinstance(error, InvalidConfig):
        return Failure(EXIT_SETTING, f"configuration error: {error.message}")
    if isinstance(error, StartupError):
        hint = _startup_hint(error, settings, db_role_setting)
        if error.reason == "invalid":  # an argument the client rejected before sending
            return Failure(EXIT_SETTING, f"configuration error: {error} ({hint})")
        return Failure(EXIT_REFUSED, f"{what}: {error} ({hint})")
    if isinstance(error, DBAPIError | OSError):
        return Failure(EXIT_REFUSED, f"{what}: {_database(error, settings)}")
    message = str(error).splitlines()[0] if str(error) else ""
    name = type(error).__name__
    return Failure(EXIT_REFUSED, f"{what}: {name}: {message}" if message else f"{what}: {name}")


def cannot_listen(host: str, port: int, error: OSError) -> Failure:
    """The listening socket could not be bound (before anything is asked of Vault)."""
    reason = (error.strerror or type(error).__name__).lower()
    return Failure(
        EXIT_CANNOT_LISTEN,
        f"start-up failed: cannot listen on {host}:{port}: {reason} (check --host and --port)",
    )


def _startup_hint(error: StartupError, settings: Settings | None, db_role_setting: str) -> str:
    reason = error.reason
    if reason in ("plain_http", "https_only"):
        return "check VAULT_ADDR: its scheme must match the server's listener"
    if reason == "untrusted":
        return "check VAULT_CACERT or VAULT_CAPATH, and VAULT_TLS_SERVER_NAME"
    if reason == "unreachable":
        addrs = "VAULT_ADDR and VAULT_FAILOVER_ADDRS" if len(error.addrs) > 1 else "VAULT_ADDR"
        return f"check {addrs}, or raise VAULT_STARTUP_TIMEOUT"
    if reason in ("failing", "none"):
        return "is Vault sealed or failing? VAULT_STARTUP_TIMEOUT sets how long to wait"
    if error.kind == "database_file":
        return (
            "check VAULT_DB_CREDS_FILE and that the Agent renders it; "
            "VAULT_STARTUP_TIMEOUT sets how long to wait"
        )
    if _vault_said(error, "namespace not found"):
        return "check VAULT_NAMESPACE"
    wrong_path = isinstance(error.error, InvalidPath) or _no_route(error)
    if error.kind == "token":
        names = _auth_settings(settings)
        if wrong_path:
            names = ["VAULT_AUTH_METHOD", "VAULT_AUTH_MOUNT"]
        return "check " + _and(names)
    role = "VAULT_DB_STATIC_ROLE" if error.kind == "database_static" else db_role_setting
    if wrong_path:
        return f"check {role} and VAULT_DB_MOUNT"
    if isinstance(error.error, Forbidden):
        return f"check {role} and the Vault policy of the login"
    return f"check {role}"


def _no_route(error: StartupError) -> bool:
    """Vault's words for a path with no mount behind it."""
    return _vault_said(error, "no handler for route") or _vault_said(error, "unsupported path")


def _vault_said(error: StartupError, words: str) -> bool:
    """Whether Vault's ``errors`` hold ``words``."""
    return words in " ".join(getattr(error.error, "errors", ()))


def _auth_settings(settings: Settings | None) -> list[str]:
    method = settings.auth_method if settings is not None else "token"
    if method == "approle":
        assert settings is not None
        secret = "VAULT_SECRET_ID_FILE" if settings.vault_secret_id_file else "VAULT_SECRET_ID"
        return ["VAULT_ROLE_ID", secret]
    if method in ("kubernetes", "jwt"):
        return ["VAULT_AUTH_ROLE", "VAULT_JWT_FILE"]
    if settings is not None and settings.vault_token_file is not None:
        return ["VAULT_TOKEN_FILE"]
    return ["VAULT_TOKEN"]


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _database(error: DBAPIError | OSError, settings: Settings | None) -> str:
    """The database's own first line (never the SQL or its parameters), and what to check."""
    where = "the database"
    if settings is not None:
        url = make_url(settings.database_url)
        where = f"the database at {url.host}:{url.port or 5432}/{url.database}"
    cause = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(cause, OSError):
        detail = (cause.strerror or type(cause).__name__).lower()
        return f"{where} is not answering ({detail}) (check DATABASE_URL)"
    first = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    names = ["DATABASE_URL"]
    if settings is not None and settings.db_assume_role:
        names.append("DB_ASSUME_ROLE")
    if settings is not None and settings.db_owner_role:
        names.append("DB_OWNER_ROLE")
    return f'{where} refused: "{first}" (check {_and(names)})'
