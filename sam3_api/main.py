"""create_app(): the factory that wires settings, the engine, routers, error handlers and the web page.

Nothing heavy happens at import time: the lifespan starts loading the model on the model thread and the
server answers /health ("loading") at once; the worker stops after the lifespan's yield.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from . import __version__
from .api.errors import install_error_handlers
from .api.limits import BodySizeLimit, body_limit_for
from .api.replica_headers import EXPOSED_HEADERS, ReplicaHeaders, replica_id_for
from .api.routes import health, segment, ws
from .config import Settings
from .engine.engine import Sam3Engine

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

DESCRIPTION = """Segment Anything Model 3 over HTTP and WebSocket.

Every segmentation route comes in three input modes: multipart upload (`/segment/{kind}`), base64 JSON
(`/segment/{kind}/base64`) and image URL JSON (`/segment/{kind}/url`). Coordinates are always pixels of the
original image. Errors always answer `{"detail", "status_code", "code"}`. The click-to-segment page is at
[/app](/app); the WebSocket protocol is described in the README.
"""


def create_app(settings: Settings | None = None, engine: Sam3Engine | None = None) -> FastAPI:
    """Build the application; tests pass their own Settings (and optionally a ready engine)."""
    settings = settings or Settings()
    owns_engine = engine is None  # an engine passed in belongs to the caller, who stops it
    engine = engine or Sam3Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine.start()
        try:
            yield
        finally:
            await ws.close_all_sessions(app)
            if owns_engine:
                engine.stop()

    app = FastAPI(title="sam3-api", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    # Added first so CORS (added last) is outermost: even a 413 carries CORS headers a browser can read.
    app.add_middleware(BodySizeLimit, max_bytes=body_limit_for(settings.max_upload_bytes))
    app.add_middleware(ReplicaHeaders, replica_id=replica_id_for(settings))  # X-Sam3-Replica / X-Sam3-Cache
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
        allow_methods=["*"], allow_headers=["*"], expose_headers=EXPOSED_HEADERS,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(segment.router)
    app.include_router(ws.router)
    if STATIC_DIR.is_dir():  # mounted last so it never shadows an API route
        app.mount("/app", StaticFiles(directory=STATIC_DIR, html=True), name="app")
    return app
