"""Every error leaves the server in one envelope: {"detail", "status_code", "code"} (seed 000's shape).

Domain errors carry their status; validation errors become 422 naming the field; unknown exceptions are
logged with their traceback and answered with a generic 500 that reveals nothing.
"""

from __future__ import annotations

import logging

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Sam3Error

log = logging.getLogger(__name__)


def error_response(status_code: int, detail: str, code: str, headers: dict | None = None) -> JSONResponse:
    body = {"detail": detail, "status_code": status_code, "code": code}
    return JSONResponse(body, status_code=status_code, headers=headers)


def describe_validation_error(exc: RequestValidationError) -> str:
    """One readable sentence per problem: 'body.x1: Input should be a valid number (got "abc")'."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(item) for item in error.get("loc", ()) if item not in ("body", "query", "form"))
        message = error.get("msg", "invalid value")
        if "input" in error and not isinstance(error["input"], (dict, list, bytes)):
            message += f" (got {str(error['input'])[:80]!r})"
        parts.append(f"{location or 'request'}: {message}")
    return "; ".join(parts) or "invalid request"


async def _sam3_error(request: Request, exc: Sam3Error) -> JSONResponse:
    return error_response(exc.status_code, exc.message, exc.code, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, describe_validation_error(exc), "validation_error")


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, str(exc.detail), code, getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    # Starlette answers this 500 outside every middleware, so the request id is added here: it is what the
    # client quotes to find the traceback in the log.
    request_id = correlation_id.get()
    return error_response(500, "Internal server error; the traceback is in the server log.", "internal_error",
                          {"X-Request-ID": request_id} if request_id else None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Sam3Error, _sam3_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
