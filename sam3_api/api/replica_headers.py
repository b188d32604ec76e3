"""X-Sam3-Replica and X-Sam3-Cache on every answer: which replica served it and whether the image was cached.

Behind Ray Serve (deploy/ray/) many replicas answer on one address and each holds its own embedding cache,
so a client (and a test) must be able to see where a request landed and whether it paid a backbone pass.
The single-process server sends the same headers, so a client needs no mode switch.

* X-Sam3-Replica: SAM3_REPLICA_ID, else "hostname:pid" (Ray sets its replica id); on every HTTP response and
  on the WebSocket's 101 upgrade.
* X-Sam3-Cache: "hit" when every image the request used was already encoded, "miss" when one was encoded
  for it; absent on answers that used no image (health, errors before the model ran, the WebSocket upgrade).

A pure ASGI middleware (not BaseHTTPMiddleware): it installs a fresh list in engine.CACHE_OUTCOMES for each
request and the engine appends to that same list object, so the outcome reaches the response even if the
route ran in a copied context.
"""

from __future__ import annotations

import os
import socket

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..engine.engine import CACHE_OUTCOMES

REPLICA_HEADER = "X-Sam3-Replica"
CACHE_HEADER = "X-Sam3-Cache"
EXPOSED_HEADERS = [REPLICA_HEADER, CACHE_HEADER]  # readable by browser scripts on other origins (CORS)


def replica_id_for(settings: Settings) -> str:
    """This process's name in X-Sam3-Replica: stable for its lifetime and readable in logs."""
    return settings.replica_id or f"{socket.gethostname()}:{os.getpid()}"


def cache_header_value(outcomes: list[bool]) -> str | None:
    """'hit' if every embedding lookup of the request hit, 'miss' if any ran the backbone, None if none ran."""
    if not outcomes:
        return None
    return "hit" if all(outcomes) else "miss"


class ReplicaHeaders:
    """ASGI middleware adding X-Sam3-Replica (HTTP and WebSocket upgrade) and X-Sam3-Cache (HTTP)."""

    def __init__(self, app: ASGIApp, replica_id: str):
        self.app = app
        self.replica_id = replica_id.encode("latin-1", "replace").decode("latin-1")  # header-safe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        outcomes: list[bool] = []
        token = CACHE_OUTCOMES.set(outcomes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append(REPLICA_HEADER, self.replica_id)
                cache = cache_header_value(outcomes)
                if cache is not None:
                    headers.append(CACHE_HEADER, cache)
            elif message["type"] == "websocket.accept":
                extra = [(REPLICA_HEADER.lower().encode(), self.replica_id.encode("latin-1"))]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            CACHE_OUTCOMES.reset(token)
