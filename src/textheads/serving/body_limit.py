"""ASGI middleware that limits request bodies by the bytes that arrive.

The body is read before the app sees it, counting bytes as they come, with
or without a Content-Length header (a chunked body is counted the same way),
and handed to the app from memory. A body over the limit gets a 413, but
only after the rest of it has been read and thrown away (up to a cap): a
server that answers and closes while the client is still sending makes the
client's system reset the connection, and clients that send the whole body
before reading (Python's urllib, requests, httpx) would see "connection reset
by peer" instead of the 413.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DRAIN_CAP_BYTES = 64 * 2**20
"""A body over the limit is read to its end and discarded up to this many bytes in all;
past them the answer goes out at once and the connection is closed."""


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """Send a whole JSON answer through an ASGI `send`."""
    content = json.dumps(body, ensure_ascii=False).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})


class BodyLimit:
    """Answer 413 (with `too_large(limit)` as the JSON body) to HTTP requests whose body is over `max_body_bytes`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, too_large: Callable[[int], dict[str, Any]], drain_cap_bytes: int = DRAIN_CAP_BYTES) -> None:
        self.app, self.max_body_bytes, self.too_large = app, max_body_bytes, too_large
        self.drain_cap_bytes = max(drain_cap_bytes, max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes and (declared > self.drain_cap_bytes or _expects_continue(scope)):
            # Not worth reading (or not sent yet: the client waits for "100 Continue").
            await send_json(send, 413, self.too_large(self.max_body_bytes))
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-body: nobody to answer
            chunk, more = message.get("body", b""), message.get("more_body", False)
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._drain(receive, size, more)
                await send_json(send, 413, self.too_large(self.max_body_bytes))
                return
            chunks.append(chunk)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _drain(self, receive: Receive, size: int, more: bool) -> None:
        while more and size <= self.drain_cap_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app the whole body at once, then passes on (to tell of a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope.get("headers", []) if key.lower() == name), None)


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _expects_continue(scope: Scope) -> bool:
    return (_header(scope, b"expect") or b"").strip().lower() == b"100-continue"
