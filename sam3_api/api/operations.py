"""Operations wiring: request ids, HTTP metrics, cancellation on disconnect, rate limits, shutdown hooks.

create_app() calls install_operations(app) after its own middleware, so these are the outermost layers:
    X-Request-ID (asgi-correlation-id) -> HTTP metrics -> cancel on disconnect / body timeout -> CORS -> ...
The request id is set before anything logs; the metrics see the 499 of a request whose client went away.

Shutdown, in the lifespan after uvicorn has drained in-flight requests (SAM3_SHUTDOWN_GRACE_S):
WebSocket sessions are closed, the services are marked draining (readiness answers 503) and every hook
registered with Services.on_shutdown() runs, the job runners stop (running jobs are marked interrupted, their
finished work kept), then the model thread stops (main.py's lifespan).
"""

from __future__ import annotations

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI

from ..logs import is_valid_request_id
from .disconnect import CancelOnDisconnect
from .metrics import install_metrics
from .ratelimit import KeyRateLimiter
from .state import services_of

WORKER_STOP_TIMEOUT_S = 5.0  # after the grace period: a job without checkpoints is left behind, not awaited


def install_operations(app: FastAPI) -> None:
    """Add the operational middleware, /metrics and the rate limiter (the services hold it)."""
    services = services_of(app)
    settings, engine = services.settings, services.engine
    services.rate_limiter = KeyRateLimiter(settings.rate_limit) if settings.rate_limit else None
    app.add_middleware(CancelOnDisconnect, body_timeout_s=settings.body_timeout_s,
                       on_disconnect=engine.metrics.client_disconnects.inc)
    install_metrics(app)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID", validator=is_valid_request_id)

