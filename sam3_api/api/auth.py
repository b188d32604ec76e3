"""API keys for every route, native and drop-in alike: off until SAM3_API_KEYS names at least one key.

Protection is the default: this is ASGI middleware in front of the whole application, so every route,
WebSocket and mounted app added later is covered without a line of its own; only the paths in OPEN_PATHS
and OPEN_PREFIXES (health probes, the API docs, the web page's static files) answer without a key.

A key travels as `X-API-Key: <key>`, `Authorization: Bearer <key>`, the bare key in `Authorization`, or
as the password of HTTP Basic auth (`Authorization: Basic base64(<any user>:<key>)`: the only way Label
Studio's ML-backend connection can carry one; the user name is ignored).
Browsers cannot set headers on a WebSocket, so a WebSocket may also put it in the query (`?api_key=`); a
surface that declares it (seed 004's routes: its clients send the key in the query string or the JSON
body) also accepts `api_key` there. Keys are compared in constant time, each one every time.

Every request that passes sets `request.state.api_key`: the key that matched, or None when keys are off
(per-key rate limits, metrics and the image_id scope of seed 004 read it). Refusals are a 401 in the
caller's error envelope (api/errors.py Surface); a WebSocket is accepted only to be told why in an
`error` event, then closed with 1008 (policy violation), since a browser never sees a refused handshake.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from collections.abc import Sequence
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import NATIVE, Surface, route_path, surface_for

OPEN_PATHS = frozenset({"/", "/health", "/healthz", "/health/live", "/health/ready", "/docs",
                        "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/app"})
OPEN_PREFIXES = ("/app/", "/docs/assets/")  # the web page's files; Swagger UI's and ReDoc's
MISSING = ("this server needs an API key: send it as the X-API-Key header or as 'Authorization: Bearer "
           "<key>'{extra}")
WRONG = "the API key is not valid for this server; check SAM3_API_KEYS with the operator"
JSON_PARSE_IN_THREAD = 256 * 1024  # bigger JSON bodies are parsed off the event loop


def install_auth(app, keys: Sequence[str], extra_open: Sequence[str] = ()) -> None:
    """Protect every route but OPEN_PATHS (+ `extra_open`); with keys on, /docs gets an "Authorize" button."""
    app.add_middleware(ApiKeyAuth, keys=keys, extra_open=extra_open)
    if keys:
        build_schema = app.openapi

        def openapi() -> dict:
            if app.openapi_schema is None:
                schema = build_schema()  # FastAPI caches this very dict in app.openapi_schema
                schema.setdefault("components", {}).setdefault("securitySchemes", {})["APIKey"] = {
                    "type": "apiKey", "in": "header", "name": "X-API-Key"}
                schema["security"] = [{"APIKey": []}]
            return app.openapi_schema

        app.openapi = openapi


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def match_key(candidate: str | None, keys: Sequence[bytes]) -> str | None:
    """The configured key equal to `candidate`, or None; every key is compared, in constant time."""
    if not candidate:
        return None
    given = candidate.encode("utf-8", "surrogateescape")
    found = None
    for key in keys:
        if hmac.compare_digest(given, key):
            found = key
    return None if found is None else found.decode("utf-8", "surrogateescape")


def header_key(headers: dict[bytes, bytes]) -> str | None:
    """X-API-Key, else Authorization (`Bearer <key>`, Basic auth's password, or the bare key). The bytes are
    kept as sent (surrogateescape), so a key is compared byte for byte with the UTF-8 of the configured one."""
    if b"x-api-key" in headers:
        return headers[b"x-api-key"].decode("utf-8", "surrogateescape").strip()
    authorization = headers.get(b"authorization", b"").decode("utf-8", "surrogateescape").strip()
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() == "basic" and rest:
        return basic_password(rest.strip())
    return rest.strip() if scheme.lower() == "bearer" and rest else authorization or None


def basic_password(credentials: str) -> str | None:
    """The password of HTTP Basic credentials (base64 of `user:password`), or None when they are malformed."""
    try:
        decoded = base64.b64decode(credentials.encode("ascii", "surrogateescape"), validate=True)
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.decode("utf-8", "surrogateescape").partition(":")
    return password if colon and password else None


def query_key(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("api_key")
    return values[-1] if values else None


class ApiKeyAuth:
    """ASGI middleware: checks the key (when keys are on) and records it in scope state."""

    def __init__(self, app: ASGIApp, keys: Sequence[str], extra_open: Sequence[str] = ()):
        self.app = app
        self.keys = [key.encode("utf-8", "surrogateescape") for key in keys if key]
        self.open_paths = OPEN_PATHS | frozenset(extra_open)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["api_key"] = None
        if not self.keys:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        surface = surface_for(scope["app"], path) if "app" in scope else NATIVE
        websocket = scope["type"] == "websocket"
        candidates = [header_key(dict(scope.get("headers", [])))]
        if websocket or surface.key_in_query:
            candidates.append(query_key(scope))
        matched = next(filter(None, (match_key(c, self.keys) for c in candidates)), None)
        is_open = path in self.open_paths or path.startswith(OPEN_PREFIXES)
        if matched is None and surface.key_in_body and not websocket and not is_open:
            body_key, receive = await _body_key(receive)
            candidates.append(body_key)
            matched = match_key(body_key, self.keys)
        state["api_key"] = matched
        if matched is not None or is_open:
            await self.app(scope, receive, send)
            return
        reason = WRONG if any(candidates) else _missing(surface, websocket)
        if websocket:
            await _refuse_websocket(receive, send, reason)
        else:
            response = surface.render_error(401, reason, "unauthorized", {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)


def _missing(surface: Surface, websocket: bool = False) -> str:
    if websocket:
        return MISSING.format(extra=", or in the URL as ?api_key=<key>")
    extra = ", or as api_key in the query string" if surface.key_in_query else ""
    if surface.key_in_body:
        extra += " or the JSON body"
    return MISSING.format(extra=extra)


async def _body_key(receive: Receive) -> tuple[str | None, Receive]:
    """Read the whole body (the body-size limit outside us still applies), find `api_key` in it if it is a
    JSON object, and hand the app a receive that replays the same body."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None, _replay([message], receive)
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replay = _replay([{"type": "http.request", "body": body, "more_body": False}], receive)
    try:
        document = await asyncio.to_thread(json.loads, body) if len(body) > JSON_PARSE_IN_THREAD else json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, replay  # not JSON: the route itself will say what is wrong with it
    key = document.get("api_key") if isinstance(document, dict) else None
    return (key if isinstance(key, str) else None), replay


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()
    return replayed


async def _refuse_websocket(receive: Receive, send: Send, reason: str) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    event = {"type": "error", "code": "unauthorized", "message": reason}
    await send({"type": "websocket.send", "text": json.dumps(event)})
    await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
