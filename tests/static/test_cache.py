"""The shared cache: TTL, one fetch for concurrent readers, change events, background refresh.

The fetcher here is a stand-in (the seam every provider plugs into); the providers
themselves are tested against real or wire-level servers in the other modules.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from vault_async.static import (
    CachedSecrets,
    SecretChange,
    SecretConfigError,
    SecretNotFound,
    SecretUnavailable,
    StaticSecret,
    StaticSecretProvider,
)

VALUE = "s3cr3t-value-never-shown"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class StubFetcher:
    """Serves ``values[name]`` as (version, text); counts calls; can hold calls at a gate."""

    provider = "stub"

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, str]] = {}
        self.calls: list[tuple[str, str | None]] = []
        self.gate: asyncio.Event | None = None
        self.closed = False

    async def fetch(self, name: str, version: str | None) -> StaticSecret:
        self.calls.append((name, version))
        if self.gate is not None:
            await asyncio.wait_for(self.gate.wait(), 5)
        if name not in self.values:
            raise SecretNotFound(self.provider, name, "not found")
        number, text = self.values[name]
        return StaticSecret(self.provider, name, version or number, text)

    async def aclose(self) -> None:
        self.closed = True


async def test_reads_are_cached_for_the_ttl_then_fetched_again() -> None:
    fetcher, clock = StubFetcher(), Clock()
    fetcher.values["db"] = ("1", VALUE)
    secrets = CachedSecrets(fetcher, ttl=60, clock=clock)
    assert isinstance(secrets, StaticSecretProvider)
    first = await secrets.get("db")
    clock.now += 59
    assert await secrets.get("db") is first
    assert len(fetcher.calls) == 1
    clock.now += 2
    await secrets.get("db")
    await secrets.get("db", version=1)  # a version is its own entry
    assert fetcher.calls == [("db", None), ("db", None), ("db", "1")]
    await secrets.aclose()
    assert fetcher.closed


async def test_concurrent_reads_share_one_fetch_and_its_error() -> None:
    fetcher = StubFetcher()
    fetcher.values["db"] = ("1", VALUE)
    fetcher.gate = asyncio.Event()
    secrets = CachedSecrets(fetcher, ttl=60)
    readers = [asyncio.create_task(secrets.get("db")) for _ in range(20)]
    missing = [asyncio.create_task(secrets.get("nope")) for _ in range(5)]
    await asyncio.sleep(0)
    fetcher.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*readers), 5)
    errors = await asyncio.wait_for(asyncio.gather(*missing, return_exceptions=True), 5)
    assert all(r is results[0] for r in results)
    assert all(isinstance(e, SecretNotFound) for e in errors)
    assert fetcher.calls == [("db", None), ("nope", None)]
    with pytest.raises(SecretNotFound):  # an error is not cached
        await secrets.get("nope")
    assert len(fetcher.calls) == 3
    await secrets.aclose()


async def test_a_cancelled_reader_does_not_cancel_the_shared_fetch() -> None:
    fetcher = StubFetcher()
    fetcher.values["db"] = ("1", VALUE)
    fetcher.gate = asyncio.Event()
    secrets = CachedSecrets(fetcher, ttl=60)
    impatient = asyncio.create_task(secrets.get("db"))
    patient = asyncio.create_task(secrets.get("db"))
    await asyncio.sleep(0)
    impatient.cancel()
    fetcher.gate.set()
    assert (await asyncio.wait_for(patient, 5)).text() == VALUE
    assert impatient.cancelled()
    assert len(fetcher.calls) == 1
    await secrets.aclose()


async def test_refresh_tells_subscribers_of_a_new_version_once() -> None:
    fetcher = StubFetcher()
    fetcher.values["db"] = ("1", "old")
    secrets = CachedSecrets(fetcher, ttl=600)
    seen: list[SecretChange] = []
    heard_async: list[str] = []

    async def async_listener(change: SecretChange) -> None:
        heard_async.append(change.current.version)

    unsubscribe = secrets.subscribe("db", seen.append)
    secrets.subscribe("db", async_listener)
    assert await secrets.refresh("db") == []  # the first read sets the baseline
    assert await secrets.refresh() == []  # nothing changed
    fetcher.values["db"] = ("2", "new")
    changes = await secrets.refresh()
    assert [(c.previous.version, c.current.version) for c in changes] == [("1", "2")]
    assert [(c.previous.text(), c.current.text()) for c in seen] == [("old", "new")]
    assert heard_async == ["2"]
    assert (await secrets.get("db")).text() == "new"  # the cache holds the refreshed value
    unsubscribe()
    fetcher.values["db"] = ("2", "same version, other value")
    await secrets.refresh("db")
    assert len(seen) == 1
    assert heard_async == ["2", "2"]
    del fetcher.values["db"]  # the provider fails: readers keep the cached value for its TTL
    with pytest.raises(SecretNotFound):
        await secrets.refresh("db")
    assert (await secrets.get("db")).text() == "same version, other value"
    await secrets.aclose()


async def test_a_failing_subscriber_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="vault_async.static")
    fetcher = StubFetcher()
    fetcher.values["db"] = ("1", VALUE)
    secrets = CachedSecrets(fetcher, ttl=600)
    heard: list[str] = []

    def broken(change: SecretChange) -> None:
        raise RuntimeError(change.current.text())  # a careless callback quoting the value

    secrets.subscribe("db", broken)
    secrets.subscribe("db", lambda change: heard.append(change.current.version))
    await secrets.get("db")
    fetcher.values["db"] = ("2", VALUE + "-2")
    await secrets.refresh("db")
    assert heard == ["2"]
    events = [r.getMessage() for r in caplog.records]
    assert events == ["static_secret.changed", "static_secret.callback_failed"]
    for record in caplog.records:
        assert VALUE not in record.getMessage() + repr(record.__dict__)
    await secrets.aclose()


async def test_background_refresh_notices_a_change_and_stops_on_close() -> None:
    fetcher = StubFetcher()
    fetcher.values["db"] = ("1", "old")
    changed = asyncio.Event()
    async with CachedSecrets(fetcher, ttl=600, refresh_interval=0.02) as secrets:
        secrets.subscribe("db", lambda change: changed.set())
        await secrets.get("db")
        fetcher.values["db"] = ("2", "new")
        await asyncio.wait_for(changed.wait(), 10)
    calls = len(fetcher.calls)
    await asyncio.sleep(0.1)
    assert len(fetcher.calls) == calls  # the refresh task is gone
    with pytest.raises(SecretConfigError, match="closed"):
        await secrets.get("db")


async def test_background_refresh_survives_a_failing_fetch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vault_async.static")
    heard = _Heard("static_secret.refresh_failed")
    logging.getLogger("vault_async.static").addHandler(heard)
    fetcher = StubFetcher()
    changed = asyncio.Event()
    async with CachedSecrets(fetcher, ttl=600, refresh_interval=0.02) as secrets:
        secrets.subscribe("db", lambda change: changed.set())
        # "db" does not exist yet: each round fails and is logged; then it appears, and changes.
        await asyncio.wait_for(heard.event.wait(), 10)
        fetcher.values["db"] = ("1", "first")
        await secrets.get("db")
        fetcher.values["db"] = ("2", "second")
        await asyncio.wait_for(changed.wait(), 10)
    logging.getLogger("vault_async.static").removeHandler(heard)
    failed = next(r for r in caplog.records if r.getMessage() == "static_secret.refresh_failed")
    assert failed.__dict__["secret"] == "db"
    assert failed.__dict__["error_class"] == "SecretNotFound"


class _Heard(logging.Handler):
    """Sets ``event`` when a record with ``message`` is logged."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self.message:
            self.event.set()


def test_the_value_is_never_in_repr_or_str() -> None:
    secret = StaticSecret("stub", "db", "7", {"password": VALUE}, ("AWSCURRENT",))
    other = StaticSecret("stub", "db", "7", VALUE.encode())
    for text in (repr(secret), str(secret), repr(other), f"{other}"):
        assert VALUE not in text
        assert "value=<hidden>" in text
    assert secret.mapping()["password"] == VALUE
    assert other.text() == VALUE
    assert other.binary() == VALUE.encode()
    assert StaticSecret("stub", "db", "7", '{"a": 1}').mapping() == {"a": 1}
    change = SecretChange(secret, other)
    assert VALUE not in repr(change)


def test_a_value_of_the_wrong_shape_names_the_secret_not_the_value() -> None:
    with pytest.raises(SecretConfigError) as info:
        StaticSecret("stub", "db", "3", VALUE).mapping()
    assert str(info.value) == "stub secret 'db': version 3: the value is not JSON"
    assert VALUE not in repr(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None  # json's error holds the text it failed on
    with pytest.raises(SecretConfigError, match="binary, not UTF-8") as info:
        StaticSecret("stub", "db", "3", b"\xff" + VALUE.encode()).text()
    assert info.value.__context__ is None


async def test_bad_settings_and_names_are_one_line_errors() -> None:
    with pytest.raises(SecretConfigError, match=r"^stub: ttl must be >= 0 seconds, not -1$"):
        CachedSecrets(StubFetcher(), ttl=-1)
    with pytest.raises(SecretConfigError, match="refresh_interval must be > 0"):
        CachedSecrets(StubFetcher(), refresh_interval=0)
    secrets = CachedSecrets(StubFetcher())
    with pytest.raises(SecretConfigError, match="non-empty"):
        await secrets.get(" ")
    with pytest.raises(SecretConfigError, match=r"^stub secret 'db': a version must be non-empty"):
        await secrets.get("db", version="")
    await secrets.aclose()


def test_every_export_exists_and_every_class_is_documented() -> None:
    import vault_async.static as package

    assert len(set(package.__all__)) == len(package.__all__)
    for name in package.__all__:
        obj = getattr(package, name)
        if isinstance(obj, type):
            assert obj.__doc__, name


def test_importing_the_package_loads_no_cloud_sdk() -> None:
    code = (
        "import sys, vault_async.static as s; "
        "assert s.aws_secrets_manager and s.gcp_secret_manager and s.vault_kv; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('boto3', 'botocore', 'aiobotocore', 'google', 'grpc')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("ttl", [0, 60])
async def test_a_subscriber_may_read_the_secret_it_was_told_about(ttl: float) -> None:
    fetcher = StubFetcher()
    fetcher.values["db"] = ("1", "old")
    secrets = CachedSecrets(fetcher, ttl=ttl)
    read_in_callback: list[str] = []

    async def reread(change: SecretChange) -> None:
        # get() with ttl=0, and refresh() always, fetch again from inside the callback
        read_in_callback.append((await secrets.get("db")).text())
        await secrets.refresh("db")

    await secrets.get("db")
    secrets.subscribe("db", reread)
    fetcher.values["db"] = ("2", "new")
    changes = await asyncio.wait_for(secrets.refresh("db"), 5)
    assert [c.current.version for c in changes] == ["2"]
    assert read_in_callback == ["new"]
    assert (await asyncio.wait_for(secrets.get("db"), 5)).text() == "new"  # nothing hangs after
    await secrets.aclose()


async def test_a_fetcher_reading_its_own_secret_gets_an_error_not_a_hang() -> None:
    class Recursive(StubFetcher):
        cache: CachedSecrets

        async def fetch(self, name: str, version: str | None) -> StaticSecret:
            await self.cache.get(name)  # waits on the fetch it is running in
            return await super().fetch(name, version)

    fetcher = Recursive()
    fetcher.values["db"] = ("1", VALUE)
    fetcher.cache = secrets = CachedSecrets(fetcher, ttl=60)
    with pytest.raises(SecretConfigError, match="its own fetch"):
        await asyncio.wait_for(secrets.get("db"), 5)
    await secrets.aclose()


async def test_a_subscriber_refreshing_a_secret_that_always_changes_does_not_hang() -> None:
    class Moving(StubFetcher):
        async def fetch(self, name: str, version: str | None) -> StaticSecret:
            self.values[name] = (str(len(self.calls) + 1), VALUE)  # a new version every read
            return await super().fetch(name, version)

    secrets = CachedSecrets(Moving(), ttl=0)
    await secrets.get("db")
    secrets.subscribe("db", lambda change: secrets.refresh("db"))  # an awaitable result
    assert len(await asyncio.wait_for(secrets.refresh("db"), 5)) == 1
    assert (await asyncio.wait_for(secrets.get("db"), 5)).text() == VALUE
    await asyncio.wait_for(secrets.aclose(), 5)


async def test_closing_the_provider_fails_its_readers_without_cancelling_them() -> None:
    fetcher = StubFetcher()
    fetcher.values["db"] = ("1", VALUE)
    fetcher.gate = asyncio.Event()
    secrets = CachedSecrets(fetcher, ttl=60)
    reader = asyncio.create_task(secrets.get("db"))
    await asyncio.sleep(0)  # the reader runs up to its wait on the shared fetch
    await asyncio.wait_for(secrets.aclose(), 5)
    with pytest.raises(SecretUnavailable, match="the provider was closed"):
        await asyncio.wait_for(reader, 5)
    assert not reader.cancelled()


async def test_a_cancelled_reader_is_still_cancelled_when_the_provider_closes() -> None:
    fetcher = StubFetcher()
    fetcher.values["db"] = ("1", VALUE)
    fetcher.gate = asyncio.Event()
    secrets = CachedSecrets(fetcher, ttl=60)
    reader = asyncio.create_task(secrets.get("db"))
    await asyncio.sleep(0)  # the reader runs up to its wait on the shared fetch
    reader.cancel()
    await asyncio.wait_for(secrets.aclose(), 5)
    with pytest.raises(asyncio.CancelledError):
        await reader
