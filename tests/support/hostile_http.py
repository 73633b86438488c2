"""A loopback HTTP server that answers like a hostile Vault: huge, endless or packed bodies.

It counts the body bytes it managed to hand to the socket and records the request
headers, so a test can tell how much the client actually read and what it asked for.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping

from aiohttp import web

__all__ = ["HostileServer", "gzip_bomb"]

CHUNK = 64 * 1024
MB = 1024 * 1024
MANY_ERRORS = 200_000  # entries of the many-errors answer


def gzip_bomb(inflated_mb: int) -> bytes:
    """A gzip stream of a JSON object padded to ``inflated_mb`` MiB (about 1/1000 of that)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    block = b"a" * MB
    parts = [packer.compress(b'{"data": {"pad": "')]
    parts += [packer.compress(block) for _ in range(inflated_mb)]
    parts += [packer.compress(b'"}}'), packer.flush()]
    return b"".join(parts)


class HostileServer:
    """aiohttp's server on a free 127.0.0.1 port; ``async with`` starts and stops it."""

    def __init__(self, bomb: bytes, reason: str = "") -> None:
        self.sent = 0
        self._reason = reason
        self.request_headers: Mapping[str, str] = {}
        self._bomb = bomb
        self._runner: web.AppRunner | None = None
        self.addr = ""

    async def __aenter__(self) -> HostileServer:
        app = web.Application()
        app.router.add_get("/v1/big", self._big)
        app.router.add_get("/v1/big-unsized", self._big_unsized)
        app.router.add_get("/v1/endless", self._endless)
        app.router.add_get("/v1/bomb", self._gzip)
        app.router.add_get("/v1/errors", self._errors)
        app.router.add_get("/v1/many-errors", self._many_errors)
        app.router.add_get("/v1/long-reason", self._long_reason)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.addr = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _stream(
        self, request: web.Request, total: int | None, length: int | None
    ) -> web.StreamResponse:
        """Write ``total`` bytes of JSON-ish filler (None: until the client goes away)."""
        self.request_headers = dict(request.headers)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if length is not None:
            response.content_length = length
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        block = b" " * CHUNK
        try:
            while total is None or self.sent < total:
                await response.write(block)
                self.sent += len(block)
        except (ConnectionError, OSError):
            pass  # the client closed the connection: what we want
        return response

    async def _big(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, 100 * MB, 100 * MB)

    async def _big_unsized(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, 100 * MB, None)

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, None, None)

    async def _gzip(self, request: web.Request) -> web.Response:
        self.request_headers = dict(request.headers)
        return web.Response(
            body=self._bomb,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    async def _errors(self, request: web.Request) -> web.Response:
        self.request_headers = dict(request.headers)
        errors = ["E" * (50 * MB)] + [f"error {i}" for i in range(1000)]
        return web.Response(
            status=400, body=json.dumps({"errors": errors}), content_type="application/json"
        )

    async def _many_errors(self, request: web.Request) -> web.Response:
        self.request_headers = dict(request.headers)
        body = json.dumps({"errors": ["e"] * MANY_ERRORS})
        return web.Response(status=400, body=body, content_type="application/json")

    async def _long_reason(self, request: web.Request) -> web.Response:
        """A 500 whose reason phrase is the ``reason`` given (a long one, echoing a secret)."""
        self.request_headers = dict(request.headers)
        body = json.dumps({"errors": ["x"]})
        return web.Response(
            status=500, reason=self._reason, body=body, content_type="application/json"
        )
