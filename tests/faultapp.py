"""A test-only server: the real app on dev-tiny plus /_test/faults, which injects faults into the loaded model.

    python -m tests.faultapp            # HOST, PORT and every SAM3_* setting as for app.py; same serve()
    uvicorn tests.faultapp:app

It is app.py's server (same create_app, same logging, same sam3_api.serve.serve with its graceful shutdown)
with one extra router. The faults wrap the runtime's three primitives (encode, detect, decode) on the model
thread: "slow" sleeps before the call, "raise" raises RuntimeError, "oom" raises torch.OutOfMemoryError as
CUDA does, "memory" raises MemoryError. Nothing under sam3_api/ knows this module, and it never ships: the
Dockerfile copies app.py, sam3_api/ and static/ only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Literal

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, Field

from sam3_api.config import Settings
from sam3_api.logs import configure_logging
from sam3_api.main import create_app
from sam3_api.serve import serve

PRIMITIVES = ("encode", "detect", "decode")


class FaultPlan(BaseModel):
    mode: Literal["none", "slow", "raise", "oom", "memory"] = "none"
    on: Literal["encode", "detect", "decode", "any"] = "any"
    seconds: float = Field(0.0, ge=0, le=60, description="how long 'slow' sleeps per call")
    times: int | None = Field(None, ge=1, description="calls affected; None: until the plan is replaced")


class FaultyRuntime:
    """Wraps a Sam3Runtime; every other attribute passes through untouched."""

    def __init__(self, runtime):
        self._runtime = runtime
        self.plan = FaultPlan()
        self.calls: Counter[str] = Counter()  # primitive calls made, faulty or not
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        attribute = getattr(self._runtime, name)
        if name not in PRIMITIVES:
            return attribute

        def faulty(*args, **kwargs):
            self._inject(name)
            return attribute(*args, **kwargs)

        return faulty

    def _inject(self, primitive: str) -> None:
        with self._lock:
            self.calls[primitive] += 1
            plan = self.plan
            if plan.mode == "none" or plan.on not in (primitive, "any"):
                return
            if plan.times is not None:
                self.plan = plan.model_copy(update={"times": plan.times - 1} if plan.times > 1 else {"mode": "none"})
        if plan.mode == "slow":
            time.sleep(plan.seconds)
        elif plan.mode == "raise":
            raise RuntimeError(f"injected fault in {primitive}: secret-internal-detail")
        elif plan.mode == "oom":
            import torch

            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 20.00 GiB (injected in {primitive})")
        elif plan.mode == "memory":
            raise MemoryError(f"injected in {primitive}")


router = APIRouter(prefix="/_test", include_in_schema=False)


def _faulty_runtime(request: Request) -> FaultyRuntime:
    engine = request.app.state.services.engine
    if not isinstance(engine.runtime, FaultyRuntime):
        engine.runtime = FaultyRuntime(engine.runtime)  # set once, while the model thread is idle
    return engine.runtime


@router.post("/faults")
async def set_faults(plan: FaultPlan, request: Request) -> dict:
    runtime = _faulty_runtime(request)
    runtime.plan = plan
    return {"plan": plan.model_dump(), "calls": dict(runtime.calls)}


@router.get("/faults")
async def get_faults(request: Request) -> dict:
    runtime = _faulty_runtime(request)
    return {"plan": runtime.plan.model_dump(), "calls": dict(runtime.calls),
            "cached_images": len(request.app.state.services.engine.cache)}


def create_fault_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.include_router(router)
    return app


settings = Settings()
configure_logging(settings.log_level, settings.log_format)
app = create_fault_app(settings)

if __name__ == "__main__":
    serve(app, settings)
