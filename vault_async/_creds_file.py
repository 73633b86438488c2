"""Read and parse a database credential rendered to a file: JSON or ``KEY=value`` lines.

An OpenBao/Vault Agent template renders ``database/creds/<role>`` to a file. As JSON
(:data:`JSON_TEMPLATE`)::

    {{ with secret "database/creds/app" }}{"data": {{ .Data | toJSON }},
    "lease_id": {{ .LeaseID | toJSON }}, "ttl": {{ .LeaseDuration }}}{{ end }}

or just ``{{ with secret "database/creds/app" }}{{ .Data | toJSON }}{{ end }}``. Let
``toJSON`` write every value: a password pasted between quotes (``"{{ .Data.password }}"``)
breaks the file as soon as it holds a ``"`` or a ``\\``. As lines (:data:`ENV_TEMPLATE`),
each value quoted by ``toJSON`` and the file ending with a newline::

    {{ with secret "database/creds/app" }}DB_USERNAME={{ .Data.username | toJSON }}
    DB_PASSWORD={{ .Data.password | toJSON }}
    {{ end }}

Lines follow dotenv's rules (``export`` allowed, ``#`` starts a comment, a value may be
quoted), with no ``${VAR}`` interpolation; a double-quoted value that is a JSON string is
read as JSON, so ``toJSON`` renders any password exactly. An unquoted value loses what
follows `` #`` and breaks on a leading quote: quote it. A file whose last line has no
newline is taken for one read half way (a writer that does not rename) and is not used.
A JSON file needs no such rule: one cut short does not parse.

Keys are matched without regard to case: the username under ``username``, ``user``,
``db_username`` or ``pguser``, the password under ``password``, ``db_password`` or
``pgpassword``. In JSON they may also sit under ``data`` (``{{ .Data | toJSON }}`` of the
whole secret). ``lease_id`` and ``ttl`` (or ``lease_duration``) are optional: the lease
id's end is reported, the ttl gives the credential's expiry. Errors name the file and what
is wrong, never a value.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dotenv.parser import parse_stream

__all__ = [
    "ENV_TEMPLATE",
    "JSON_TEMPLATE",
    "MAX_FILE_BYTES",
    "CredentialFileError",
    "CredsFormat",
    "FileCredential",
    "Stamp",
    "detect_format",
    "expiry",
    "file_stamp",
    "parse_credentials",
    "read_text",
]

CredsFormat = Literal["json", "env"]
Stamp = tuple[int, int, int, int]
"""A file's device, inode, size and modification time (ns)."""

JSON_TEMPLATE = (
    '{{ with secret "database/creds/app" }}{"data": {{ .Data | toJSON }},\n'
    '"lease_id": {{ .LeaseID | toJSON }}, "ttl": {{ .LeaseDuration }}}{{ end }}\n'
)
"""An Agent template rendering ``database/creds/app`` as JSON that any password survives."""

ENV_TEMPLATE = (
    '{{ with secret "database/creds/app" }}DB_USERNAME={{ .Data.username | toJSON }}\n'
    "DB_PASSWORD={{ .Data.password | toJSON }}\n"
    "{{ end }}"
)
"""The same as ``KEY=value`` lines, each value quoted by ``toJSON``, ending with a newline."""

MAX_FILE_BYTES = 64 * 1024
"""A rendered credential is a few hundred bytes: anything past 64 KiB is not one."""

_USER_KEYS = ("username", "user", "db_username", "pguser")
_PASSWORD_KEYS = ("password", "db_password", "pgpassword")
_LEASE_KEYS = ("lease_id", "leaseid")
_TTL_KEYS = ("ttl", "lease_duration", "leaseduration")


class CredentialFileError(ValueError):
    """A credential file that cannot be read or parsed; one line naming the file."""


@dataclass(frozen=True, slots=True)
class FileCredential:
    """A username and password read from a file (``data`` as the engine's leases carry it)."""

    data: Mapping[str, str] = field(repr=False)
    lease_id: str = ""
    ttl: float | None = None

    def __repr__(self) -> str:
        return f"FileCredential(username={self.data.get('username')!r}, ttl={self.ttl!r})"

    def same_login(self, other: FileCredential | None) -> bool:
        """True when ``other`` holds the same username and password."""
        return other is not None and (
            other.data.get("username"), other.data.get("password")
        ) == (self.data.get("username"), self.data.get("password"))


def detect_format(text: str) -> CredsFormat:
    """JSON when the text starts with ``{``, else ``KEY=value`` lines."""
    return "json" if text.lstrip().startswith("{") else "env"


def parse_credentials(text: str, fmt: CredsFormat | None, source: str) -> FileCredential:
    """The credential in ``text`` (``fmt`` None: detected); ``source`` names the file."""
    chosen = fmt or detect_format(text)
    fields = _json_fields(text, source) if chosen == "json" else _env_fields(text, source)
    username = _first(fields, _USER_KEYS)
    password = _first(fields, _PASSWORD_KEYS)
    if not username:
        raise CredentialFileError(f"{source}: no username ({chosen} format)")
    if not password:
        raise CredentialFileError(f"{source}: no password ({chosen} format)")
    return FileCredential(
        {"username": username, "password": password},
        lease_id=_first(fields, _LEASE_KEYS) or "",
        ttl=_seconds(_first(fields, _TTL_KEYS)),
    )


def _json_fields(text: str, source: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise CredentialFileError(f"{source}: not valid JSON ({error.msg} at {where})") from None
    except (ValueError, RecursionError) as error:  # too many digits, too deeply nested
        raise CredentialFileError(
            f"{source}: not valid JSON (the parser gave up: {type(error).__name__})"
        ) from None
    if not isinstance(value, dict):
        raise CredentialFileError(f"{source}: not a JSON object")
    fields = _lowered(value)
    nested = value.get("data", value.get("Data"))
    if isinstance(nested, dict) and not _first(fields, _USER_KEYS):
        fields = _lowered(nested) | {k: v for k, v in fields.items() if k != "data"}
    return fields


def _env_fields(text: str, source: str) -> dict[str, str]:
    """``KEY=value`` lines, never interpolated; a double-quoted JSON string is read as JSON."""
    fields: dict[str, str] = {}
    bad_lines: list[int] = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            bad_lines.append(binding.original.line)
        elif binding.key is not None and binding.value is not None:
            fields[binding.key.lower()] = _json_string(binding.original.string) or binding.value
    if not fields:
        raise CredentialFileError(f"{source}: no KEY=value line")
    if bad_lines:
        raise CredentialFileError(
            f"{source}: line {bad_lines[0]} is not KEY=value "
            "(an unclosed quote? render values with toJSON)"
        )
    if not text.endswith("\n"):  # a file written in place and read half way
        raise CredentialFileError(
            f"{source}: the last line has no newline (half written? the template must end "
            "with a newline)"
        )
    return fields


def _json_string(line: str) -> str | None:
    """The value of ``KEY="..."`` when it is a JSON string (``toJSON`` in a template)."""
    raw = line.partition("=")[2].strip()
    if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
        return None
    try:
        value = json.loads(raw)
    except ValueError:  # some of dotenv's escapes are not JSON's
        return None
    return value if isinstance(value, str) else None


def _lowered(mapping: Mapping[str, Any]) -> dict[str, str]:
    """Keys in lower case, scalar values as text (nested objects left out)."""
    return {
        str(k).lower(): str(v)
        for k, v in mapping.items()
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    }


def _first(fields: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = fields.get(key)
        if value:
            return value
    return None


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def file_stamp(path: Path) -> Stamp:
    """What tells a rewritten file: a rename brings a new inode, an edit a new size or time."""
    try:
        stat = os.stat(path)
    except OSError as error:
        raise CredentialFileError(f"cannot read {path}: {error.strerror}") from None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def read_text(path: Path) -> str:
    """The file's text: at most ``MAX_FILE_BYTES``, UTF-8, not blank."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise CredentialFileError(f"cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise CredentialFileError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB")
    if not data.strip():
        raise CredentialFileError(f"{path} is empty")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialFileError(f"{path}: not UTF-8 text") from None


def expiry(ttl: float | None, mtime_ns: int, now: float) -> float | None:
    """When a credential read ``now`` from a file written at ``mtime_ns`` expires (wall time).

    The ttl is the lease's at rendering: counted from the file's modification time, or from
    now when that lies ahead (a clock that moved back). None without a positive ttl.
    """
    if ttl is None or ttl <= 0:
        return None
    return min(mtime_ns / 1e9, now) + ttl
