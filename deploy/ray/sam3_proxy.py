"""Serve proxy middleware: an `image_key` query parameter becomes the X-Sam3-Image-Key header before routing.

Browsers cannot set headers on a WebSocket, so the web page names its image in the URL
(`/ws/realtime?image_key=<sha256>`); Serve's consistent-hash router only reads the header named by
RAY_SERVE_SESSION_ID_HEADER_KEY. Every Serve proxy loads this through
RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=sam3_proxy:proxy_middlewares. A header the client sent wins over
the parameter. Kept free of sam3_api imports: proxies must not load torch.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

IMAGE_KEY_HEADER = b"x-sam3-image-key"
IMAGE_KEY_PARAM = "image_key"
MAX_KEY_CHARS = 256  # a sha256 is 64; anything longer is not a key we hand out, so it is not routed on


def image_key_from_query(query_string: bytes) -> str | None:
    """The first non-empty image_key parameter, if it is a plausible key."""
    values = parse_qs(query_string.decode("latin-1")).get(IMAGE_KEY_PARAM, [])
    key = values[0].strip() if values else ""
    return key if 0 < len(key) <= MAX_KEY_CHARS and key.isprintable() else None


class ImageKeyFromQuery:
    """ASGI middleware for the Serve proxy (HTTP and WebSocket scopes)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = scope.get("headers", [])
            key = image_key_from_query(scope.get("query_string", b""))
            if key and not any(name.lower() == IMAGE_KEY_HEADER for name, _ in headers):
                scope = {**scope, "headers": [*headers, (IMAGE_KEY_HEADER, key.encode("latin-1", "replace"))]}
        await self.app(scope, receive, send)


def proxy_middlewares() -> list[Middleware]:
    """The callback Serve's proxy calls once at start (RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH)."""
    return [Middleware(ImageKeyFromQuery)]
