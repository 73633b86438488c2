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
