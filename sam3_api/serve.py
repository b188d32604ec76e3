"""Run an app under uvicorn with the server's settings (app.py, and the test servers that must behave alike).

SIGTERM (or Ctrl-C): uvicorn stops accepting connections, lets in-flight requests finish for up to
SAM3_SHUTDOWN_GRACE_S, cancels what is left, then runs the lifespan's shutdown (WebSocket sessions closed,
video jobs marked interrupted, model thread stopped) and exits.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from .api.limits import body_limit_for
from .config import Settings


def serve(app: FastAPI, settings: Settings) -> None:
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
        log_config=None,  # keep sam3_api.logs' handler (text or JSON, with request ids)
        # WebSocket init frames carry a base64 image: allow as much as an HTTP body may carry.
        ws_max_size=body_limit_for(settings.max_upload_bytes),
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
