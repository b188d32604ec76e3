"""The life of one WebSocket session (/ws/realtime, /ws/video), without its handlers: accept, announce, receive -> dispatch -> send.

A subclass names its session (`session.session_id`), its registry, its first event (`created_event()`) and
one `on_<type>` coroutine per message type; `parse(text)` turns a text frame into a message and
`on_binary(data, started)` handles a binary one. Every failure of a handler becomes an error event and the
socket stays open. A socket silent for SAM3_WS_IDLE_TTL_S is closed, unless `busy` says work it asked for is
still running (a propagation); the TTL is waited out with `idle_sleep` (asyncio.sleep, or a test's manual
clock). Sends are serialised: a background task and a handler may both send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from ...errors import Sam3Error
from .protocol import ErrorEvent, Event, Pong, ProtocolError, SessionClosed

log = logging.getLogger(__name__)


class SocketLoop:
    """Subclasses set self.session and self.registry before serve()."""

    session = None
    registry = None

    def __init__(self, websocket: WebSocket, idle_ttl_s: float,
                 idle_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.websocket, self.idle_ttl_s, self.idle_sleep = websocket, idle_ttl_s, idle_sleep
        self._closed = False
        self._send_lock = asyncio.Lock()

    # ------------------------------------------------------------------------------------------ to override
    def created_event(self) -> Event:
        raise NotImplementedError

    def parse(self, text: str):
        raise NotImplementedError

    async def on_binary(self, data: bytes, started: float) -> None:
        raise ProtocolError("binary messages are not accepted here", "invalid_message")

    @property
    def busy(self) -> bool:
        return False

    async def cleanup(self) -> None:
        """Free the session's state (after the socket closed)."""

    # ------------------------------------------------------------------------------------------ the loop
    async def serve(self) -> None:
        await self.websocket.accept()
        if not self.registry.add(self):
            message = (f"the server already holds {self.registry.max_sessions} sessions of this kind "
                       f"({self.registry.setting}); retry later")
            await self.send(ErrorEvent(message=message, code="too_many_sessions"))
            await self._close(1013, "too many sessions")
            return
        try:
            await self.send(self.created_event())
            while not self._closed:
                frame = await self._receive()
                if frame is not None:
                    await self._handle(frame, time.perf_counter())
        except WebSocketDisconnect:
            pass
        finally:
            self._closed = True
            try:
                await self.cleanup()
            finally:
                self.registry.release(self.session.session_id)

    async def _receive(self) -> str | bytes | None:
        """The next frame; None when the socket closed, or went idle (silent for the TTL while not busy)."""
        receiving = asyncio.ensure_future(self.websocket.receive())
        try:
            while not await self._arrives_within_ttl(receiving):
                if not self.busy:
                    receiving.cancel()
                    await self.shutdown(1000, "idle")
                    return None
        except BaseException:
            receiving.cancel()
            raise
        message = receiving.result()
        if message["type"] == "websocket.disconnect":
            self._closed = True
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes")

    async def _arrives_within_ttl(self, receiving: asyncio.Future) -> bool:
        idle = asyncio.ensure_future(self.idle_sleep(self.idle_ttl_s))
        try:
            await asyncio.wait({receiving, idle}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
        return receiving.done()

    async def _handle(self, frame: str | bytes, started: float) -> None:
        """Dispatch one message; every failure becomes an error event and the socket stays open."""
        try:
            if isinstance(frame, bytes):
                await self.on_binary(frame, started)
            else:
                message = self.parse(frame)
                await getattr(self, f"on_{message.type}")(message, started)
        except ProtocolError as exc:
            await self.send(ErrorEvent(message=exc.message, code=exc.code))
        except Sam3Error as exc:
            await self.send(ErrorEvent(message=exc.message, code=exc.code, field=exc.field))
        except Exception:
            log.exception("WebSocket session %s: unexpected error", self.session.session_id)
            await self.send(ErrorEvent(message="internal error; the traceback is in the server log",
                                       code="internal_error"))

    async def send(self, event: Event) -> None:
        if self._closed:
            return
        async with self._send_lock:
            try:
                await self.websocket.send_json(event.dump())
            except (WebSocketDisconnect, RuntimeError, OSError):  # the client went away mid-answer
                self._closed = True

    # Both protocols' ping and close.
    async def on_ping(self, message, started: float) -> None:
        await self.send(Pong())

    async def on_close(self, message, started: float) -> None:
        await self.shutdown(1000, "closed by client")

    async def shutdown(self, code: int, reason: str) -> None:
        """Say why, then close (idle timeout, the client's close, server shutdown)."""
        await self.send(SessionClosed(reason=reason))
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        if not self._closed:
            self._closed = True
            try:
                await self.websocket.close(code=code, reason=reason)
            except (RuntimeError, OSError):
                pass


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
