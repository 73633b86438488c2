"""The auth method named by VAULT_AUTH_METHOD, as sync.start(auth=None) reads it."""

from __future__ import annotations

import pytest

from vault_async import InvalidConfig
from vault_async.auth import AppRoleAuth, JWTAuth, KubernetesAuth, TokenAuth
from vault_async.auth._environ import auth_from_env


def test_token_is_the_default() -> None:
    assert isinstance(auth_from_env({}, token="s.abc"), TokenAuth)


@pytest.mark.parametrize(
    ("environ", "kind"),
    [
        ({"VAULT_AUTH_METHOD": "approle", "VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s"},
         AppRoleAuth),
        ({"VAULT_AUTH_METHOD": "kubernetes", "VAULT_AUTH_ROLE": "app"}, KubernetesAuth),
        ({"VAULT_AUTH_METHOD": "JWT", "VAULT_AUTH_ROLE": "app", "VAULT_JWT_FILE": "/t"}, JWTAuth),
    ],
)
def test_each_method(environ: dict[str, str], kind: type) -> None:
    assert isinstance(auth_from_env(environ), kind)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "VAULT_TOKEN"),
        ({"VAULT_AUTH_METHOD": "approle", "VAULT_SECRET_ID": "s"}, "VAULT_ROLE_ID"),
        ({"VAULT_AUTH_METHOD": "approle", "VAULT_ROLE_ID": "r"}, "VAULT_SECRET_ID"),
        ({"VAULT_AUTH_METHOD": "jwt", "VAULT_AUTH_ROLE": "app"}, "VAULT_JWT_FILE"),
        ({"VAULT_AUTH_METHOD": "ldap"}, "VAULT_AUTH_METHOD"),
    ],
)
def test_a_missing_setting_is_named_in_one_line(environ: dict[str, str], named: str) -> None:
    secret = "s3cr3t-value"
    environ = {**environ, "VAULT_SECRET_ID_FILE_UNUSED": secret}
    with pytest.raises(InvalidConfig) as caught:
        auth_from_env(environ)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)
    assert secret not in str(caught.value)


def test_a_token_file_wins_over_the_home_token_file() -> None:
    # sync.start() passes the token ClientConfig.from_env found, ~/.vault-token included
    method = auth_from_env({"VAULT_TOKEN_FILE": "/run/agent/token"}, token="s.stray-home-token")
    assert isinstance(method, TokenAuth)
    assert method.owned_elsewhere
    assert "/run/agent/token" in repr(method)
    assert "s.stray" not in repr(method)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"VAULT_TOKEN": "s.x", "VAULT_TOKEN_FILE": "/t"}, "VAULT_TOKEN and VAULT_TOKEN_FILE"),
        (
            {"VAULT_AUTH_METHOD": "approle", "VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s",
             "VAULT_TOKEN_FILE": "/t"},
            "VAULT_TOKEN_FILE is token auth",
        ),
    ],
)
def test_a_token_file_with_another_setting_is_refused(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidConfig, match=message):
        auth_from_env(environ, token="s.x")
