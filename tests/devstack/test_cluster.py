"""`DevStack(nodes=3)`: a real OpenBao raft cluster that elects, fails over and rejoins."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.devstack.test_cli import env_lines
from tests.devstack.test_lifecycle import wait_gone
from tests.support.postgres import can_login
from tests.support.processes import pump_lines, stop_process
from vault_async import (
    AppRoleAuth,
    AsyncVaultClient,
    ClientConfig,
    Forbidden,
    InvalidPath,
    Secret,
    cli,
)
from vault_async.devstack import DevStack, DevStackError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevStack]:
    with DevStack(nodes=3) as stack:
        yield stack


def health_code(addr: str) -> int:
    """`sys/health`'s status code at `addr` (200 active, 429 standby, 503 sealed); 0: no answer."""
    try:
        return httpx.get(f"{addr}/v1/sys/health", timeout=5).status_code
    except httpx.TransportError:
        return 0


def wait_for_code(addr: str, code: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while (seen := health_code(addr)) != code and time.monotonic() < deadline:
        time.sleep(0.2)
    return seen


def init_secrets(stack: DevStack) -> dict[str, Any]:
    assert stack.workdir is not None
    secrets: dict[str, Any] = json.loads((stack.workdir / "bao-init.json").read_text())
    return secrets


def test_bad_node_counts_are_refused_before_anything_starts() -> None:
    with pytest.raises(DevStackError, match="nodes=0"):
        DevStack(nodes=0)
    with pytest.raises(DevStackError, match="without TLS"):
        DevStack(nodes=3, tls=True)
    with pytest.raises(DevStackError, match="one node"):
        _ = DevStack().cluster


def test_three_nodes_form_one_active_and_two_standbys(cluster: DevStack) -> None:
    addrs = cluster.vault_addrs
    assert len(set(addrs)) == 3
    assert all(addr.startswith("http://127.0.0.1:") for addr in addrs)
    assert addrs[0] == cluster.vault_addr
    assert sorted(health_code(addr) for addr in addrs) == [200, 429, 429]
    servers = cluster.vault_call("GET", "sys/storage/raft/configuration")["data"]["config"][
        "servers"
    ]
    assert sorted(s["node_id"] for s in servers) == ["node-0", "node-1", "node-2"]
    assert all(s["voter"] for s in servers)


def test_service_environment_lists_every_node(cluster: DevStack) -> None:
    """The service and the migrations follow the cluster: VAULT_ADDR is node 0, the others
    are VAULT_FAILOVER_ADDRS, so a lost node 0 does not stop them."""
    for env in (cluster.env(), cluster.migration_env()):
        assert env["VAULT_ADDR"] == cluster.vault_addrs[0]
        assert env["VAULT_FAILOVER_ADDRS"].split(",") == cluster.vault_addrs[1:]
        assert ClientConfig.from_env(env).addrs == tuple(cluster.vault_addrs)


def test_single_node_environment_names_no_failover_node(devstack: DevStack) -> None:
    assert "VAULT_FAILOVER_ADDRS" not in devstack.env()
    assert "VAULT_FAILOVER_ADDRS" not in devstack.migration_env()


def test_recovery_key_and_root_token_stay_in_private_files(cluster: DevStack) -> None:
    workdir = cluster.workdir
    assert workdir is not None
    secrets = init_secrets(cluster)
    assert secrets["root_token"] == cluster.root_token
    (recovery_key,) = secrets["recovery_keys_b64"]
    assert oct(workdir.stat().st_mode & 0o777) == oct(0o700)
    for name in ("bao-init.json", "bao-seal.key"):
        assert oct((workdir / name).stat().st_mode & 0o777) == oct(0o600)
    assert len((workdir / "bao-seal.key").read_bytes()) == 32
    for index in range(3):
        node_dir = workdir / f"bao-node-{index}"
        assert oct(node_dir.stat().st_mode & 0o777) == oct(0o700)
        for name in ("bao.hcl", "openbao.log"):
            assert oct((node_dir / name).stat().st_mode & 0o777) == oct(0o600)
        log = (node_dir / "openbao.log").read_text()
        assert cluster.root_token not in log
        assert recovery_key not in log
    assert cluster.root_token not in repr(cluster)


async def test_service_logs_in_and_gets_credentials_through_the_active_node(
    cluster: DevStack,
) -> None:
    active = cluster.cluster.active()
    async with AsyncVaultClient(config=ClientConfig(addr=active.addr)) as client:
        await client.login(AppRoleAuth(cluster.role_id, cluster.secret_id))
        secret = await client.secrets.database.generate_credentials(cluster.dynamic_role)
    user, password = secret.data["username"], secret.data["password"]
    assert user in await cluster.v_roles()
    assert await can_login(cluster, user, password)


async def test_kv_written_through_a_standby_reads_back_everywhere(cluster: DevStack) -> None:
    """A standby forwards the write to the active node. Standbys answer reads from their own
    copy of the data (OpenBao's default), so a read elsewhere may lag the write briefly."""
    states = cluster.cluster.states()
    standby = cluster.vault_addrs[states.index("standby")]
    login = cluster.examples_login
    async with AsyncVaultClient(config=ClientConfig(addr=standby)) as client:
        await client.login(AppRoleAuth(login.role_id, login.secret_id))
        token = client.token
        written = await client.secrets.kv_v2.create_or_update_secret("cluster", {"seen": "yes"})
    for addr in cluster.vault_addrs:
        async with AsyncVaultClient(config=ClientConfig(addr=addr, token=token)) as client:
            secret = await read_when_replicated(client, "cluster")
        assert secret.data == {"seen": "yes"}
        assert secret.metadata["version"] == written.version


async def read_when_replicated(client: AsyncVaultClient, path: str) -> Secret:
    """Read a KV v2 secret, waiting (up to 10 s) while this node has not caught up yet."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return await client.secrets.kv_v2.read_secret(path)
        except (InvalidPath, Forbidden):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def test_a_sealed_standby_reports_sealed_until_started_again(cluster: DevStack) -> None:
    nodes = cluster.cluster
    index = nodes.states().index("standby")
    addr = cluster.vault_addrs[index]
    nodes.seal(index)
    assert health_code(addr) == 503
    assert nodes.states()[index] == "sealed"
    nodes.start_node(index)  # the static seal unseals it
    assert wait_for_code(addr, 429) == 429


def test_a_stopped_standby_comes_back_unsealed(cluster: DevStack) -> None:
    nodes = cluster.cluster
    index = nodes.states().index("standby")
    addr = cluster.vault_addrs[index]
    nodes.stop_node(index)
    assert health_code(addr) == 0
    assert nodes.states()[index] == "down"
    nodes.start_node(index)
    assert wait_for_code(addr, 429) == 429


def test_sealing_the_active_node_hands_over_to_a_standby(cluster: DevStack) -> None:
    nodes = cluster.cluster
    old = nodes.active()
    nodes.seal(old.index)
    assert health_code(old.addr) == 503
    new = nodes.active(timeout=60)
    assert new is not old
    nodes.start_node(old.index)
    assert wait_for_code(old.addr, 429) == 429


@pytest.mark.slow
def test_sigkill_of_the_active_node_elects_another_and_it_rejoins_unsealed(
    cluster: DevStack,
) -> None:
    nodes = cluster.cluster
    old = nodes.active()
    assert old.process is not None
    pid = old.process.pid
    nodes.kill(old.index)
    assert wait_gone([pid]) == []
    new = nodes.active(timeout=60)
    assert new is not old
    assert health_code(new.addr) == 200
    # The configuration survived: the new leader hands out database credentials.
    assert cluster.vault_call("GET", f"database/creds/{cluster.dynamic_role}")["data"]["username"]
    nodes.start_node(old.index)
    assert wait_for_code(old.addr, 429) == 429  # back, unsealed by its static seal, standing by
    assert sorted(health_code(addr) for addr in cluster.vault_addrs) == [200, 429, 429]


@pytest.mark.slow
def test_step_down_hands_leadership_to_another_node(cluster: DevStack) -> None:
    nodes = cluster.cluster
    old = nodes.active()
    new = nodes.step_down()
    assert new is not old
    assert health_code(new.addr) == 200
    assert wait_for_code(old.addr, 429) == 429


def test_cli_passes_nodes_and_prints_no_secret(
    cluster: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asked: list[dict[str, Any]] = []
    written: list[dict[str, str]] = []
    target = tmp_path / "dev.env"

    @contextlib.contextmanager
    def shared(**kwargs: Any) -> Iterator[DevStack]:
        asked.append(kwargs)
        yield cluster

    class Event:
        def wait(self) -> None:
            written.append(env_lines(target))
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "DevStack", shared)
    monkeypatch.setattr(cli, "threading", SimpleNamespace(Event=Event))
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    assert cli.main(["devstack", "--nodes", "3", "--env-file", str(target)]) == 0
    assert asked[0]["nodes"] == 3
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    (recovery_key,) = init_secrets(cluster)["recovery_keys_b64"]
    for secret in (cluster.root_token, cluster.secret_id, recovery_key):
        assert secret not in shown
    assert written[0]["VAULT_ADDR"] == cluster.vault_addr
    assert f"VAULT_ADDR={cluster.vault_addr}" in captured.out
    assert f"# OpenBao nodes: {' '.join(cluster.vault_addrs)}" in captured.out.splitlines()


def bao_children(pid: int) -> dict[int, list[str]]:
    """The `bao` processes whose parent is `pid`, with their command lines."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and Path(argv[0]).name == "bao":
            found[int(entry.name)] = argv
    return found


@pytest.mark.slow
def test_real_command_runs_three_nodes_and_removes_them(tmp_path: Path) -> None:
    """`vault-async devstack --nodes 3`: three nodes up, no secret shown, nothing left after."""
    target = tmp_path / "dev.env"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault_async.cli", "devstack", "--nodes", "3",
         "--env-file", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    errors: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    assert proc.stderr is not None
    threading.Thread(target=pump_lines, args=(proc.stdout, lines), daemon=True).start()
    threading.Thread(target=pump_lines, args=(proc.stderr, errors), daemon=True).start()
    out: list[str] = []
    try:
        while not any("dev stack is up" in line for line in out):
            line = lines.get(timeout=120)
            assert line, f"exited early with code {proc.wait(timeout=30)}"
            out.append(line)
        children = bao_children(proc.pid)
        configs = [arg.removeprefix("-config=") for argv in children.values() for arg in argv
                   if arg.startswith("-config=")]
        workdir = Path(configs[0]).parents[1]
        init = json.loads((workdir / "bao-init.json").read_text())
        written = env_lines(target)
    finally:
        stop_process(proc)
    for stream, into in ((lines, out), (errors, out)):
        while (line := stream.get(timeout=10)) != "":
            into.append(line)
    shown = "".join(out)
    assert len(children) == 3
    assert len(set(configs)) == 3
    assert written["VAULT_TOKEN"] == init["root_token"]
    assert len(written["VAULT_FAILOVER_ADDRS"].split(",")) == 2
    assert written["VAULT_ADDR"] not in written["VAULT_FAILOVER_ADDRS"]
    for secret in (init["root_token"], *init["recovery_keys_b64"], written["VAULT_SECRET_ID"]):
        assert secret not in shown
    assert proc.returncode == 0
    assert wait_gone(list(children)) == []
    assert not workdir.exists()
    assert not target.exists()
