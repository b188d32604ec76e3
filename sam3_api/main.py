"""create_app(): the factory that wires settings, the engine, routers, error handlers and the web page.

Nothing heavy happens at import time: the lifespan starts loading the model on the model thread and the
server answers /health ("loading") at once; the worker stops after the lifespan's yield.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from . import __version__
from .api.auth import install_auth
from .api.errors import install_error_handlers
from .api.openapi import install_contract, operation_id
from .api.limits import BodySizeLimit, body_limit_for
from .api.operations import WORKER_STOP_TIMEOUT_S, install_operations
from .api.ratelimit import enforce_rate_limit
from .api.replica_headers import EXPOSED_HEADERS, ReplicaHeaders, replica_id_for
from .api.services import Services
from .api.routes import batch, docs, health, segment, video, video_sources, ws, ws_video
from .compat import install_compat
from .config import Settings
from .engine.engine import Sam3Engine

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
VIDEO_PATHS = ("/video/", "/predict_video")  # routes whose bodies carry videos (SAM3_VIDEO_MAX_BYTES)
BATCH_PATHS = ("/batch/",)  # bodies of many images or an archive (SAM3_BATCH_MAX_UPLOAD_BYTES)

DESCRIPTION = """Segment Anything Model 3 over HTTP and WebSocket.

Every segmentation route comes in three input modes: multipart upload (`/segment/{kind}`), base64 JSON
(`/segment/{kind}/base64`) and image URL JSON (`/segment/{kind}/url`). Coordinates are always pixels of the
original image. Errors always answer `{"detail", "status_code", "code"}`. The click-to-segment page is at
[/app](/app); the WebSocket protocol is described in the README.
"""


def create_app(settings: Settings | None = None, engine: Sam3Engine | None = None) -> FastAPI:
    """Build the application; tests pass their own Settings (and optionally a ready engine).

    The app and the engine share one settings object (an engine passed in adopts the app's, which must agree
    with it on everything the engine reads: see Services.build).
    """
    settings = settings or (engine.settings if engine is not None else Settings())
    owns_engine = engine is None  # an engine passed in belongs to the caller, who stops it
    services = Services.build(settings, engine or Sam3Engine(settings))
    app = FastAPI(title="sam3-api", version=__version__, description=DESCRIPTION,
                  lifespan=_lifespan(services, owns_engine), dependencies=[Depends(enforce_rate_limit)],
                  generate_unique_id_function=operation_id,
                  docs_url=None, redoc_url=None)  # api/routes/docs.py serves them without a CDN
    app.state.services = services
    # Innermost: the key check sees the body (seed 004's api_key) through the body-size limit.
    # /metrics is open unless SAM3_METRICS_REQUIRE_KEY (Prometheus usually scrapes without credentials).
    install_contract(app)  # before install_auth, whose security scheme joins the finished document
    install_auth(app, settings.api_keys, extra_open=() if settings.metrics_require_key else ("/metrics",))
    # Added first so CORS (added last) is outermost: even a 413 carries CORS headers a browser can read.
    app.add_middleware(BodySizeLimit, max_bytes=body_limit_for(settings.max_upload_bytes),
                       video_max_bytes=body_limit_for(settings.video_max_bytes), video_prefixes=VIDEO_PATHS,
                       batch_max_bytes=settings.batch_max_upload_bytes, batch_prefixes=BATCH_PATHS)
    app.add_middleware(ReplicaHeaders, replica_id=replica_id_for(settings))  # X-Sam3-Replica / X-Sam3-Cache
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
        allow_methods=["*"], allow_headers=["*"], expose_headers=[*EXPOSED_HEADERS, "X-Request-ID", "Retry-After"],
    )
    install_operations(app)  # outermost: request ids, HTTP metrics, cancellation on disconnect; /metrics
    install_error_handlers(app)
    app.include_router(docs.router)
    app.include_router(health.router)
    app.include_router(segment.router)
    app.include_router(ws.router)
    app.include_router(video.router)
    app.include_router(video_sources.router)
    app.include_router(ws_video.router)
    app.include_router(batch.router)
    install_compat(app, services)
    if STATIC_DIR.is_dir():  # mounted last so it never shadows an API route
        app.mount("/app", StaticFiles(directory=STATIC_DIR, html=True), name="app")
    return app


def _lifespan(services: Services, owns_engine: bool):
    """Start the model load and the job runners; at shutdown close the sockets, run the hooks, stop the
    runners (running jobs are marked interrupted, their finished work kept) and the model thread."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services.engine.start()
        services.draining = False  # /health/ready: true again if a test restarts the app
        for runner in services.runners:
            runner.start()
        try:
            yield
        finally:
            await services.ws_sessions.close_all()
            await services.ws_video_sessions.close_all()  # their private video copies are deleted
            await services.drain()
            for runner in reversed(services.runners):
                await runner.shutdown()
            if owns_engine:
                services.engine.stop(timeout=WORKER_STOP_TIMEOUT_S)

    return lifespan
