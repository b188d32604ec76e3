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
    """ASGI middleware: 413 in the caller's error envelope when an HTTP body exceeds its route's limit.

    `max_bytes` is the limit of image routes; paths starting with one of `video_prefixes` carry videos and get
    `video_max_bytes` instead (the video routes check the video's own size again while reading it).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, video_max_bytes: int = 0, video_prefixes: tuple[str, ...] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.video_max_bytes = max(video_max_bytes, max_bytes)
        self.video_prefixes = video_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_video = route_path(scope).startswith(self.video_prefixes) if self.video_prefixes else False
        limit = self.video_max_bytes if is_video else self.max_bytes
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
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
                await self._reject(scope, receive, send, limit)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        setting = "SAM3_VIDEO_MAX_BYTES" if limit == self.video_max_bytes and self.video_prefixes else \
            "SAM3_MAX_UPLOAD_BYTES"
        detail = f"request body is over {limit} bytes; files are limited by {setting} (base64 adds a third)"
        surface = surface_for(scope["app"], route_path(scope)) if "app" in scope else NATIVE
        await surface.render_error(413, detail, "request_too_large", None)(scope, receive, send)
