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
