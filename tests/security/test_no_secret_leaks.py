"""No secret Vault issued appears anywhere the service shows: its output at DEBUG, /healthz,
/metrics, error responses. OpenBao's raw audit log tells the test every secret it issued."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.load import run_load
from tests.support.service import ServiceProcess, migrated_devstack
from vault_async.devstack import DevStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET_KEYS = {"client_token", "password", "secret_id", "token", "accessor", "wrapped_secret_id"}


def _walk(node: Any, parent: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, parent)
    elif isinstance(node, str):
        yield parent, node


def issued_secrets(audit_log: Path) -> tuple[set[str], set[str]]:
    """(secrets, lease ids) found in a raw audit log."""
    secrets: set[str] = set()
    leases: set[str] = set()
    for line in audit_log.read_text().splitlines():
        entry = json.loads(line)
        for key, value in _walk(entry):
            if key in SECRET_KEYS and len(value) >= 8:
                secrets.add(value)
            if key == "lease_id" and value:
                leases.add(value)
        # lookup-self answers carry the token itself under data.id
        path = entry.get("request", {}).get("path", "")
        data = (entry.get("response") or {}).get("data") or {}
        if path.startswith("auth/token/lookup") and isinstance(data.get("id"), str):
            secrets.add(data["id"])
    return secrets, leases


@pytest.fixture(scope="module")
def audited() -> Iterator[DevStack]:
    with migrated_devstack(audit_log=True) as stack:
        yield stack


async def test_nothing_vault_issued_leaks(audited: DevStack) -> None:
    stack = audited
    stack.create_dynamic_role("leaky", "5s", "15s")
    env = stack.env() | {"VAULT_DB_ROLE": "leaky", "LOG_LEVEL": "DEBUG"}
    shown: dict[str, str] = {}
    with ServiceProcess(env) as service:
        load = await run_load(service.base_url, concurrency=8, duration=20)
        async with httpx.AsyncClient(base_url=service.base_url, timeout=5) as http:
            shown["healthz"] = (await http.get("/healthz")).text
            shown["metrics"] = (await http.get("/metrics")).text
            shown["404"] = (await http.get("/users/987654321")).text
            shown["422"] = (await http.post("/users", json={"username": "", "email": 1})).text
            duplicate = {"username": "dup", "email": "d@x.io"}
            await http.post("/users", json=duplicate)
            shown["409"] = (await http.post("/users", json=duplicate)).text
            shown["405"] = (await http.delete("/users")).text
        await asyncio.to_thread(service.stop)
        shown["output"] = service.output()
    assert stack.audit_log is not None
    secrets, leases = issued_secrets(stack.audit_log)
    secrets |= {stack.root_token, stack.secret_id}
    passwords = [s for s in secrets if s]
    print(f"leak check: {len(secrets)} secrets and {len(leases)} lease ids from the audit log; "
          f"{len(shown['output'].splitlines())} output lines; load {load.summary()}")
    assert len(leases) >= 3, "the run should have rotated credentials a few times"
    assert len(passwords) >= 6
    assert "DEBUG" in shown["output"], "the service did not log at DEBUG"
    # The records' fields are printed (so they are checked below too).
    assert re.search(r"lease\.rotated secret=\S+ ttl=\d+ generation=\d+", shown["output"])
    for where, text in shown.items():
        leaked = [s[:4] + "…" for s in secrets if s in text]
        assert not leaked, f"{len(leaked)} issued secrets appear in {where}: {leaked}"
    for where in ("healthz", "metrics"):
        assert not [lease for lease in leases if lease in shown[where]], where
