"""GET / and GET /health: the truth about the model (loading, ready, or failed and why); probes for orchestrators.

/health/live answers 200 while the process serves; /health/ready answers 200 only when the model is loaded and
its queue has room (Kubernetes readiness, load balancers), else 503 with the reason.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ... import __version__
from ..deps import EngineDep, ServicesDep
from ..schemas import ErrorResponse, HealthResponse

router = APIRouter(tags=["health"])
_STATE_TO_STATUS = {"ready": "running", "loading": "loading", "failed": "error"}


@router.get("/", response_model=HealthResponse, summary="Health check (same as /health)")
@router.get("/health", response_model=HealthResponse, summary="Health check")
async def health(engine: EngineDep) -> HealthResponse:
    """Model state, device and version; model_loaded is false while loading or after a failed load."""
    status = engine.status
    message = status.error
    if status.ready and status.is_dev_model:
        message = "random-weight development model: masks are meaningless (set SAM3_MODEL=facebook/sam3 for real ones)"
    return HealthResponse(
        status=_STATE_TO_STATUS[status.state],
        model=status.model,
        model_loaded=status.ready,
        device=status.device,
        version=__version__,
        state=status.state,
        trained_weights=not status.is_dev_model,
        message=message,
        load_seconds=status.load_seconds,
        load_attempts=status.attempts,
        queue_depth=engine.worker.pending,
        cached_images=len(engine.cache),
        precision=status.precision,
        precision_reason=status.precision_reason,
    )


@router.get("/health/live", summary="Liveness probe")
async def live() -> dict:
    """200 while the process serves HTTP (nothing else is checked: a restart would not fix a loading model)."""
    return {"status": "alive"}


@router.get("/health/ready", summary="Readiness probe", responses={503: {"model": ErrorResponse}})
async def ready(services: ServicesDep):
    """200 when the model is loaded and its queue has room; 503 with the reason otherwise."""
    engine = services.engine
    reason = _not_ready_reason(services.draining, engine)
    body = {"ready": reason is None, "state": engine.status.state, "queue_depth": engine.worker.pending,
            "max_queue": engine.worker.max_queue}
    if reason is None:
        return body
    return JSONResponse({"detail": reason, "status_code": 503, "code": "not_ready", **body}, status_code=503)


def _not_ready_reason(draining: bool, engine) -> str | None:
    status, worker = engine.status, engine.worker
    if draining:
        return "the server is shutting down"
    if status.state == "loading":
        return f"the model {status.model} is still loading" + (f": {status.error}" if status.error else "")
    if status.state == "failed":
        return f"the model {status.model} failed to load: {status.error}"
    if worker.pending >= worker.max_queue:
        return f"the model queue is full ({worker.pending} of SAM3_MAX_QUEUE={worker.max_queue})"
    return None
