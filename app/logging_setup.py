"""Logging for ``python -m app``: one handler on stderr, text or JSON (``LOG_FORMAT``).

Every record of the service and the library is an event name with structured fields
(``extra``). The text format shows those fields as ``key=value`` after the event; the JSON
format (python-json-logger) writes one object per line for log shippers. Above DEBUG, the
HTTP client's per-request lines and the migration tool's set-up lines are left out.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import TextIO, get_args

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from .settings import LogFormat, LogLevel

__all__ = ["QUIET_LOGGERS", "FieldsFormatter", "configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

QUIET_LOGGERS = ("httpx", "httpcore", "alembic", "asyncio")
"""Loggers shown at LOG_LEVEL=DEBUG only: a line per HTTP request, migration set-up."""

_HIDDEN = frozenset({"color_message"})  # uvicorn's copy of the message with ANSI colours
_STANDARD = (
    frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__)
    | {"message", "asctime", "taskName"}
    | _HIDDEN
)
_PLAIN = re.compile(r"[^\s\"=\\]+")


def _shown(value: object) -> str:
    """A field value that cannot break the line: quoted and escaped unless plain."""
    text = value if isinstance(value, str) else str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


class FieldsFormatter(logging.Formatter):
    """``time LEVEL logger event key=value ...``: the record's fields after its event."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = [
            f"{key}={_shown(value)}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD
        ]
        return " ".join([line, *fields])


def _choice(value: str | None, choices: tuple[str, ...], default: str) -> str:
    """``value`` if it is one of ``choices`` (any case), else ``default``."""
    chosen = (value or "").strip()
    return next((c for c in choices if c.lower() == chosen.lower()), default)


def configure_logging(environ: Mapping[str, str], stream: TextIO | None = None) -> None:
    """Set up the root logger from LOG_FORMAT and LOG_LEVEL in ``environ``.

    An unknown value falls back to the default here; ``load_settings`` then stops
    start-up with one line naming the setting.
    """
    log_format = _choice(environ.get("LOG_FORMAT"), get_args(LogFormat), "text")
    level = _choice(environ.get("LOG_LEVEL"), get_args(LogLevel), "INFO")
    formatter: logging.Formatter
    if log_format == "json":
        formatter = JsonFormatter(
            FORMAT,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, "taskName", *_HIDDEN],
        )
    else:
        formatter = FieldsFormatter(FORMAT)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
