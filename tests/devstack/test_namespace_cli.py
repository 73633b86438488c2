"""`vault-async devstack --namespace`: everything the service needs, inside that namespace."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.devstack.test_cli import ROOT, env_lines
from tests.support.processes import pump_lines, stop_process
from vault_async import AppRoleAuth, AsyncVaultClient, ClientConfig, Forbidden, cli

pytestmark = pytest.mark.integration


async def use_the_env(env: dict[str, str]) -> None:
    """Log in as the service and get its credentials in the namespace; nothing at the root."""
    login = AppRoleAuth(env["VAULT_ROLE_ID"], env["VAULT_SECRET_ID"])
    async with AsyncVaultClient(config=ClientConfig.from_env(env), max_retries=0) as client:
        assert client.config.namespace == "team-a/app"
        await client.login(login)
        creds = await client.secrets.database.generate_credentials(env["VAULT_DB_ROLE"])
        await client.sys.leases.revoke(creds.lease_id)
    root_env = {k: v for k, v in env.items() if k != "VAULT_NAMESPACE"}
    async with AsyncVaultClient(config=ClientConfig.from_env(root_env), max_retries=0) as root:
        with pytest.raises(Forbidden):  # no AppRole at the root: all of it is in team-a/app
            await root.login(login)


def test_namespace_option_puts_the_service_in_that_namespace(tmp_path: Path) -> None:
    target = tmp_path / "dev.env"
    argv = ["devstack", "--namespace", "team-a/app", "--env-file", str(target)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault_async.cli", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=pump_lines, args=(proc.stdout, lines), daemon=True).start()
    out: list[str] = []
    try:
        while not any("dev stack is up" in line for line in out):
            line = lines.get(timeout=90)
            assert line, f"exited early with code {proc.wait(timeout=30)}"
            out.append(line)
        written = env_lines(target)
        assert written["VAULT_NAMESPACE"] == "team-a/app"
        assert written["VAULT_TOKEN"] not in "".join(out)
        assert env_lines(target.with_name("dev.env.migrate"))["VAULT_NAMESPACE"] == "team-a/app"
        asyncio.run(use_the_env(written))
    finally:
        stop_process(proc)
    assert proc.returncode == 0
    assert any("namespace team-a/app" in line for line in out), out


def test_a_bad_namespace_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["devstack", "--namespace", "team-a/../x"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--namespace" in err[-1]
    assert "'..'" in err[-1]
