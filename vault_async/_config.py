"""Client configuration: plain values, read from arguments or the Vault CLI's environment.

Every ``VAULT_*`` variable is also accepted with the OpenBao spelling ``BAO_*``; the
``VAULT_*`` one wins when both are set. Bad values fail here, at construction, with a
message naming the setting, never later on the first request. One job, so one module,
past 300 lines: each setting's check sits beside the field it guards.
"""

from __future__ import annotations

import dataclasses
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ._exceptions import InvalidConfig
from ._tls import tls_context

__all__ = [
    "DEFAULT_ADDR",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ClientConfig",
    "RetryPolicy",
    "check_header_value",
    "check_namespace",
]

DEFAULT_ADDR = "https://127.0.0.1:8200"
DEFAULT_TIMEOUT = 60.0  # seconds, as the Vault CLI
DEFAULT_MAX_RETRIES = 2  # as the Vault CLI
DEFAULT_BACKOFF_INITIAL = 0.1
DEFAULT_BACKOFF_MAX = 2.0
DEFAULT_RETRY_DEADLINE = 30.0
DEFAULT_POOL_SIZE = 100
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # far above any Vault answer

# What a header value may hold: visible ASCII. CR/LF would split the request, anything
# else fails deep inside the HTTP library.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]*")
# One name of a namespace path: visible ASCII without '/', '+' or '*' (OpenBao 2.7.2 refuses
# spaces, '+' and '*' in names), and not one of the names it reserves.
_NAMESPACE_PART = re.compile(r"[\x21-\x29\x2c-\x2e\x30-\x7e]+")
_NOT_A_NAMESPACE_NAME = frozenset({".", "..", "sys", "audit", "auth", "cubbyhole", "identity"})
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.:-]{0,252}[A-Za-z0-9_\]])?|\[[0-9A-Fa-f:.]+\]")

_TRUE = {"1", "t", "true", "yes", "y", "on"}
_FALSE = {"0", "f", "false", "no", "n", "off", ""}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How idempotent requests are retried: capped exponential backoff with full jitter."""

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    backoff_max: float = DEFAULT_BACKOFF_MAX
    deadline: float = DEFAULT_RETRY_DEADLINE

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise InvalidConfig(
                f"max_retries (VAULT_MAX_RETRIES) must be >= 0, got {self.max_retries}"
            )
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial:
            raise InvalidConfig("retry backoff must satisfy 0 <= backoff_initial <= backoff_max")
        if self.deadline <= 0:
            raise InvalidConfig(f"retry deadline must be > 0, got {self.deadline}")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the client needs to reach Vault; validated once, then only read."""

    addr: str = DEFAULT_ADDR
    failover_addrs: tuple[str, ...] = ()
    """More nodes of the same cluster, tried in order after ``addr`` (VAULT_FAILOVER_ADDRS)."""
    token: str | None = field(default=None, repr=False)
    namespace: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    ca_cert: str | None = None
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    skip_verify: bool = False
    tls_server_name: str | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "addr", _check_addr(self.addr))
        object.__setattr__(self, "failover_addrs", _failover_addrs(self.addr, self.failover_addrs))
        if self.token is not None:
            check_header_value(self.token, "token (VAULT_TOKEN)")
        if self.namespace is not None:
            namespace = check_namespace(self.namespace, "namespace (VAULT_NAMESPACE)")
            object.__setattr__(self, "namespace", namespace)
        if not self.timeout > 0:
            raise InvalidConfig(
                f"timeout (VAULT_CLIENT_TIMEOUT) must be > 0 seconds, got {self.timeout}"
            )
        if self.pool_size < 1:
            raise InvalidConfig(f"pool_size must be >= 1, got {self.pool_size}")
        if self.max_response_bytes < 1:
            raise InvalidConfig(
                "max_response_bytes (VAULT_MAX_RESPONSE_BYTES) must be >= 1, "
                f"got {self.max_response_bytes}"
            )
        if self.ca_cert is not None and not Path(self.ca_cert).is_file():
            raise InvalidConfig(f"CA certificate file (VAULT_CACERT) not found: {self.ca_cert}")
        if self.ca_path is not None and not Path(self.ca_path).is_dir():
            raise InvalidConfig(f"CA directory (VAULT_CAPATH) not found: {self.ca_path}")
        if self.tls_server_name is not None and _HOST_NAME.fullmatch(self.tls_server_name) is None:
            raise InvalidConfig(
                "TLS server name (VAULT_TLS_SERVER_NAME) must be a host name such as "
                "vault.internal"
            )
        if (self.client_cert is None) != (self.client_key is None):
            raise InvalidConfig("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together")
        for name, value in (
            ("VAULT_CLIENT_CERT", self.client_cert),
            ("VAULT_CLIENT_KEY", self.client_key),
        ):
            if value is not None and not Path(value).is_file():
                raise InvalidConfig(f"{name} file not found: {value}")

    @property
    def addrs(self) -> tuple[str, ...]:
        """Every node's address: ``addr`` first, then ``failover_addrs``."""
        return (self.addr, *self.failover_addrs)

    @property
    def max_retries(self) -> int:
        """Shortcut for ``retry.max_retries``."""
        return self.retry.max_retries

    def replace(self, **changes: object) -> ClientConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for https addresses (None when every node is plain http).

        As the Vault CLI: ``ca_cert``, or else every PEM certificate in the files under
        ``ca_path`` (no ``c_rehash`` links needed; files without one are skipped), replaces
        the system's CAs; with both set, ``ca_path`` is not read. ``tls_server_name`` is
        applied per connection by the transports.
        """
        if not any(addr.startswith("https://") for addr in self.addrs):
            return None
        return tls_context(
            ca_cert=self.ca_cert,
            ca_path=self.ca_path,
            skip_verify=self.skip_verify,
            client_cert=self.client_cert,
            client_key=self.client_key,
            addr=self.addr,
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        home: Path | None = None,
    ) -> ClientConfig:
        """Read ``VAULT_*`` (or ``BAO_*``) variables; the token falls back to ``~/.vault-token``."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"VAULT_{name}")
            return env.get(f"BAO_{name}") if value is None else value

        token = get("TOKEN")
        if not token:
            token_file = (home if home is not None else Path.home()) / ".vault-token"
            try:
                token = token_file.read_text().strip() or None
            except OSError:
                token = None
        timeout = _parse_duration("VAULT_CLIENT_TIMEOUT", get("CLIENT_TIMEOUT"), DEFAULT_TIMEOUT)
        retries = _parse_int("VAULT_MAX_RETRIES", get("MAX_RETRIES"), DEFAULT_MAX_RETRIES)
        max_bytes = _parse_int(
            "VAULT_MAX_RESPONSE_BYTES", get("MAX_RESPONSE_BYTES"), DEFAULT_MAX_RESPONSE_BYTES
        )
        return cls(
            addr=get("ADDR") or DEFAULT_ADDR,
            failover_addrs=tuple(
                item.strip() for item in (get("FAILOVER_ADDRS") or "").split(",") if item.strip()
            ),
            token=token,
            namespace=get("NAMESPACE") or None,
            timeout=timeout,
            retry=RetryPolicy(max_retries=retries),
            ca_cert=get("CACERT") or None,
            ca_path=get("CAPATH") or None,
            client_cert=get("CLIENT_CERT") or None,
            client_key=get("CLIENT_KEY") or None,
            skip_verify=_parse_bool("VAULT_SKIP_VERIFY", get("SKIP_VERIFY")),
            tls_server_name=get("TLS_SERVER_NAME") or None,
            max_response_bytes=max_bytes,
        )


def check_header_value(value: str, what: str, allowed: re.Pattern[str] = _TOKEN_CHARS) -> None:
    """Refuse a value that cannot be sent as a header; the message never shows the value."""
    if not isinstance(value, str) or allowed.fullmatch(value) is None:
        raise InvalidConfig(
            f"{what} must be printable ASCII without CR, LF or other control characters"
        )


def check_namespace(value: str, what: str) -> str:
    """A namespace path (``team-a``, ``team-a/app``) in its canonical form, without leading or
    trailing ``/`` (Vault accepts ``team-a/`` too). The message never shows the value."""
    path = value.strip("/") if isinstance(value, str) else ""
    if path == "root":
        raise InvalidConfig(f"{what}: 'root' is the root namespace, which is none: unset it")
    parts = path.split("/")
    if not all(
        _NAMESPACE_PART.fullmatch(p) and p not in _NOT_A_NAMESPACE_NAME for p in parts
    ):
        raise InvalidConfig(
            f"{what} must be namespace names joined by '/', e.g. team-a or team-a/app: "
            "printable ASCII without spaces, control characters, '+' or '*', no empty, '.' "
            "or '..' name and none of OpenBao's reserved names (sys, audit, auth, cubbyhole, "
            "identity)"
        )
    return path


def _check_addr(addr: str, what: str = "address (VAULT_ADDR)") -> str:
    """Validate an address; return it without a trailing slash."""
    if not isinstance(addr, str):
        raise InvalidConfig(f"{what} must be a string such as https://host:port")
    try:
        parts = urlsplit(addr)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise InvalidConfig(f"{what} is malformed: {_shown_addr(addr)!r}") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidConfig(f"{what} must not carry credentials, a query or a fragment")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidConfig(f"{what} must look like https://host:port, got {addr!r}")
    del port
    return addr.rstrip("/")


def _shown_addr(addr: str) -> str:
    """An address as an error may show it: anything before an ``@`` (credentials) cut."""
    scheme, sep, rest = addr.partition("://")
    return f"{scheme}{sep}<redacted>@{rest.rsplit('@', 1)[1]}" if "@" in rest else addr


def _failover_addrs(addr: str, addrs: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The failover addresses validated, without repeats and without ``addr`` itself."""
    if isinstance(addrs, str):
        raise InvalidConfig(
            "failover addresses (VAULT_FAILOVER_ADDRS) must be a sequence of addresses"
        )
    kept: list[str] = []
    for item in addrs:
        checked = _check_addr(item, "failover address (VAULT_FAILOVER_ADDRS)")
        if checked != addr and checked not in kept:
            kept.append(checked)
    return tuple(kept)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _parse_duration(name: str, raw: str | None, default: float) -> float:
    """Parse ``30``, ``30s``, ``1m``, ``500ms`` into seconds; reject negatives by name."""
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    scale = 1.0
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], _UNITS[suffix]
            break
    try:
        value = float(text) * scale
    except ValueError:
        raise InvalidConfig(f"{name} must be a duration such as 30 or 30s, got {raw!r}") from None
    if not value > 0:
        raise InvalidConfig(f"{name} must be > 0, got {raw!r}")
    return value


def _parse_int(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidConfig(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise InvalidConfig(f"{name} must be >= 0, got {raw!r}")
    return value


def _parse_bool(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidConfig(f"{name} must be true or false, got {raw!r}")
