"""A token's handle and metric label name its auth method and mount, never a generic auth/token."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from vault_async import AppRoleAuth, AsyncVaultClient, JWTAuth, KubernetesAuth, TokenAuth
from vault_async.auth import UserpassAuth
from vault_async.devstack import DevStack
from vault_async.lifecycle import LeaseManager
from vault_async.lifecycle._sources import token_login
from vault_async.runtime import open_runtime


@pytest.mark.parametrize(
    ("auth", "label"),
    [
        (AppRoleAuth("r", "s"), "auth/approle"),
        (AppRoleAuth("r", "s", mount_point="team/approle"), "auth/team/approle"),
        (KubernetesAuth("r", jwt_file="/x"), "auth/kubernetes"),
        (JWTAuth("r", jwt="j", mount_point="oidc"), "auth/oidc"),
        (UserpassAuth("u", "p"), "auth/userpass"),
        (TokenAuth(token="t"), "auth/token"),
    ],
)
def test_token_source_is_named_after_the_auth_mount(auth: object, label: str) -> None:
    client = AsyncVaultClient("http://127.0.0.1:1")
    assert token_login(client, auth).name == label  # type: ignore[arg-type]
    manager = LeaseManager(client)
    assert manager.manage_token(client, auth).name == label  # type: ignore[arg-type]


def test_an_explicit_name_still_wins() -> None:
    client = AsyncVaultClient("http://127.0.0.1:1")
    handle = LeaseManager(client).manage_token(client, AppRoleAuth("r", "s"), name="mine")
    assert handle.name == "mine"


@pytest.mark.integration
async def test_runtime_metrics_label_the_approle_token(devstack: DevStack, tmp_path: Path) -> None:
    client = AsyncVaultClient(devstack.vault_addr)
    auth = AppRoleAuth(devstack.role_id, devstack.secret_id)
    async with open_runtime(
        devstack.database_url, client=client, auth=auth, db_role=devstack.dynamic_role,
        db_mount=devstack.db_mount, ready_timeout=15,
    ) as runtime:
        assert runtime.token_secret == "auth/approle"
        metrics = generate_latest(runtime.registry).decode()
    assert 'secret="auth/approle"' in metrics
    assert 'secret="auth/token"' not in metrics
