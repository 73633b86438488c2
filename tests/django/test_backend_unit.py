"""The Django backend's pieces on their own: settings, refusals, parking, the engine registry."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

from vault_async._sqlerrors import is_login_rejected
from vault_async._sync_credentials import SyncCredential
from vault_async.django._options import VaultDbOptions, read_options
from vault_async.django._parking import Held, Parking
from vault_async.django._runtimes import Registry


def entry(**options: object) -> dict[str, object]:
    return {"ENGINE": "vault_async.django", "NAME": "app", "OPTIONS": options}


# -- settings -------------------------------------------------------------------------------


def test_options_come_from_options_first_then_the_environment() -> None:
    read = read_options("default", entry(), {"VAULT_DB_ROLE": "app", "VAULT_DB_MOUNT": "pg"})
    assert read == VaultDbOptions("app", "pg", False, None, 30.0)
    read = read_options("default", entry(), {"VAULT_DB_STATIC_ROLE": "app-static"})
    assert (read.role, read.static) == ("app-static", True)
    read = read_options(
        "x", entry(vault_role="r", static=True, assume_role='we"ird', startup_timeout=5),
        {"VAULT_DB_ROLE": "ignored"},
    )
    assert (read.role, read.static, read.startup_timeout) == ("r", True, 5.0)
    assert read.role_sql == 'SET ROLE "we""ird"'


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (entry(), "DATABASES['default']['OPTIONS']['vault_role'] (or VAULT_DB_ROLE)"),
        (entry(vault_role="a", pool=True), "['pool'] is not supported"),
        (entry(vault_role="a", static="yes"), "['static'] must be True or False"),
        (entry(vault_role="a", assume_role="bad\nrole"), "['assume_role']: role name must not"),
        (entry(vault_role="a", assume_role="x" * 64), "['assume_role']: role name must be 1"),
        (entry(vault_role="a", startup_timeout=0), "['startup_timeout'] must be seconds > 0"),
        (entry(vault_role=3), "['vault_role'] must be a string"),
        ({**entry(vault_role="a"), "PASSWORD": "pw"}, "DATABASES['default']['PASSWORD'] must"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_it(settings: dict[str, object], named: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        read_options("default", settings, {})
    message = str(caught.value)
    assert named in message
    assert "\n" not in message
    assert "pw" not in message


# -- refusals ---------------------------------------------------------------------------------

REFUSED = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  '


@pytest.mark.parametrize(
    ("message", "refused"),
    [
        (REFUSED + 'password authentication failed for user "v-app-x"', True),
        (REFUSED + 'role "v-app-x" does not exist', True),
        (REFUSED + 'role "v-app-x" is not permitted to log in', True),
        (REFUSED + 'no pg_hba.conf entry for host "1.2.3.4", user "u"', True),
        (REFUSED + "the database system is starting up", False),
        ("connection failed: Connection refused", False),
        (REFUSED + 'database "app" does not exist', False),
    ],
)
def test_a_refused_login_is_told_from_other_connect_failures(message: str, refused: bool) -> None:
    assert is_login_rejected(psycopg.OperationalError(message)) is refused


# -- parking ----------------------------------------------------------------------------------


class FakeConnection:
    def __init__(self) -> None:
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


class Uses:
    def __init__(self) -> None:
        self.count: Counter[int] = Counter()

    def __call__(self, generation: int, delta: int) -> None:
        self.count[generation] += delta

    def out(self) -> dict[int, int]:
        return {g: n for g, n in self.count.items() if n}


def held(connection: object, generation: int, uses: Uses) -> Held:
    uses(generation, 1)
    return Held(connection, generation, uses)


def test_a_rotation_closes_parked_connections_of_older_generations_only() -> None:
    uses, parking = Uses(), Parking()
    old, new, busy = FakeConnection(), FakeConnection(), FakeConnection()
    old_held, new_held, busy_held = held(old, 1, uses), held(new, 2, uses), held(busy, 1, uses)
    assert parking.park(old_held, 1)
    assert parking.park(new_held, 2)
    assert parking.close_older(2) == 1
    assert (old.closes, new.closes, busy.closes) == (1, 0, 0)
    assert uses.out() == {1: 1, 2: 1}  # the busy connection of generation 1 is still counted
    assert not parking.unpark(old_held)  # its thread must reconnect
    assert parking.unpark(new_held)
    busy_held.release()
    busy_held.release()
    assert uses.out() == {2: 1}


def test_a_connection_of_an_older_generation_is_not_parked() -> None:
    uses, parking = Uses(), Parking()
    stale = held(FakeConnection(), 1, uses)
    assert not parking.park(stale, 2)
    assert len(parking) == 0


def test_a_collected_connection_gives_its_count_back() -> None:
    uses = Uses()
    connection: FakeConnection | None = FakeConnection()
    record = held(connection, 3, uses)
    assert uses.out() == {3: 1}
    connection = None
    gc.collect()
    assert uses.out() == {}
    record.release()
    assert uses.out() == {}


# -- one engine per role and process --------------------------------------------------------


class FakeCredentials:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[SyncCredential], None]] = []

    def current(self) -> SyncCredential:
        return SyncCredential("u", "p", 1)

    def force_rotate(
        self, reason: str, timeout: float = 30.0, *, generation: int | None = None
    ) -> SyncCredential:
        return self.current()

    def track_use(self, generation: int, delta: int) -> None:
        pass

    def subscribe(self, callback: Callable[[SyncCredential], None]) -> Callable[[], None]:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)


def test_engines_start_once_per_role_and_stop_at_shutdown() -> None:
    started: list[str] = []
    stopped: list[str] = []

    @contextmanager
    def starter(options: VaultDbOptions) -> Iterator[FakeCredentials]:
        started.append(options.role)
        try:
            yield FakeCredentials()
        finally:
            stopped.append(options.role)

    registry = Registry(starter)
    first = registry.get(VaultDbOptions("app"))
    assert registry.get(VaultDbOptions("app", assume_role="other")) is first
    registry.get(VaultDbOptions("app", static=True))
    assert started == ["app", "app"]
    credentials = first.credentials
    assert isinstance(credentials, FakeCredentials)
    assert len(credentials.callbacks) == 1
    registry.shutdown()
    assert stopped == ["app", "app"]
    assert credentials.callbacks == []
    assert first.stopped
    assert first.obsolete(1)
    assert registry.get(VaultDbOptions("app")) is not first  # started again on demand
    registry.shutdown()


def test_an_engine_that_fails_to_start_is_not_kept() -> None:
    calls = 0

    @contextmanager
    def starter(options: VaultDbOptions) -> Iterator[FakeCredentials]:
        nonlocal calls
        calls += 1
        raise RuntimeError("vault said no")
        yield FakeCredentials()

    registry = Registry(starter)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            registry.get(VaultDbOptions("app"))
    assert calls == 2
    assert registry.running() == []


FORKED_CHILD = """
import gc, os, signal, sys, time
from contextlib import contextmanager
from vault_async._sync_credentials import SyncCredential
from vault_async.django._options import VaultDbOptions
from vault_async.django._parking import Held
from vault_async.django._runtimes import Registry

counted = []

class Credentials:
    def current(self): return SyncCredential("u", "p", 1)
    def force_rotate(self, reason, timeout=30.0): return self.current()
    def track_use(self, generation, delta): counted.append((generation, delta))
    def subscribe(self, callback): return lambda: None

@contextmanager
def starter(options):
    yield Credentials()

class Connection:
    def close(self): print("closed the parent's socket", flush=True)

registry = Registry(starter)
entry = registry.get(VaultDbOptions("app"))
connection = Connection()
held = Held(connection, 1, entry.credentials.track_use)
entry.parking.park(held, 1)
entry.parking._lock.acquire()  # as a rotation's closer thread would, at the fork
pid = os.fork()
if pid == 0:
    del connection
    gc.collect()
    print("child", entry.stopped, registry.running(), counted, flush=True)
    print("unparked", entry.parking._lock.acquire(timeout=2), flush=True)
    os._exit(0)
entry.parking._lock.release()
os.waitpid(pid, 0)
entry.parking.unpark(held)  # the parent's own shutdown would close it: not what is tested
print("parent", entry.stopped, len(registry.running()), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_stops_the_inherited_engines_and_owes_them_nothing(
    tmp_path: Path,
) -> None:
    script = tmp_path / "forked.py"
    script.write_text(FORKED_CHILD)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "child True [] []", "unparked True", "parent False 1"
    ], done.stderr


WRAPPER = """
import django
from django.conf import settings
settings.configure(DATABASES={}, INSTALLED_APPS=[], USE_TZ=True)
django.setup()
from vault_async._sync_credentials import SyncCredential
from vault_async.django._options import VaultDbOptions
from vault_async.django._parking import Held
from vault_async.django._runtimes import Entry
from vault_async.django.base import DatabaseWrapper

class Credentials:
    def current(self): return SyncCredential("u", "p", 1)
    def track_use(self, generation, delta): print("counted", generation, delta)
    def subscribe(self, callback): return lambda: None
    def force_rotate(self, reason, timeout=30.0): return self.current()

class Info:
    server_version = 170000
    def parameter_status(self, name): return "UTC"

class Cursor:
    def __enter__(self): return self
    def __exit__(self, *exc): return False
    def execute(self, sql, params=None): raise RuntimeError("role does not exist")

class Connection:
    info = Info()
    autocommit = True
    def cursor(self): return Cursor()
    def close(self): print("closed, parked:", held.parked)

entry = Entry(VaultDbOptions("app", assume_role="no_such_role"), Credentials())
wrapper = DatabaseWrapper(
    {"ENGINE": "vault_async.django", "NAME": "app", "USER": "", "PASSWORD": "", "HOST": "",
     "PORT": "", "TIME_ZONE": None, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False,
     "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False,
     "OPTIONS": {"vault_role": "app", "assume_role": "no_such_role"}},
    "default",
)
connection = Connection()
held = Held(connection, 1, entry.credentials.track_use)
wrapper.connection, wrapper.vault_held, wrapper.vault_held_by = connection, held, entry
"""


def run_wrapper(tmp_path: Path, steps: str) -> list[str]:
    """``steps`` run after WRAPPER (a backend wrapper on a fake connection, Django set up in a
    process of its own); the lines it printed."""
    script = tmp_path / "wrapper.py"
    script.write_text(WRAPPER + steps)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_parked_connection_is_unparked_before_its_thread_closes_it(tmp_path: Path) -> None:
    # Parked while closing, a rotation could close the same socket again from its thread.
    steps = "entry.parking.park(held, 1)\nwrapper.close()\nprint(len(entry.parking))\n"
    assert run_wrapper(tmp_path, steps) == ["closed, parked: False", "counted 1 -1", "0"]


def test_a_failed_set_role_closes_the_new_connection(tmp_path: Path) -> None:
    # Left open, Django would use it on the next query without the role.
    steps = """
from django.db.backends.base import base
base.RAN_DB_VERSION_CHECK.add("default")  # the fake has no server to ask
try:
    wrapper.init_connection_state()
except Exception as error:
    print("raised", type(error).__name__, error)
print("connection", wrapper.connection, wrapper.vault_held)
"""
    assert run_wrapper(tmp_path, steps) == [
        "closed, parked: False", "counted 1 -1", "raised RuntimeError role does not exist",
        "connection None None",
    ]
