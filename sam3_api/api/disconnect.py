"""Cancel a request whose client went away; answer 408 to a request body that stalls.

Starlette never cancels a handler when its client disconnects: the handler keeps awaiting the model, and a
client that gave up still costs a full model run. This ASGI middleware runs the app in a child task and reads
the client's messages itself. When uvicorn reports `http.disconnect` before the response is complete, the
child task is cancelled: the handler's `await engine...` raises CancelledError, and the model worker drops
the job from its queue (or stops it at its next checkpoint). While the body is still arriving, a client that
sends nothing for `body_timeout_s` gets 408, so a hanging client cannot hold a connection and a handler open.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import NATIVE, route_path, surface_for

log = logging.getLogger(__name__)
# nginx's "client closed request": recorded by the HTTP metrics for a cancelled request; nobody receives it.
CLIENT_CLOSED_REQUEST = 499


@dataclass
class _Exchange:
    body_done: bool = False
    response_started: bool = False
    response_done: bool = False
    client_left: bool = False
    body_stalled: bool = False


class CancelOnDisconnect:
    """ASGI middleware: the handler is cancelled when its client disconnects before the response ends."""

    def __init__(self, app: ASGIApp, body_timeout_s: float, on_disconnect: Callable[[], None] | None = None):
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange()
        inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)  # back-pressure: one body chunk ahead at most

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.response_started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                exchange.response_done = True
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, inbox.get, tracking_send))
        reader = asyncio.ensure_future(self._read(receive, inbox, handler, exchange))
        try:
            await self._wait(handler, exchange, send, scope)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)  # let it finish before the loop may close

    async def _wait(self, handler: asyncio.Future, exchange: _Exchange, send: Send, scope: Scope) -> None:
        try:
            await asyncio.shield(handler)
        except asyncio.CancelledError:
            if not handler.cancelled():  # this task itself was cancelled (shutdown grace over): pass it on
                handler.cancel()
                raise
            if exchange.body_stalled:
                await self._answer_408(scope, send, exchange)
            elif exchange.client_left:
                log.info("client went away: %s %s cancelled", scope.get("method"), scope.get("path"))
                if self.on_disconnect is not None:
                    self.on_disconnect()
                if not exchange.response_started:  # for the access log and metrics; uvicorn discards it
                    await _send_status(send, CLIENT_CLOSED_REQUEST)
            else:
                raise

    async def _read(self, receive: Receive, inbox: asyncio.Queue, handler: asyncio.Future,
                    exchange: _Exchange) -> None:
        """Forward the client's messages to the app; cancel the app when the client leaves or stalls."""
        while True:
            try:
                message = await self._next(receive, exchange)
            except asyncio.TimeoutError:
                exchange.body_stalled = True
                handler.cancel()
                return
            if message["type"] == "http.disconnect":
                if exchange.response_done:  # the normal end of an exchange: hand it on if anyone listens
                    if inbox.empty():
                        inbox.put_nowait(message)
                else:
                    exchange.client_left = True
                    handler.cancel()
                return
            exchange.body_done = not message.get("more_body", False)
            await inbox.put(message)

    async def _next(self, receive: Receive, exchange: _Exchange) -> Message:
        if exchange.body_done:  # the body is in: wait as long as it takes for the disconnect (or the end)
            return await receive()
        return await asyncio.wait_for(receive(), self.body_timeout_s)

    async def _answer_408(self, scope: Scope, send: Send, exchange: _Exchange) -> None:
        """408 in the caller's envelope (an adapter's clients get their service's); the connection closes."""
        log.warning("request body stalled for %.0f s (SAM3_BODY_TIMEOUT_S): answered 408", self.body_timeout_s)
        if exchange.response_started:
            return
        detail = (f"the request body stopped arriving: nothing for {self.body_timeout_s:g} s (SAM3_BODY_TIMEOUT_S); "
                  "send the whole body without pauses")
        surface = surface_for(scope["app"], route_path(scope)) if "app" in scope else NATIVE
        # Connection: close, as the rest of the body is never read and the socket must not be reused.
        response = surface.render_error(408, detail, "body_timeout", {"Connection": "close"})
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


async def _send_status(send: Send, status: int, body: bytes = b"") -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
