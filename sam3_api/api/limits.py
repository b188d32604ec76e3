"""Request body cap, enforced while the body streams in, before any parsing.

Without it a client could make the server buffer a gigabyte of JSON or multipart before the image's own
byte check ever runs. The cap follows SAM3_MAX_UPLOAD_BYTES: base64 inflates by 4/3, plus room for fields.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import NATIVE, route_path, surface_for

FIELD_ALLOWANCE = 1024**2


def body_limit_for(max_upload_bytes: int) -> int:
    return max_upload_bytes * 4 // 3 + FIELD_ALLOWANCE


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 in the caller's error envelope when an HTTP body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = (f"request body is over {self.max_bytes} bytes; images are limited by SAM3_MAX_UPLOAD_BYTES "
                  "(base64 adds a third)")
        surface = surface_for(scope["app"], route_path(scope)) if "app" in scope else NATIVE
        await surface.render_error(413, detail, "request_too_large", None)(scope, receive, send)
