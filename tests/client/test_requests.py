"""What goes on the wire: paths quoted, headers, bodies (base64 for transit, CAS options)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
import respx

from vault_async import (
    AsyncVaultClient,
    InvalidConfig,
    JWTAuth,
    KubernetesAuth,
    LDAPAuth,
    UserpassAuth,
)

from .conftest import TOKEN, VirtualTime, make_client

LOGIN_OK = {"auth": {"client_token": "t-new", "lease_duration": 60}}


def _body(route: respx.Route) -> dict[str, object]:
    return json.loads(route.calls.last.request.content)  # type: ignore[no-any-return]


async def test_headers(router: respx.MockRouter, vtime: VirtualTime) -> None:
    route = router.get("/secret/data/x").respond(200, json={"data": {"data": {}}})
    async with make_client(router, vtime, namespace="team/a") as client:
        await client.secrets.kv_v2.read_secret("x")
    headers = route.calls.last.request.headers
    assert headers["X-Vault-Token"] == TOKEN
    assert headers["X-Vault-Namespace"] == "team/a"
    assert headers["X-Vault-Request"] == "true"


async def test_login_sends_no_token(client: AsyncVaultClient, router: respx.MockRouter) -> None:
    route = router.post("/auth/userpass/login/bob%40corp").respond(200, json=LOGIN_OK)
    await client.login(UserpassAuth("bob@corp", "pw"))
    assert "X-Vault-Token" not in route.calls.last.request.headers
    assert _body(route) == {"password": "pw"}
    assert client.token == "t-new"


@pytest.mark.parametrize(
    ("role", "expected"),
    [("app", "app"), ("a b", "a%20b"), ("x?y#z", "x%3Fy%23z")],
)
async def test_role_names_are_quoted(
    client: AsyncVaultClient, router: respx.MockRouter, role: str, expected: str
) -> None:
    route = router.get(f"/database/creds/{expected}").respond(200, json={"data": {}})
    await client.secrets.database.generate_credentials(role)
    assert route.called
    assert route.calls.last.request.url.raw_path == f"/v1/database/creds/{expected}".encode()


@pytest.mark.parametrize("bad", ["", ".", ".."])
async def test_dot_segments_rejected(client: AsyncVaultClient, bad: str) -> None:
    with pytest.raises(InvalidConfig):
        await client.secrets.database.generate_credentials(bad)
    with pytest.raises(InvalidConfig):
        await client.secrets.kv_v2.read_secret(f"a/{bad}/b" if bad else "")


async def test_kv_path_segments_quoted(client: AsyncVaultClient, router: respx.MockRouter) -> None:
    route = router.get("/team%20kv/data/a%3F/b%25c").respond(200, json={"data": {"data": {}}})
    await client.secrets.kv_v2.read_secret("/a?/b%c/", mount_point="team kv")
    assert route.called


async def test_kv_write_cas_and_patch(client: AsyncVaultClient, router: respx.MockRouter) -> None:
    write = router.post("/secret/data/p").respond(200, json={"data": {"version": 4}})
    patch = router.patch("/secret/data/p").respond(200, json={"data": {"version": 5}})
    assert (await client.secrets.kv_v2.create_or_update_secret("p", {"a": 1}, cas=3)).version == 4
    assert _body(write) == {"data": {"a": 1}, "options": {"cas": 3}}
    assert (await client.secrets.kv_v2.patch("p", {"b": 2})).version == 5
    assert patch.calls.last.request.headers["Content-Type"] == "application/merge-patch+json"
    assert _body(patch) == {"data": {"b": 2}}


async def test_list_uses_query_and_404_is_empty(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    route = router.get("/database/roles", params={"list": "true"}).respond(
        200, json={"data": {"keys": ["a", "b"]}}
    )
    assert await client.secrets.database.list_roles() == ("a", "b")
    assert route.called
    router.get("/database/static-roles").respond(404, json={"errors": []})
    assert await client.secrets.database.list_static_roles() == ()


async def test_transit_base64_both_ways(client: AsyncVaultClient, router: respx.MockRouter) -> None:
    enc = router.post("/transit/encrypt/k").respond(
        200, json={"data": {"ciphertext": "vault:v1:Q"}}
    )
    dec = router.post("/transit/decrypt/k").respond(
        200, json={"data": {"plaintext": base64.b64encode(b"\x00hi").decode()}}
    )
    batch = router.post("/transit/encrypt/k2").respond(
        200,
        json={
            "data": {"batch_results": [{"ciphertext": "vault:v1:A"}, {"ciphertext": "vault:v1:B"}]}
        },
    )
    assert await client.secrets.transit.encrypt("k", b"\x00hi", context=b"ctx") == "vault:v1:Q"
    assert _body(enc) == {"plaintext": "AGhp", "context": "Y3R4"}
    assert await client.secrets.transit.decrypt("k", "vault:v1:Q") == b"\x00hi"
    assert _body(dec) == {"ciphertext": "vault:v1:Q"}
    assert await client.secrets.transit.encrypt_batch("k2", [b"a", b"b"]) == [
        "vault:v1:A",
        "vault:v1:B",
    ]
    assert _body(batch) == {"batch_input": [{"plaintext": "YQ=="}, {"plaintext": "Yg=="}]}


async def test_transit_batch_item_error(client: AsyncVaultClient, router: respx.MockRouter) -> None:
    from vault_async import InvalidRequest

    router.post("/transit/decrypt/k").respond(
        200, json={"data": {"batch_results": [{"plaintext": "YQ=="}, {"error": "bad ciphertext"}]}}
    )
    with pytest.raises(InvalidRequest, match=r"\[1\]"):
        await client.secrets.transit.decrypt_batch("k", ["vault:v1:a", "vault:v1:b"])


async def test_lease_calls(client: AsyncVaultClient, router: respx.MockRouter) -> None:
    """The lease id goes in the URL (so a policy can name the leases a token may touch)."""
    renew = router.put("/sys/leases/renew/db/creds/x/1").respond(
        200, json={"lease_id": "db/creds/x/1", "lease_duration": 90, "renewable": True}
    )
    revoke = router.put("/sys/leases/revoke/db/creds/x/1").respond(204)
    prefix = router.put("/sys/leases/revoke-prefix/database/creds/app").respond(204)
    await client.sys.leases.renew("db/creds/x/1", increment=90)
    assert _body(renew) == {"increment": 90}
    await client.sys.leases.renew("db/creds/x/1")
    assert renew.calls.last.request.content in (b"", b"{}")
    await client.sys.leases.revoke("db/creds/x/1")
    assert revoke.calls.last.request.content in (b"", b"{}")
    await client.sys.leases.revoke_prefix("database/creds/app")
    assert prefix.called


async def test_lease_id_segments_are_quoted(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    route = router.put(url__regex=r"/sys/leases/revoke/").respond(204)
    await client.sys.leases.revoke("db/creds/x/a?b#c")
    assert route.calls.last.request.url.raw_path.endswith(
        b"/sys/leases/revoke/db/creds/x/a%3Fb%23c"
    )
    for bad in ("", "db/../sys/x", "db//x"):
        with pytest.raises(InvalidConfig, match="lease_id"):
            await client.sys.leases.revoke(bad)
        with pytest.raises(InvalidConfig, match="lease_id"):
            await client.sys.leases.renew(bad)


async def test_token_renew_self_increment(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    route = router.post("/auth/token/renew-self").respond(
        200, json={"auth": {"client_token": TOKEN, "lease_duration": 300, "renewable": True}}
    )
    result = await client.auth.token.renew_self(increment=300)
    assert _body(route) == {"increment": "300s"}
    assert result.lease_duration == 300


async def test_health_reports_sealed_instead_of_raising(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    route = router.get("/sys/health").respond(
        503, json={"initialized": True, "sealed": True, "standby": True, "version": "2.4.0"}
    )
    health = await client.sys.health()
    assert health.status_code == 503
    assert health.sealed
    assert route.call_count == 1
    assert "X-Vault-Token" not in route.calls.last.request.headers


async def test_unseal(client: AsyncVaultClient, router: respx.MockRouter) -> None:
    route = router.put("/sys/unseal").respond(200, json={"sealed": False, "t": 1, "n": 1})
    status = await client.sys.unseal("key-share")
    assert status.sealed is False
    assert status.threshold == 1
    assert _body(route) == {"key": "key-share"}


async def test_other_logins(
    client: AsyncVaultClient, router: respx.MockRouter, tmp_path: Path
) -> None:
    jwt_file = tmp_path / "jwt"
    jwt_file.write_text("eyJ.header.sig\n")
    k8s = router.post("/auth/k8s-prod/login").respond(200, json=LOGIN_OK)
    jwt = router.post("/auth/jwt/login").respond(200, json=LOGIN_OK)
    ldap = router.post("/auth/ldap/login/carol").respond(200, json=LOGIN_OK)
    await client.login(KubernetesAuth("web", jwt_file=jwt_file, mount_point="k8s-prod"))
    assert _body(k8s) == {"role": "web", "jwt": "eyJ.header.sig"}
    await client.login(JWTAuth("ci", jwt="tok.en.x"))
    assert _body(jwt) == {"jwt": "tok.en.x", "role": "ci"}
    await client.login(LDAPAuth("carol", "pw"))
    assert _body(ldap) == {"password": "pw"}
    with pytest.raises(InvalidConfig, match="JWT file"):
        await client.login(JWTAuth("ci", jwt_file=tmp_path / "missing"))


async def test_lazy_open_and_close(router: respx.MockRouter, vtime: VirtualTime) -> None:
    router.get("/sys/seal-status").respond(200, json={"sealed": False})
    client = make_client(router, vtime)
    assert "closed" in repr(client)
    assert (await client.sys.seal_status()).sealed is False
    assert "open" in repr(client)
    await client.aclose()
    assert "closed" in repr(client)


async def test_any_httpx_transport_is_accepted() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"data": {"data": {"k": "v"}}})

    client = AsyncVaultClient("http://v:8200", "t", transport=httpx.MockTransport(handler))
    async with client:
        assert (await client.secrets.kv_v2.read_secret("a")).data == {"k": "v"}
    assert seen == ["/v1/secret/data/a"]
