"""Every error leaves the server in its caller's envelope; native routes: {"detail", "status_code", "code"}.

Domain errors carry their status; validation errors become 422 naming the field; unknown exceptions are
logged with their traceback and answered with a generic 500 that reveals nothing. A drop-in adapter for
another service (compat/) registers a `Surface`: the paths it owns and how that service writes an error
(e.g. {"message": ...}); the handlers here, the body-size limit and the API-key check all render through
`surface_for(app, path)`, so an adapter's clients get their own envelope and native clients keep theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..errors import Sam3Error
from .state import services_of

log = logging.getLogger(__name__)


def error_response(status_code: int, detail: str, code: str, headers: dict | None = None) -> JSONResponse:
    body = {"detail": detail, "status_code": status_code, "code": code}
    return JSONResponse(body, status_code=status_code, headers=headers)


ErrorRenderer = Callable[[int, str, str, "dict | None"], JSONResponse]


@dataclass(frozen=True)
class Surface:
    """A family of routes that share an error envelope and the places an API key may travel."""

    name: str
    render_error: ErrorRenderer  # (status_code, message, code, headers) -> response
    paths: frozenset[str] = frozenset()  # exact paths
    prefixes: tuple[str, ...] = ()  # path prefixes, e.g. "/sam3/"
    key_in_query: bool = False  # auth: `api_key` may come in the query string
    key_in_body: bool = False  # auth: `api_key` may come in a JSON body

    def owns(self, path: str) -> bool:
        return path in self.paths or path.startswith(self.prefixes)


NATIVE = Surface("native", error_response)


def register_surface(app, surface: Surface) -> None:
    services_of(app).surfaces.append(surface)


def route_path(scope) -> str:
    """The path as the app's routes see it: without the root_path a proxy mounts the server under."""
    path, root = scope.get("path", "/"), scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


def surface_for(app, path: str) -> Surface:
    """The surface owning `path` (an adapter's), else the native one."""
    for surface in services_of(app).surfaces:
        if surface.owns(path):
            return surface
    return NATIVE


def _render(request: Request, status_code: int, detail: str, code: str, headers: dict | None = None):
    return surface_for(request.app, route_path(request.scope)).render_error(status_code, detail, code, headers)


def describe_errors(errors, *, skip_first: bool = False, whole: str = "request") -> str:
    """The one formatter of pydantic errors: 'x1: Input should be a valid number (got 'abc'); ...'.

    `skip_first` drops the first location item (a WebSocket message's type tag); `whole` names an error
    about the whole document. Every surface words schema errors this way, in its own envelope.
    """
    parts = []
    for error in errors:
        location = list(error.get("loc", ()))[1 if skip_first else 0:]
        location = ".".join(str(item) for item in location if item not in ("body", "query", "form"))
        message = error.get("msg", "invalid value")
        if "input" in error and not isinstance(error["input"], (dict, list, bytes)):
            message += f" (got {str(error['input'])[:80]!r})"
        parts.append(f"{location or whole}: {message}")
    return "; ".join(parts) or f"invalid {whole}"


def describe_validation_error(exc: RequestValidationError) -> str:
    return describe_errors(exc.errors())


def schema_error(exc: ValidationError) -> RequestValidationError:
    """A body a route validated itself (multipart + JSON video bodies): the same 422 validation_error."""
    return RequestValidationError(exc.errors(include_url=False))


async def _sam3_error(request: Request, exc: Sam3Error) -> JSONResponse:
    return _render(request, exc.status_code, exc.message, exc.code, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return _render(request, 422, describe_validation_error(exc), "validation_error")


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code, "http_error")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:  # one path may be split over several routes: Allow names all of their methods
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app, request.scope))}
    return _render(request, exc.status_code, str(exc.detail), code, headers)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app, scope) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first route's)."""
    return [method for method in HTTP_METHODS
            if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.router.routes)]


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    # Starlette answers this 500 outside every middleware, so the request id is added here: it is what the
    # client quotes to find the traceback in the log.
    request_id = correlation_id.get()
    return _render(request, 500, "Internal server error; the traceback is in the server log.", "internal_error",
                   {"X-Request-ID": request_id} if request_id else None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Sam3Error, _sam3_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
