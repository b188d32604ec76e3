"""Segmentation -> seed 000's JSON response (PNG, RLE or polygon masks) or a visualisation PNG."""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi.responses import Response

from ..engine.types import Segmentation
from ..media.masks import mask_to_png_base64, mask_to_polygons, mask_to_rle, render_overlay
from .schemas import ParamsBase, SegmentResponse

MASK_ENCODERS = {"png": mask_to_png_base64, "rle": mask_to_rle, "polygon": mask_to_polygons}


def _build(result: Segmentation, params: ParamsBase, mask_prompts: list[str] | None) -> SegmentResponse:
    encode = MASK_ENCODERS[params.output_format]
    height, width = result.masks.shape[1:] if result.masks.ndim == 3 else (0, 0)
    return SegmentResponse(
        num_masks=result.num_masks,
        masks=[encode(mask) for mask in result.masks],
        boxes=[[round(float(v), 2) for v in box] for box in result.boxes],
        scores=[round(float(s), 5) for s in result.scores],
        prompt=result.prompt,
        message=None if result.num_masks else "No objects found; try a lower confidence_threshold.",
        image_size=[int(width), int(height)],
        areas=[int(mask.sum()) for mask in result.masks],
        mask_format=params.output_format,
        mask_prompts=mask_prompts,
        prompt_indices=None if result.prompt_indices is None else [int(i) for i in result.prompt_indices],
        contours=[mask_to_polygons(mask) for mask in result.masks] if params.return_contours else None,
        timing={k: v for k, v in result.timing_ms.items()},
    )


async def respond(
    result: Segmentation, params: ParamsBase, pixels: np.ndarray, mask_prompts: list[str] | None = None
) -> SegmentResponse | Response:
    """Encode off the event loop: PNG/RLE/polygon encoding of many large masks is real CPU work."""
    if params.return_visualization:
        png = await asyncio.to_thread(render_overlay, pixels, result.masks, result.scores.tolist(), result.boxes.tolist())
        return Response(content=png, media_type="image/png")
    return await asyncio.to_thread(_build, result, params, mask_prompts)
