"""FileCredentials: the parser and the file watcher, on real files (no server needed)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import replace_file
from vault_async import _creds_file
from vault_async._creds_file import (
    ENV_TEMPLATE,
    JSON_TEMPLATE,
    CredentialFileError,
    parse_credentials,
)
from vault_async.file_credentials import FileCredentials
from vault_async.sqlalchemy import CredentialSource, credential_of

PASSWORD = "A1a-vErY-sEcReT-pw"


def _json(username: str, password: str = PASSWORD, **extra: object) -> str:
    return json.dumps({"username": username, "password": password, **extra})


def test_json_and_env_renderings_give_the_same_login() -> None:
    flat = parse_credentials(
        _json("v-app-1", lease_id="database/creds/app/abc123", ttl=20), None, "f"
    )
    nested = parse_credentials(
        json.dumps({"LeaseID": "x", "Data": {"username": "v-app-1", "password": PASSWORD}}),
        None,
        "f",
    )
    env = parse_credentials(
        f"# rendered by the Agent\nexport DB_USERNAME=v-app-1\nDB_PASSWORD='{PASSWORD}'\n",
        None,
        "f",
    )
    assert flat.data == nested.data == env.data == {"username": "v-app-1", "password": PASSWORD}
    assert (flat.lease_id, flat.ttl) == ("database/creds/app/abc123", 20.0)
    assert PASSWORD not in repr(flat)


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ('{"username": "v-1", "password": "' + PASSWORD[:5], None, "f: not valid JSON ("),
        ("[1, 2]", "json", "f: not a JSON object"),
        (_json("v-1", password=""), None, "f: no password (json format)"),
        (f"password={PASSWORD}\n", None, "f: no username (env format)"),
        ("just some words", "env", "f: no KEY=value line"),
        (_json("v-1"), "env", "f: no KEY=value line"),
    ],
)
def test_what_is_not_a_credential_is_one_line_without_the_value(
    text: str, fmt: Any, message: str
) -> None:
    with pytest.raises(CredentialFileError) as info:
        parse_credentials(text, fmt, "f")
    assert str(info.value).startswith(message)
    assert PASSWORD[:5] not in str(info.value)


class Events:
    """Every event a source publishes."""

    def __init__(self, source: FileCredentials) -> None:
        self.seen: list[Any] = []
        self.arrived = asyncio.Event()
        source.subscribe(self._on)

    def _on(self, event: Any) -> None:
        self.seen.append(event)
        self.arrived.set()


async def test_missing_file_then_partial_write_then_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    source = FileCredentials(path)
    assert isinstance(source, CredentialSource)
    with pytest.raises(CredentialFileError) as info:
        await source.wait_ready(timeout=0.2)
    assert str(info.value) == (
        f"no database credential in {path} after 0.2 s: "
        f"cannot read {path}: No such file or directory"
    )
    assert source.state().degraded
    assert not source.state().ready

    path.write_text(_json("v-app-1"))
    first = await source.wait_ready(timeout=1)
    assert first.data["username"] == "v-app-1"
    assert source.generation == 1
    events = Events(source)

    # A writer that does not rename, caught half way: the login in force stays.
    whole = _json("v-app-2", lease_id="database/creds/app/xyz789")
    path.write_text(whole[: len(whole) // 2])
    assert source.check() is False
    assert credential_of(source) == ("v-app-1", PASSWORD, 1)
    state = source.state()
    assert (state.degraded, state.consecutive_failures, state.last_error_class) == (
        True, 1, "CredentialFileError"
    )
    assert source.check() is False  # tried again at each look, still half written
    assert source.consecutive_failures == 2

    path.write_text(whole)
    assert source.check() is True
    assert credential_of(source) == ("v-app-2", PASSWORD, 2)
    assert [(e.kind, e.generation) for e in events.seen] == [("rotated", 2)]
    state = source.state()
    assert (state.degraded, state.consecutive_failures, state.rotations) == (False, 0, 1)
    assert state.lease_id_suffix == "xyz789"
    assert state.kind == "database_file"


async def test_the_same_login_rendered_again_is_no_new_generation(tmp_path: Path) -> None:
    path = tmp_path / "db.env"
    path.write_text(f"username=v-app-1\npassword={PASSWORD}\nttl=20\n")
    source = FileCredentials(path, format="env")
    await source.wait_ready(timeout=1)
    events = Events(source)
    assert source.check() is False  # unchanged: not even read again
    replace_file(path, f"username=v-app-1\npassword={PASSWORD}\nttl=7\n")  # new inode
    assert source.check() is False
    assert source.current is not None
    assert source.current.ttl == 7.0  # what the Agent reported is kept
    assert (source.generation, events.seen) == (1, [])
    assert await source.force_rotate("database rejected the login") is source.current
    assert (source.generation, events.seen) == (1, [])


async def test_force_rotate_reads_the_file_unless_the_failed_generation_is_gone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.json"
    path.write_text(_json("v-app-1"))
    source = FileCredentials(path)
    await source.wait_ready(timeout=1)
    # Same size and modification time, other content: only a forced read sees it.
    stat = os.stat(path)
    path.write_text(_json("v-app-2"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.check() is False
    assert (await source.force_rotate("rejected", generation=1)).data["username"] == "v-app-2"
    assert source.generation == 2
    path.write_text(_json("v-app-3"))
    # A pool that failed with generation 1 is already past it: no read, the current one.
    assert (await source.force_rotate("rejected", generation=1)).data["username"] == "v-app-2"


async def test_the_watcher_publishes_what_the_agent_renders(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    replace_file(path, _json("v-app-1"))
    async with FileCredentials(path, poll_interval=0.05) as source:
        await source.wait_ready(timeout=1)
        events = Events(source)
        replace_file(path, _json("v-app-2"))
        await asyncio.wait_for(events.arrived.wait(), timeout=5)
        assert credential_of(source) == ("v-app-2", PASSWORD, 2)
        assert source.state().next_action == "read"
    assert source.state().next_action is None  # stopped watching
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        FileCredentials(path, poll_interval=0)


async def test_healthz_in_file_mode_without_vault(tmp_path: Path) -> None:
    """The credential file's generation and failures; no Vault to have answered is no fault."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from vault_async._health import health_payload
    from vault_async.runtime import VaultRuntime
    from vault_async.sqlalchemy import bind_credentials

    path = tmp_path / "db.json"
    path.write_text(_json("v-app-1", lease_id="database/creds/app/q7Zk2Lm9Xw4Rt8Yp3Vn6"))
    source = FileCredentials(path, name="VAULT_DB_CREDS_FILE")
    await source.wait_ready(timeout=1)
    engine = create_async_engine("postgresql+asyncpg://127.0.0.1:9/app")
    runtime = VaultRuntime(
        engine=engine, sessionmaker=async_sessionmaker(engine),
        binding=bind_credentials(engine, source), credentials=source,
        db_secret=source.name,
    )
    try:
        status, body = health_payload(runtime)
        assert (status, body["mode"], body["token"]) == ("ok", "file", None)
        assert body["vault"]["answered_recently"] is None
        assert {k: body["database"][k] for k in ("kind", "generation", "degraded")} == {
            "kind": "database_file", "generation": 1, "degraded": False
        }
        path.write_text("{")
        source.check()
        status, body = health_payload(runtime)
        assert (status, body["database"]["consecutive_failures"]) == ("degraded", 1)
        text = repr(body)
        assert PASSWORD not in text
        assert "q7Zk2Lm9Xw4R" not in text  # only the lease id's last characters
    finally:
        runtime.binding.detach()
        await engine.dispose()


def _go_to_json(value: str, *, raw: bool = False) -> str:
    """What the Agent's ``toJSON`` renders for a string (``raw``: JSON already): <, >, & escaped."""
    text = value if raw else json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@pytest.mark.parametrize(
    "password",
    ["Ab${HOME}9z", "a${B:-dflt}c", "hash #x", '"start', "'start", 'dq"x', "back\\slash",
     "qu'ote", "a<b>&c", "sp ace", "tab\there", "ünï"],
)
def test_env_values_quoted_with_to_json_are_read_exactly(password: str) -> None:
    text = f"DB_USERNAME=v-app\nDB_PASSWORD={_go_to_json(password)}\n"
    assert parse_credentials(text, None, "f").data["password"] == password


def test_env_values_are_never_interpolated() -> None:
    os.environ.setdefault("HOME", "/root")
    for text in ("DB_USERNAME=v\nDB_PASSWORD=Ab${HOME}9z\n", "USER=v\nPASSWORD='Ab${HOME}9z'\n"):
        assert parse_credentials(text, "env", "f").data["password"] == "Ab${HOME}9z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a writer that does not rename, read half way: the last line is not finished
        (f"DB_USERNAME=v-app\nDB_PASSWORD={PASSWORD[:7]}", "f: the last line has no newline"),
        (f"DB_USERNAME=v-app\nDB_PASSWORD='{PASSWORD[:7]}\n", "f: line 2 is not KEY=value"),
    ],
)
def test_an_unfinished_env_file_is_an_error_not_a_login(text: str, message: str) -> None:
    with pytest.raises(CredentialFileError) as info:
        parse_credentials(text, None, "f")
    assert str(info.value).startswith(message)
    assert PASSWORD[:5] not in str(info.value)


def test_a_file_written_in_place_is_published_only_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "db.env"
    path.write_text(f"DB_USERNAME=v-app-old\nDB_PASSWORD={PASSWORD}\n")
    source = FileCredentials(path)
    assert source.check()
    with path.open("w") as file:  # truncated, then written in two pieces
        file.write("DB_USERNAME=v-app-new\nDB_PASSWORD=NewPa")
        file.flush()
        assert not source.check()
        assert source.consecutive_failures == 1
        file.write("ssw0rd-987654321\n")
    assert source.check()
    assert source.current is not None
    assert source.current.data == {"username": "v-app-new", "password": "NewPassw0rd-987654321"}
    assert source.generation == 2


def _render(template: str, data: dict[str, str], lease_id: str, ttl: int) -> str:
    """The Agent's rendering of the few expressions the documented templates use."""
    values = {
        ".Data | toJSON": _go_to_json(json.dumps(data, separators=(",", ":")), raw=True),
        ".Data.username | toJSON": _go_to_json(data["username"]),
        ".Data.password | toJSON": _go_to_json(data["password"]),
        ".LeaseID | toJSON": _go_to_json(lease_id),
        ".Data.username": data["username"],
        ".Data.password": data["password"],
        ".LeaseID": lease_id,
        ".LeaseDuration": str(ttl),
    }
    text = re.sub(r'\{\{ with secret "[^"]+" \}\}|\{\{ end \}\}', "", template)
    return re.sub(r"\{\{ (.+?) \}\}", lambda match: values[match.group(1)], text)


@pytest.mark.parametrize("template", [JSON_TEMPLATE, ENV_TEMPLATE])
@pytest.mark.parametrize("password", ['dq"x', "back\\slash", "a<b>&c", "hash #x", "'start"])
def test_the_documented_templates_render_any_password(template: str, password: str) -> None:
    for line in template.splitlines():  # the module's documentation shows this very template
        assert line in (_creds_file.__doc__ or "")
    text = _render(template, {"username": "v-app", "password": password}, "database/x/y9", 30)
    credential = parse_credentials(text, None, "f")
    assert credential.data == {"username": "v-app", "password": password}
    if template is JSON_TEMPLATE:
        assert (credential.lease_id, credential.ttl) == ("database/x/y9", 30.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"username": "u", "password": "p", "n": ' + "9" * 5000 + "}", "f: not valid JSON"),
        ('{"username": "u", "password": "p", "n": ' + "[" * 100_000, "f: not valid JSON"),
    ],
)
def test_json_the_parser_gives_up_on_is_a_credential_file_error(text: str, message: str) -> None:
    with pytest.raises(CredentialFileError, match=message):
        parse_credentials(text, None, "f")


async def test_the_watcher_outlives_an_unexpected_error(tmp_path: Path) -> None:
    class Flaky(FileCredentials):
        """Fails its first look with an error no read should raise."""

        looks = 0
        looked_again = asyncio.Event()

        def check(self, *, force: bool = False) -> bool:
            self.looks += 1
            if self.looks == 2:
                raise RuntimeError("a bug")
            if self.looks > 2:
                self.looked_again.set()
            return super().check(force=force)

    path = tmp_path / "db.json"
    replace_file(path, _json("v-app-1"))
    async with Flaky(path, poll_interval=0.01) as source:
        await source.wait_ready(timeout=1)  # the first look
        await asyncio.wait_for(source.looked_again.wait(), 5)
        assert source.total_failures == 1
        assert source.last_error is not None
        assert "RuntimeError" in str(source.last_error)


async def test_the_files_ttl_gives_an_expiry_and_an_expired_login_fails_health(
    tmp_path: Path,
) -> None:
    from vault_async._health import health_status

    path = tmp_path / "db.json"
    path.write_text(_json("v-app-1", ttl=30))
    rendered = os.stat(path).st_mtime
    now = [rendered + 10.0]
    source = FileCredentials(path, clock=lambda: now[0])
    await source.wait_ready(timeout=1)
    state = source.state()
    assert state.ttl_remaining == pytest.approx(20.0, abs=0.01)  # from the render, not the read
    assert state.expires_at is not None
    assert state.expires_at.timestamp() == pytest.approx(rendered + 30, abs=0.01)
    assert health_status(state, None, vault_recent=True) == "ok"
    now[0] = rendered + 31
    assert source.state().ttl_remaining == 0
    assert health_status(source.state(), None, vault_recent=True) == "failing"
    replace_file(path, _json("v-app-1", ttl=60))  # the Agent renewed the lease: same login
    now[0] = os.stat(path).st_mtime
    assert source.check() is False
    assert source.state().ttl_remaining == pytest.approx(60.0, abs=0.01)
    assert health_status(source.state(), None, vault_recent=True) == "ok"


async def test_a_forced_read_finding_the_rejected_login_is_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    path.write_text(_json("v-app-1"))
    source = FileCredentials(path)
    await source.wait_ready(timeout=1)
    assert source.state().ttl_remaining is None  # no ttl in the file: none reported
    await source.force_rotate("database rejected the login", generation=1)
    state = source.state()
    assert (state.consecutive_failures, state.total_failures, state.degraded) == (1, 1, True)
    assert source.last_error is not None
    assert "still holds the login the database rejected" in str(source.last_error)
    replace_file(path, _json("v-app-2"))  # the Agent renders a new one: all is well again
    assert source.check() is True
    assert source.state().degraded is False
