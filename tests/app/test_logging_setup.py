"""The service's log output: text shows each record's fields, LOG_FORMAT=json gives one JSON
object per line, and at INFO the HTTP and migration libraries keep quiet."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.logging_setup import QUIET_LOGGERS, configure_logging
from app.settings import SettingsError, load_settings

BASE = {"DATABASE_URL": "postgresql+asyncpg://me:pw@127.0.0.1/app"}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured onto a string; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved = (root.level, root.handlers[:])
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    out = io.StringIO()
    yield out
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)


def emit(event: str, **fields: object) -> None:
    logging.getLogger("vault_async.lifecycle").info(event, extra=fields)


def test_text_shows_the_fields_after_the_event(stream: io.StringIO) -> None:
    configure_logging({}, stream=stream)
    emit("lease.rotated", secret="database/creds/app", ttl=59, generation=2, reason="max_ttl")
    [line] = stream.getvalue().splitlines()
    assert line.endswith(
        "INFO vault_async.lifecycle lease.rotated "
        "secret=database/creds/app ttl=59 generation=2 reason=max_ttl"
    )


def test_text_quotes_values_that_would_break_the_line(stream: io.StringIO) -> None:
    configure_logging({"LOG_FORMAT": "TEXT"}, stream=stream)
    emit("lease.failed", error="bad\nline key=x", ttl=None)
    [line] = stream.getvalue().splitlines()
    assert line.endswith('lease.failed error="bad\\nline key=x" ttl=None')


def test_text_leaves_out_uvicorns_colour_copy(stream: io.StringIO) -> None:
    configure_logging({}, stream=stream)
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s", "http://x", extra={"color_message": "\x1b[1m%s\x1b[0m"}
    )
    [line] = stream.getvalue().splitlines()
    assert line.endswith("INFO uvicorn.error Uvicorn running on http://x")


def test_json_is_one_object_per_line_with_the_fields(stream: io.StringIO) -> None:
    configure_logging({"LOG_FORMAT": "Json"}, stream=stream)
    emit("lease.renewed", secret="auth/approle", ttl=3600, generation=1, capped=False)
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s", "http://x", extra={"color_message": "\x1b[1m%s\x1b[0m"}
    )
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("app").exception("app.crashed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    renewed, running, crashed = lines
    assert renewed["message"] == "lease.renewed"
    assert renewed["level"] == "INFO"
    assert renewed["logger"] == "vault_async.lifecycle"
    assert (renewed["secret"], renewed["ttl"], renewed["generation"]) == ("auth/approle", 3600, 1)
    assert renewed["capped"] is False
    assert "time" in renewed
    assert running["message"] == "Uvicorn running on http://x"
    assert "color_message" not in running
    assert "ValueError: boom" in crashed["exc_info"]


@pytest.mark.parametrize("level", ["INFO", "warning", ""])
def test_http_and_migration_chatter_is_quiet_above_debug(
    stream: io.StringIO, level: str
) -> None:
    configure_logging({"LOG_LEVEL": level}, stream=stream)
    for name in ("httpx", "httpcore", "alembic", "alembic.runtime.plugins", "asyncio"):
        logging.getLogger(name).info("chatter")
    logging.getLogger("uvicorn.error").warning("kept")
    assert stream.getvalue().count("chatter") == 0
    assert "kept" in stream.getvalue()


def test_debug_shows_the_chatter(stream: io.StringIO) -> None:
    configure_logging({"LOG_LEVEL": "debug"}, stream=stream)
    logging.getLogger("httpx").debug("chatter")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade")
    assert "chatter" in stream.getvalue()
    assert "Running upgrade" in stream.getvalue()


def test_the_log_format_setting() -> None:
    assert load_settings(BASE).log_format == "text"
    assert load_settings(BASE | {"LOG_FORMAT": "JSON"}).log_format == "json"
    assert load_settings(BASE | {"LOG_FORMAT": " text "}).log_format == "text"
    with pytest.raises(SettingsError, match=r"^LOG_FORMAT .*'text' or 'json'"):
        load_settings(BASE | {"LOG_FORMAT": "yaml"})
