"""Route templates: every route this package builds keeps its mount and loses its names."""

from __future__ import annotations

import pytest

from vault_async._routes import route_template

LEASE_ID = "database/creds/app/h3Ws0zCk2F1aQq9ErTz"


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("database/creds/app", "database/creds/{role}"),
        ("team/database/static-creds/app", "team/database/static-creds/{role}"),
        ("database/roles/app", "database/roles/{role}"),
        ("database/rotate-role/app", "database/rotate-role/{role}"),
        (f"sys/leases/renew/{LEASE_ID}", "sys/leases/renew/{lease_id}"),
        (f"sys/leases/revoke/{LEASE_ID}", "sys/leases/revoke/{lease_id}"),
        ("sys/leases/revoke-prefix/database/creds", "sys/leases/revoke-prefix/{prefix}"),
        ("sys/leases/lookup", "sys/leases/lookup"),
        ("sys/health", "sys/health"),
        ("sys/wrapping/unwrap", "sys/wrapping/unwrap"),
        ("auth/approle/login", "auth/{mount}/login"),
        ("auth/team/approle/login", "auth/{mount}/login"),
        ("auth/userpass/login/alice", "auth/{mount}/login/{username}"),
        ("auth/token/lookup-self", "auth/token/lookup-self"),
        ("auth/token/create-orphan", "auth/token/create-orphan"),
        ("secret/data/app/config", "secret/data/{path}"),
        ("secret/metadata", "secret/metadata"),
        ("secret/metadata/app/config", "secret/metadata/{path}"),
        ("transit/keys/orders/rotate", "transit/keys/{key}/rotate"),
        ("transit/encrypt/orders", "transit/encrypt/{key}"),
        ("transit/datakey/plaintext/orders", "transit/datakey/{kind}/{key}"),
        ("database/config/pg", "database/{path}"),
    ],
)
def test_template(path: str, template: str) -> None:
    assert route_template(path) == template


TOKEN = "hvs.CAESIJ2c0Zq8tokenValueNeverKept"


@pytest.mark.parametrize(
    ("path", "template"),
    [
        (f"auth/token/lookup/{TOKEN}", "auth/token/lookup/{token}"),
        (f"auth/token/renew/{TOKEN}", "auth/token/renew/{token}"),
        (f"auth/token/revoke/{TOKEN}", "auth/token/revoke/{token}"),
        (f"auth/token/revoke-orphan/{TOKEN}", "auth/token/revoke-orphan/{token}"),
        (f"auth/token/lookup-accessor/{TOKEN}", "auth/token/lookup-accessor/{accessor}"),
        (f"auth/token/revoke-accessor/{TOKEN}", "auth/token/revoke-accessor/{accessor}"),
        (f"auth/token/create/{TOKEN}", "auth/token/create/{role}"),
        (f"auth/token/roles/{TOKEN}", "auth/token/roles/{role}"),
        (f"auth/token/{TOKEN}/x/y", "auth/token/{path}"),
        ("auth/token/renew-self", "auth/token/renew-self"),
        ("auth/token/roles", "auth/token/roles"),
        (f"sys/raw/sys/token/id/{TOKEN}", "sys/raw/{path}"),
        ("sys/namespaces/team-a", "sys/namespaces/{namespace}"),
        ("sys/policies/password/mypol/generate", "sys/policies/password/{name}/generate"),
        ("sys/plugins/catalog/database/my-plugin", "sys/plugins/catalog/{path}"),
        ("sys/audit/file-a", "sys/audit/{path}"),
        ("sys/leases/lookup", "sys/leases/lookup"),
    ],
)
def test_a_token_or_a_name_never_stays_in_a_template(path: str, template: str) -> None:
    assert route_template(path) == template


def test_a_token_never_reaches_the_template_cache() -> None:
    from vault_async._routes import _template

    route_template(f"auth/token/lookup/{TOKEN}")
    route_template(f"sys/raw/sys/token/id/{TOKEN}")
    before = _template.cache_info().currsize
    route_template(f"auth/token/renew/{TOKEN}-2")
    assert _template.cache_info().currsize == before
