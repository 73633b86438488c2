"""A fake GCP Secret Manager: AccessSecretVersion over real gRPC on 127.0.0.1.

It speaks the service's wire format (the SDK's own request and response messages), so the
official async client reaches it through its gRPC transport; only the service's logic is
faked: versions numbered from 1, ``latest``, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION
for a disabled version, and the payload's CRC32C.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import google_crc32c
import grpc
from google.cloud.secretmanager import SecretManagerServiceAsyncClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcAsyncIOTransport,
)
from google.cloud.secretmanager_v1.types import (
    AccessSecretVersionRequest,
    AccessSecretVersionResponse,
    SecretPayload,
)

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"


class FakeSecretManager:
    """Secrets by ``projects/P/secrets/N``; every request name is recorded."""

    def __init__(self) -> None:
        self.versions: dict[str, list[bytes]] = {}
        self.denied: set[str] = set()
        self.disabled: set[str] = set()
        self.corrupt: set[str] = set()
        self.requests: list[str] = []

    def add_version(self, project: str, secret: str, data: bytes) -> int:
        versions = self.versions.setdefault(f"projects/{project}/secrets/{secret}", [])
        versions.append(data)
        return len(versions)

    async def access(
        self, request: AccessSecretVersionRequest, context: grpc.aio.ServicerContext
    ) -> AccessSecretVersionResponse:
        self.requests.append(request.name)
        parent, _, version = request.name.rpartition("/versions/")
        if parent in self.denied:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "caller lacks accessor role")
        versions = self.versions.get(parent, [])
        number = len(versions) if version == "latest" else int(version or 0)
        if not 1 <= number <= len(versions):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
        full = f"{parent}/versions/{number}"
        if full in self.disabled:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{full} is disabled")
        data = versions[number - 1]
        crc = google_crc32c.value(data) + (1 if full in self.corrupt else 0)
        return AccessSecretVersionResponse(
            name=full, payload=SecretPayload(data=data, data_crc32c=crc)
        )


@asynccontextmanager
async def serving(fake: FakeSecretManager) -> AsyncIterator[str]:
    """Run ``fake`` on a free loopback port; yields ``127.0.0.1:<port>``."""
    server = grpc.aio.server()
    method = grpc.unary_unary_rpc_method_handler(
        fake.access,
        request_deserializer=AccessSecretVersionRequest.deserialize,
        response_serializer=AccessSecretVersionResponse.serialize,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"AccessSecretVersion": method}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


def insecure_client(address: str) -> SecretManagerServiceAsyncClient:
    """The official async client over a plaintext channel to ``address`` (no credentials)."""
    transport = SecretManagerServiceGrpcAsyncIOTransport(channel=grpc.aio.insecure_channel(address))
    return SecretManagerServiceAsyncClient(transport=transport)
