"""The public surface: one sorted __all__ that matches what the package exports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vault_async
from vault_async import auth, secrets
from vault_async import sys as sys_api

ROOT = Path(__file__).resolve().parents[2]


def test_all_is_sorted_and_complete() -> None:
    for module in (vault_async, auth, secrets, sys_api):
        names = module.__all__
        assert names == sorted(names), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_public_names_are_documented() -> None:
    for name in vault_async.__all__:
        obj = getattr(vault_async, name)
        if isinstance(obj, type):
            assert obj.__doc__, name


def test_runtime_is_public_without_fastapi() -> None:
    # Alembic and scripts open the runtime without the web stack: importing it must not pull
    # FastAPI in, and the FastAPI module re-exports the very same objects.
    code = (
        "import sys, vault_async.runtime as r; "
        "assert r.open_runtime and r.VaultRuntime and r.StartupError; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from vault_async import fastapi, runtime

    assert fastapi.open_runtime is runtime.open_runtime
    assert runtime.__all__ == sorted(runtime.__all__)


def test_alembic_env_imports_the_runtime_not_a_web_module() -> None:
    tree = ast.parse((ROOT / "alembic" / "env.py").read_text())
    modules = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    modules |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "vault_async.runtime" in modules
    assert not {m for m in modules if m in ("app.main", "vault_async.fastapi", "fastapi")}
