"""Drop-in for seed 001, "sam3-service" on Cloud Run: its clients change only the base URL.

Routes (wire format read from the service's main.py):
  POST /segment   multipart: `image` (file), `prompts` repeated (one text each), `return_masks` and
                  `return_contours` (booleans, default false) ->
                  {"results": [{"label": <prompt>, "boxes": [[x1, y1, x2, y2], ...] (float pixels),
                                "scores": [...], "mask_shape": [N, 1, H, W],
                                "masks_rle": [{"size": [H, W], "counts": str}]     only with return_masks,
                                "contours": per mask, its outer contours as [[x, y], ...] int points
                                                                               only with return_contours}]}
                  one result per prompt, in request order; instances kept when their score reaches 0.5
                  (extension: a `confidence_threshold` field changes that; the original had no such knob).
  GET /healthz    always 200 (Cloud Run's startup probe): {"status": "ok", "device"} once the model is
                  ready, else {"status": "loading" | "error", "error": <why or null>}.
Errors: {"detail": "<message>"}; a blank prompt is a 400, like the original.

Deliberate differences: the image embedding is cached across requests (the original encoded the image
again on every request); instances within a result are sorted by score, best first;
a model that failed to load says "error" on /healthz (the original kept saying "loading"); an image it
cannot read is a 400/413 naming the problem rather than a bare "Invalid image file."; the original's
/health is not copied, since /health here is the native one (seed 000's fields).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from ..api.deps import EngineDep, SettingsDep
from ..api.errors import Surface
from ..api.inputs import image_from_upload
from ..engine.types import Segmentation
from ..errors import Sam3Error
from ..media.masks import mask_to_outer_contours, mask_to_rle
from ..serving import image as serving
from ..serving.image import ImagePrompts
from .common import detail_error

router = APIRouter(tags=["drop-in: sam3-service (seed 001)"])
SURFACE = Surface("sam3-service", detail_error, paths=frozenset({"/segment", "/healthz"}))
SCORE_THRESHOLD = 0.5  # the original's Sam3Processor default


@router.post("/segment", summary="Every instance of each prompt (sam3-service's POST /segment)")
async def segment(
    engine: EngineDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="The image file")],
    prompts: Annotated[list[str], Form(description="One text per field; repeat the field for more")],
    return_masks: Annotated[bool, Form()] = False,
    return_contours: Annotated[bool, Form()] = False,
    confidence_threshold: Annotated[
        float, Form(ge=0.0, le=1.0, allow_inf_nan=False, description="Extension: the score an instance needs")
    ] = SCORE_THRESHOLD,
):
    """Text prompts on one image: one result per prompt, in request order."""
    labels = [prompt.strip() for prompt in prompts]
    if not labels or not all(labels):
        raise Sam3Error("Prompts must not be empty: give every `prompts` field a text, e.g. -F prompts=cat",
                        field="prompts")
    pixels = await image_from_upload(image, settings)
    prompts = ImagePrompts(texts=labels, confidence_threshold=confidence_threshold)
    found = (await serving.segment_concepts(engine, pixels, prompts)).per_prompt
    height, width = pixels.shape[:2]
    results = await asyncio.to_thread(
        lambda: [_result(label, result, (height, width), return_masks, return_contours)
                 for label, result in zip(labels, found)]
    )
    return {"results": results}


def _result(label: str, result: Segmentation, size: tuple[int, int], masks: bool, contours: bool) -> dict:
    answer = {
        "label": label,
        "boxes": [[float(v) for v in box] for box in result.boxes],
        "scores": [float(score) for score in result.scores],
        "mask_shape": [result.num_masks, 1, *size],
    }
    if masks:
        answer["masks_rle"] = [mask_to_rle(mask) for mask in result.masks]
    if contours:
        answer["contours"] = [mask_to_outer_contours(mask) for mask in result.masks]
    return answer


@router.get("/healthz", summary="Cloud Run probe (sam3-service's GET /healthz)")
async def healthz(engine: EngineDep) -> dict:
    """Always 200, so Cloud Run's startup probe passes while the model loads; the body tells the state."""
    status = engine.status
    if status.ready:
        return {"status": "ok", "device": status.device}
    return {"status": "loading" if status.state == "loading" else "error", "error": status.error}
