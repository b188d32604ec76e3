"""Batch labeling's image embeddings: several images per backbone step, kept apart from interactive users'.

A batch job's images are each seen once, so caching them in the shared embedding LRU would only evict the
images interactive users are clicking on. Work marked as batch work (`BATCH_WORK`, set by the batch job
runner in its own task; the model thread runs each job in its caller's context) keeps its embeddings in a
small cache of its own: 2 x SAM3_BATCH_BACKBONE_IMAGES entries, one step being used while the next is
encoded. It only reads the shared cache, without counting a hit or a miss there.

`encode_batch` runs the backbone over up to SAM3_BATCH_BACKBONE_IMAGES images in ONE heavy model
step (Sam3Runtime.encode_many); the heads then run per image at normal priority, so a click waits for at most
one step. 0 chooses per device, from bench/batch.py's measurements (README, Performance).
"""

from __future__ import annotations

import sys
from contextvars import ContextVar

from . import image_jobs
from .cache import EmbeddingCache
from .types import PreparedImage
from .worker import Priority

# True inside a batch job's task: embeddings go to the batch cache, never into the shared one.
BATCH_WORK: ContextVar[bool] = ContextVar("sam3_batch_work", default=False)
# Images per backbone step when SAM3_BATCH_BACKBONE_IMAGES=0, by device type (measured: README, Performance).
DEFAULT_IMAGES_PER_STEP = {"cpu": 1, "cuda": 4}


class BatchEmbeddings:
    """The batch cache and the resolved number of images per backbone step."""

    def __init__(self, requested: int):
        self.requested = requested
        self.images_per_step = requested or 1
        self.cache: EmbeddingCache = EmbeddingCache(2 * self.images_per_step, sys.maxsize)  # bounded by entries

    def resolve(self, device_type: str) -> None:
        """Fix the step size once the device is known (SAM3_DEVICE=auto)."""
        self.images_per_step = self.requested or DEFAULT_IMAGES_PER_STEP.get(device_type, 1)
        self.cache.max_entries = 2 * self.images_per_step

    def lookup(self, shared: EmbeddingCache, key: str):
        """Where an embedding is found, and the cache a newly computed one goes to (model thread only)."""
        if not BATCH_WORK.get():
            return shared.get(key), shared
        found = self.cache.get(key) if key in self.cache else shared.peek(key)
        return found, self.cache

    def finds(self, shared: EmbeddingCache, key: str) -> bool:
        """Whether the calling task's next prompt on `key` skips the backbone; membership tests only, so safe off
        the model thread (atomic under the GIL)."""
        return key in shared or (BATCH_WORK.get() and key in self.cache)


async def encode_batch(engine, images: list[PreparedImage]) -> None:
    """Run the backbone over these images (those not cached) in ONE heavy model step, into the batch cache, for
    the prompts on them that follow in the same batch task. Exempt from the queue deadline, like a video step."""
    engine._require_ready()
    missing = list({image.key: image for image in images if not engine.batch.finds(engine.cache, image.key)}
                   .values())
    if missing:
        await engine.worker.run(image_jobs.encode_many_job, engine, missing, priority=Priority.HEAVY, label="batch",
                                expires=False)
