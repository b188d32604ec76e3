"""Every model call of the Label Studio adapter, in one place: through the serving layer (serving/image.py).

The adapter's routes parse Label Studio's request, call these functions and render the answer; nothing
else in the package touches the engine or serving. An image's embedding is cached by the engine, so all the
prompts of a task, and later clicks on it, share one backbone run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...engine.engine import Sam3Engine
from ...engine.types import PreparedImage, Segmentation
from ...serving.image import ImagePrompts, segment_concepts, segment_objects
from ...serving.model_info import precision_name


def model_version(engine: Sam3Engine) -> str:
    """The model id and the precision the engine computes in (SAM3_PRECISION as resolved on its device)."""
    return f"sam3-api:{engine.status.model}:{precision_name(engine)}"


async def prepare(engine: Sam3Engine, pixels: np.ndarray) -> PreparedImage:
    return await engine.prepare(pixels)


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
