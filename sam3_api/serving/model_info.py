"""What a surface may say about the model it serves: the precision it computes in (Label Studio's model_version)."""

from __future__ import annotations

from functools import lru_cache

from ..engine.engine import Sam3Engine
from ..engine.precision import resolve
from ..engine.runtime import pick_device


def precision_name(engine: Sam3Engine) -> str:
    """fp32 | bf16: what the loaded engine runs, or, while it loads, what SAM3_PRECISION resolves to on the
    device it will use (so an answer given during loading names the same precision as later ones)."""
    return engine.status.precision or _expected(engine.settings.precision, engine.settings.device)


@lru_cache(maxsize=8)
def _expected(requested: str, device: str) -> str:
    try:
        return resolve(requested, pick_device(device)).name
    except RuntimeError:  # SAM3_DEVICE=cuda without a GPU: loading fails and says why
        return requested
