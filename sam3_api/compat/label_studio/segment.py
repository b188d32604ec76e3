"""Every model call of the Label Studio adapter, in one place: through the serving layer (serving/image.py).

The adapter's routes parse Label Studio's request, call these functions and render the answer; nothing
else in the package touches the engine or serving. An image's embedding is cached by the engine, so all the
prompts of a task, and later clicks on it, share one backbone run. A call of several tasks to pre-label is
batch work (engine/batch_embeddings.py): SAM3_BATCH_BACKBONE_IMAGES images per backbone step, and its
embeddings kept apart from the cache of the images annotators are clicking on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ...engine.batch_embeddings import BATCH_WORK, encode_batch
from ...engine.engine import Sam3Engine
from ...engine.types import PreparedImage, Segmentation
from ...errors import ModelNotReady, Sam3Error
from ...serving.image import ImagePrompts, segment_concepts, segment_objects
from ...serving.model_info import precision_name

log = logging.getLogger(__name__)


def model_version(engine: Sam3Engine) -> str:
    """The model id and the precision the engine computes in (SAM3_PRECISION as resolved on its device)."""
    return f"sam3-api:{engine.status.model}:{precision_name(engine)}"


async def prepare(engine: Sam3Engine, pixels: np.ndarray) -> PreparedImage:
    return await engine.prepare(pixels)


def enter_batch_work(engine: Sam3Engine, tasks: int, interactive: bool) -> int:
    """Mark a call that pre-labels several tasks as batch work (BATCH_WORK, in the calling asyncio task only) and
    return how many of its images share a backbone step; 1, and no mark, for one task (the editor opening it)
    or a click, which keep the shared cache, so the next click on that image costs only the decoder."""
    if interactive or tasks < 2:
        return 1
    BATCH_WORK.set(True)
    return engine.batch.images_per_step


async def encode_together(engine: Sam3Engine, images: list[PreparedImage]) -> None:
    """The images through the backbone in one step (batch work); a step that fails, out of memory say, leaves
    them to run one by one in their own prompts."""
    if len(images) < 2:
        return
    try:
        await encode_batch(engine, images)
    except ModelNotReady:
        raise
    except Sam3Error as exc:
        log.warning("Label Studio: a backbone step of %d images failed (%s); they run one by one", len(images),
                    exc.message)


async def concepts(engine: Sam3Engine, image: PreparedImage, texts: Sequence[str], threshold: float,
                   max_prompts: int) -> list[Segmentation]:
    """Every instance of each text (one Segmentation per text, in order), in chunks of the prompt limit."""
    found: list[Segmentation] = []
    for start in range(0, len(texts), max_prompts):
        chunk = ImagePrompts(texts=list(texts[start:start + max_prompts]), confidence_threshold=threshold)
        found.extend((await segment_concepts(engine, image, chunk)).per_prompt)
    return found


async def visual(engine: Sam3Engine, image: PreparedImage, points: list[list[float]], labels: list[int],
                 box: list[float] | None) -> Segmentation:
    """The one object at the clicks (positive 1 / negative 0) and/or inside the box."""
    prompts = ImagePrompts(points=points, point_labels=labels, boxes=[box] if box is not None else [])
    return (await segment_objects(engine, image, prompts)).segmentation
