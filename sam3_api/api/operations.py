"""Operations wiring: request ids, HTTP metrics, cancellation on disconnect, rate limits, shutdown hooks.

create_app() calls install_operations(app) after its own middleware, so these are the outermost layers:
    X-Request-ID (asgi-correlation-id) -> HTTP metrics -> cancel on disconnect / body timeout -> CORS -> ...
The request id is set before anything logs; the metrics see the 499 of a request whose client went away.

Shutdown, in the lifespan after uvicorn has drained in-flight requests (SAM3_SHUTDOWN_GRACE_S):
WebSocket sessions are closed, then every hook registered with on_shutdown() runs (the video job runner
registers its shutdown(), which marks running jobs interrupted and keeps their finished frames), then the
model thread stops.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI

from ..logs import is_valid_request_id
from .disconnect import CancelOnDisconnect
from .metrics import install_metrics
from .ratelimit import KeyRateLimiter
from .services import services_of

log = logging.getLogger(__name__)
WORKER_STOP_TIMEOUT_S = 5.0  # after the grace period: a job without checkpoints is left behind, not awaited
ShutdownHook = Callable[[], Awaitable[None]]


def install_operations(app: FastAPI) -> None:
    """Add the operational middleware, /metrics and the state the probes and hooks read."""
    settings, engine = services_of(app).settings, services_of(app).engine
    app.state.draining = False
    app.state.shutdown_hooks = []
    app.state.rate_limiter = KeyRateLimiter(settings.rate_limit) if settings.rate_limit else None
    app.add_middleware(CancelOnDisconnect, body_timeout_s=settings.body_timeout_s,
                       on_disconnect=engine.metrics.client_disconnects.inc)
    install_metrics(app)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID", validator=is_valid_request_id)


def on_shutdown(app: FastAPI, hook: ShutdownHook) -> None:
    """Run `hook` at shutdown, after in-flight requests drained and before the model thread stops."""
    app.state.shutdown_hooks.append(hook)


async def run_shutdown_hooks(app: FastAPI) -> None:
    """Mark the server draining (readiness answers 503) and run the hooks; one failing never stops the rest."""
    app.state.draining = True
    for hook in getattr(app.state, "shutdown_hooks", []):
        try:
            await hook()
        except Exception:
            log.exception("shutdown hook %s failed", getattr(hook, "__qualname__", hook))
