"""Logging: text (default) or one JSON object per line (LOG_FORMAT=json), every line tagged with its request id.

The request id comes from asgi-correlation-id's context variable, set by its middleware from X-Request-ID (or
generated). Context variables follow a request into asyncio.to_thread and, because the model worker runs each
job in its caller's context, onto the model thread: every log line of a request carries its id, "-" outside
of one. uvicorn's own loggers (access and errors) are routed through the same handler.
"""

from __future__ import annotations

import logging
import re

from asgi_correlation_id import correlation_id
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
# Accepted as a client's X-Request-ID: what tracing systems send, nothing that could forge a log line.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def is_valid_request_id(value: str) -> bool:
    return REQUEST_ID_PATTERN.fullmatch(value) is not None


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (and drops uvicorn's ANSI-coloured duplicate of the message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = correlation_id.get() or "-"
        record.__dict__.pop("color_message", None)
        return True


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """One stderr handler on the root logger; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAMES))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings become log records too (JSON when JSON is asked for)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
