"""Out-of-memory recovery and GPU memory figures.

An out-of-memory error inside one request (torch.OutOfMemoryError on CUDA, MemoryError on the host) must not
take the server down or poison the next request: the request answers 503, the caches that hold memory are
emptied, and the allocator gives its cached blocks back so the next request starts from a clean slate.
"""

from __future__ import annotations

import contextlib
import gc
import logging

from ..errors import ModelOutOfMemory

log = logging.getLogger(__name__)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


@contextlib.contextmanager
def answered_as_503(engine):
    """Model-thread work inside this: out of memory becomes ModelOutOfMemory (503) after the caches are emptied."""
    try:
        yield
    except Exception as exc:
        if is_out_of_memory(exc):
            raise recover(engine, exc) from exc
        raise


def recover(engine, exc: BaseException) -> ModelOutOfMemory:
    """Free what can be freed (model thread only) and return the error the client gets."""
    entries = len(engine.cache)
    engine.cache.clear()
    engine.batch.cache.clear()
    runtime = engine.runtime
    text_cache = getattr(runtime, "_text_cache", None)
    if text_cache is not None:
        text_cache.clear()
    gc.collect()
    _empty_cuda_cache()
    log.error("out of memory (%s: %s); cleared %d cached embeddings", type(exc).__name__, exc, entries)
    return ModelOutOfMemory(
        "The model ran out of memory on this request; its caches were cleared. Retry, or send a smaller image, "
        "fewer prompts or a smaller points_per_batch.")


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def gpu_memory_bytes(device_type: str) -> dict[str, int]:
    """Allocated and reserved bytes on the current CUDA device; {} on a CPU server."""
    if device_type != "cuda":
        return {}
    import torch

    return {"allocated": int(torch.cuda.memory_allocated()), "reserved": int(torch.cuda.memory_reserved())}
