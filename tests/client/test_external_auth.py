"""JWT and Kubernetes logins against the real OpenBao.

OpenBao verifies a JWT it is given against a public key we configure, so the test signs its
own tokens. The Kubernetes method asks a Kubernetes API server's TokenReview endpoint whether
a service-account token is valid; a minimal one runs here on loopback, answering from a set
of tokens it knows, so the login path through OpenBao is the real one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.client._util import enable_auth, unique
from tests.support.certs import self_signed_pem
from vault_async import (
    AsyncVaultClient,
    ClientConfig,
    Forbidden,
    InvalidRequest,
    JWTAuth,
    KubernetesAuth,
)
from vault_async.devstack._processes import free_port

pytestmark = pytest.mark.integration

AUDIENCE = "vault-async-tests"
NAMESPACE = "payments"
SERVICE_ACCOUNT = "api"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _sign(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "nbf": now, "exp": now + 300} | claims, key, "RS256")


async def test_jwt_login_on_custom_mount(
    root_client: AsyncVaultClient, signing_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    mount = unique("jwt")
    await enable_auth(root_client, mount, "jwt")
    await root_client.request(
        "POST", f"auth/{mount}/config",
        json={"jwt_validation_pubkeys": [_public_pem(signing_key)]}, idempotent=True,
    )
    await root_client.request(
        "POST", f"auth/{mount}/role/ci",
        json={"role_type": "jwt", "bound_audiences": [AUDIENCE], "user_claim": "sub",
              "token_policies": ["default"], "token_ttl": "10m"},
        idempotent=True,
    )
    token_file = tmp_path / "jwt"
    token_file.write_text(_sign(signing_key, {"sub": "build-42", "aud": AUDIENCE}) + "\n")
    async with AsyncVaultClient(config=ClientConfig(addr=root_client.config.addr)) as client:
        auth = await client.login(JWTAuth("ci", jwt_file=token_file, mount_point=mount))
        assert auth.metadata.get("role") == "ci"
        assert "default" in auth.policies
        assert 0 < auth.lease_duration <= 600
        assert (await client.auth.token.lookup_self()).accessor == auth.accessor

        # A token for another audience, and one signed by a key Vault does not know.
        wrong_audience = _sign(signing_key, {"sub": "build-42", "aud": "someone-else"})
        with pytest.raises(InvalidRequest):
            await client.login(JWTAuth("ci", jwt=wrong_audience, mount_point=mount))
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = _sign(stranger, {"sub": "build-42", "aud": AUDIENCE})
        with pytest.raises(InvalidRequest):
            await client.login(JWTAuth("ci", jwt=forged, mount_point=mount))


_SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"


def _service_account_token(key: rsa.RSAPrivateKey, uid: str) -> str:
    """The claims of a Kubernetes service-account token (signature unchecked by OpenBao)."""
    return _sign(key, {
        "iss": "kubernetes/serviceaccount",
        "sub": _SUBJECT,
        "kubernetes.io/serviceaccount/namespace": NAMESPACE,
        "kubernetes.io/serviceaccount/service-account.name": SERVICE_ACCOUNT,
        "kubernetes.io/serviceaccount/service-account.uid": uid,
    })


class TokenReviewer:
    """A Kubernetes API server's TokenReview endpoint that knows a set of valid tokens."""

    def __init__(self) -> None:
        self.valid: dict[str, dict[str, str]] = {}
        self.reviews = 0

    async def review(self, request: web.Request) -> web.Response:
        self.reviews += 1
        body = await request.json()
        user = self.valid.get(body.get("spec", {}).get("token", ""))
        status: dict[str, Any] = {"authenticated": user is not None}
        if user is not None:
            status["user"] = user
        return web.json_response({
            "kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "status": status,
        })


@pytest.fixture
async def token_reviewer() -> AsyncIterator[tuple[TokenReviewer, str]]:
    reviewer = TokenReviewer()
    application = web.Application()
    application.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", reviewer.review)
    runner = web.AppRunner(application)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield reviewer, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_kubernetes_login_with_service_account_file(
    root_client: AsyncVaultClient,
    token_reviewer: tuple[TokenReviewer, str],
    signing_key: rsa.RSAPrivateKey,
    tmp_path: Path,
) -> None:
    reviewer, host = token_reviewer
    mount = unique("k8s")
    await enable_auth(root_client, mount, "kubernetes")
    await root_client.request(
        "POST", f"auth/{mount}/config",
        # Plain http on loopback, but OpenBao insists on a CA outside a pod: any will do.
        json={"kubernetes_host": host, "disable_local_ca_jwt": True,
              "kubernetes_ca_cert": self_signed_pem(signing_key, "test-kubernetes-ca")},
        idempotent=True,
    )
    await root_client.request(
        "POST", f"auth/{mount}/role/api",
        json={"bound_service_account_names": [SERVICE_ACCOUNT],
              "bound_service_account_namespaces": [NAMESPACE],
              "token_policies": ["default"], "token_ttl": "10m"},
        idempotent=True,
    )
    token_file = tmp_path / "token"
    async with AsyncVaultClient(config=ClientConfig(addr=root_client.config.addr)) as client:
        method = KubernetesAuth("api", jwt_file=token_file, mount_point=mount)
        for attempt in range(2):  # kubelet rotates the projected token; each login reads it
            uid = str(uuid.uuid4())
            account_token = _service_account_token(signing_key, uid)
            reviewer.valid = {account_token: {"username": _SUBJECT, "uid": uid}}
            token_file.write_text(account_token)
            auth = await client.login(method)
            assert auth.metadata.get("service_account_uid") == uid
            assert auth.metadata.get("service_account_name") == SERVICE_ACCOUNT
            assert auth.metadata.get("service_account_namespace") == NAMESPACE
            assert 0 < auth.lease_duration <= 600
            assert reviewer.reviews == attempt + 1

        reviewer.valid = {}  # the API server no longer accepts the token
        with pytest.raises(Forbidden) as rejected:
            await client.login(method)
        assert reviewer.reviews == 3
        assert account_token not in str(rejected.value)
