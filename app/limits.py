"""A request body limit, enforced while the body is read: 413 with a small JSON answer.

A declared ``Content-Length`` over the limit is refused before anything is read; otherwise
the bytes ``receive()`` hands over are counted (chunked bodies included, and whatever the
declared length said), and the request is refused as soon as the count passes the limit.

Before the 413, the rest of a refused body is read and dropped, within ``DRAIN_BYTES`` and
``DRAIN_SECONDS`` (nothing is kept): a client that writes its whole request before reading
the answer then gets the 413 rather than a connection reset. Beyond that the connection is
closed on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DRAIN_BYTES", "DRAIN_SECONDS", "BodyLimit", "BodySizeLimit"]

DRAIN_BYTES = 1024 * 1024
DRAIN_SECONDS = 2.0


@dataclass(slots=True)
class BodyLimit:
    """The largest request body accepted, in bytes (set from the settings at start-up)."""

    max_bytes: int


class BodyTooLarge(Exception):
    """The body passed the limit while it was read."""


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _declared_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of a refused body, within DRAIN_BYTES and DRAIN_SECONDS."""
    drained = 0
    with anyio.move_on_after(DRAIN_SECONDS):
        while drained <= DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class BodySizeLimit:
    """Pure ASGI middleware: refuses HTTP request bodies larger than ``limit.max_bytes``."""

    def __init__(self, app: ASGIApp, limit: BodyLimit) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send: Send, max_bytes: int) -> None:
        body = json.dumps({"detail": f"request body larger than {max_bytes} bytes"}).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        })
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit.max_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > max_bytes:
            # A client waiting for "100 Continue" has sent nothing: no need to read.
            expects = (_header(scope, b"expect") or b"").lower() == b"100-continue"
            if declared <= max_bytes + DRAIN_BYTES and not expects:
                await _drain(receive)
            await self._refuse(send, max_bytes)
            return
        received = 0
        exceeded = False
        more_body = True
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded, more_body
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                more_body = bool(message.get("more_body", False))
                if received > max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the application makes of the refusal, the answer is 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
            # What the application raised on the refused read is answered below.
        if exceeded and not started:
            if more_body:
                await _drain(receive)
            await self._refuse(send, max_bytes)
