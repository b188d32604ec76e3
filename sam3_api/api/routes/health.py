"""GET / and GET /health: the truth about the model (loading, ready, or failed and why)."""

from __future__ import annotations

from fastapi import APIRouter

from ... import __version__
from ..deps import EngineDep
from ..schemas import HealthResponse

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
        queue_depth=engine.worker.pending,
        cached_images=len(engine.cache),
    )
