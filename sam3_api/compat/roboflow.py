"""Drop-in for seed 004, Roboflow's hosted SAM 3 API: `InferenceHTTPClient(api_url=<this server>)` works.

Routes (wire format read from roboflow/inference: entities/requests/sam3.py, sam2.py, responses/sam3.py,
models/sam3/segment_anything3.py and visual_segmentation.py; request models in roboflow_schemas.py):
  POST /sam3/concept_segment  {"image": {"type": "base64" | "url", "value"}, "prompts": 1-16 of
        {"type": "text" | "visual", "text", "boxes": [{x, y, width, height} (top-left) | {x0, y0, x1, y1}],
         "box_labels": [1 | 0 ...], "output_prob_thresh"}, "output_prob_thresh": 0.5, "format": "polygon" |
        "json" (= polygon) | "rle", "nms_iou_threshold" (cross-prompt mask NMS when set), "image_id"}
        -> {"prompt_results": [{"prompt_index", "echo": {"prompt_index", "type", "text", "num_boxes"},
            "predictions": [{"masks", "confidence", "format"}]}], "time": seconds}
        polygon masks: the instance's outer contours, each [[x, y], ...] of ints; rle: {"size", "counts"}.
  POST /sam3/visual_segment   {"image", "prompts": {"prompts": [...]} | [...] | one prompt, each
        {"box": {x, y, width, height} with x, y the box CENTRE, "points": [{"x", "y", "positive"}]},
        "multimask_output": true (decode SAM's three candidates, answer the best), "format", "image_id"}
        -> {"predictions": [{"masks", "confidence", "format"}] (one per prompt, in order), "time"}
  POST /sam3/embed_image      {"image", "image_id"?} -> {"image_id", "time"}; a later request that names
        that image_id reuses the embedding, and may leave out the image.
Errors: {"message": "<what is wrong and how to fix it>"}. The API key (when SAM3_API_KEYS is set) may
also come as `api_key` in the query string or the JSON body, as Roboflow's clients send it.

image_id: the id only names an image this server decoded; it maps to the hash of those pixels (the
embedding-cache key), never to whatever the client claims, and each id is visible only to the API key
that set it (common.ScopedImages). A request that sends the image is always segmented on those pixels,
and re-points its image_id at them.

Deliberate differences: image types "numpy" (a pickle: running it would run client code) and "file" (a
server path) are refused with 400; URL images go through the SSRF-safe fetcher; image-less requests
naming a known image_id are accepted (Roboflow requires the image); a visual prompt with neither box nor
points, or a request with no prompts, is a 422 (Roboflow decoded a dummy point); a box alone is decoded as
one mask (a box is not ambiguous); boxes must lie inside the image; `model_id` is ignored (one model).
Thresholds mean what they say: a request's `output_prob_thresh: 0` is 0 (Roboflow read it as 0.5), and a
prompt without its own threshold uses the request's (Roboflow let the lowest prompt threshold leak to it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends

from ..api.deps import ApiKeyDep, EngineDep, ServicesDep, SettingsDep
from ..api.errors import Surface
from ..api.services import Services
from ..api.inputs import image_from_base64, image_from_url
from ..config import Settings
from ..engine.engine import Sam3Engine
from ..engine.selection import suppress_across
from ..engine.types import PreparedImage, Segmentation
from ..errors import InvalidImage, InvalidPrompt, NotFound
from ..media.masks import mask_to_outer_contours, mask_to_rle
from ..serving import image as serving
from ..serving.image import ImagePrompts
from .common import ScopedImages, message_error
from .roboflow_schemas import (
    ACCEPTED_IMAGE_TYPES, ConceptPrompt, ConceptSegmentRequest, EmbedImageRequest, RequestBase, VisualPrompt,
    VisualSegmentRequest,
)

router = APIRouter(prefix="/sam3", tags=["drop-in: Roboflow SAM 3 (seed 004)"])
SURFACE = Surface("roboflow", message_error, prefixes=("/sam3/",), key_in_query=True, key_in_body=True)

IMAGES = "roboflow_images"  # services.adapters key: the image ids clients named


def install_state(services: Services) -> None:
    settings = services.settings
    services.adapters[IMAGES] = ScopedImages(settings.image_id_entries, settings.image_id_bytes)


def _scoped_images(services: ServicesDep) -> ScopedImages:
    return services.adapters[IMAGES]


ImagesDep = Annotated[ScopedImages, Depends(_scoped_images)]


@router.post("/concept_segment", summary="Every instance of each text or exemplar prompt (SAM 3 PCS)")
async def concept_segment(body: ConceptSegmentRequest, engine: EngineDep, settings: SettingsDep, images: ImagesDep,
                          key: ApiKeyDep):
    """Concept prompts, each answered with its own instances (polygon or RLE)."""
    started = time.perf_counter()
    image = await _image(body, images, key, engine, settings)
    found = [await _concept(engine, image, prompt, body.output_prob_thresh, index)
             for index, prompt in enumerate(body.prompts)]
    if body.nms_iou_threshold is not None:
        found = suppress_across(found, body.nms_iou_threshold)
    fmt = "rle" if body.format == "rle" else "polygon"
    results = await asyncio.to_thread(
        lambda: [_prompt_result(index, prompt, result, fmt)
                 for index, (prompt, result) in enumerate(zip(body.prompts, found))]
    )
    return {"prompt_results": results, "time": time.perf_counter() - started}


@router.post("/visual_segment", summary="The object at each box and/or points (SAM 3 PVS)")
async def visual_segment(body: VisualSegmentRequest, engine: EngineDep, settings: SettingsDep, images: ImagesDep,
                         key: ApiKeyDep):
    """Visual prompts: one prediction per prompt, in order."""
    started = time.perf_counter()
    if not body.prompts:
        raise InvalidPrompt("prompts is empty: give {\"prompts\": [{\"points\": [{\"x\": 100, \"y\": 80, "
                            "\"positive\": true}]}]} or a box", field="prompts")
    image = await _image(body, images, key, engine, settings)
    found = [await _visual(engine, image, prompt, body.multimask_output, index)
             for index, prompt in enumerate(body.prompts)]
    fmt = "rle" if body.format == "rle" else "polygon"
    predictions = await asyncio.to_thread(lambda: [p for result in found for p in _predictions(result, fmt)])
    return {"predictions": predictions, "time": time.perf_counter() - started}


@router.post("/embed_image", summary="Encode an image now; later requests name it by image_id")
async def embed_image(body: EmbedImageRequest, engine: EngineDep, settings: SettingsDep, images: ImagesDep,
                      key: ApiKeyDep):
    """Run the backbone once; answer the image_id that later requests may use instead of the image."""
    started = time.perf_counter()
    image = await engine.embed(await _image(body, images, key, engine, settings))
    image_id = body.image_id or image.key
    images.remember(key, image_id, image)
    return {"image_id": image_id, "time": time.perf_counter() - started}


async def _image(body: RequestBase, images: ScopedImages, key: str | None, engine: Sam3Engine,
                 settings: Settings) -> PreparedImage:
    """The request's pixels (remembered under its image_id), or the image an earlier request named."""
    if body.image is not None:
        image = await engine.prepare(await _decode(body.image.type, body.image.value, settings))
        if body.image_id:
            images.remember(key, body.image_id, image)
        return image
    if not body.image_id:
        raise InvalidImage("image is required: {\"type\": \"base64\", \"value\": \"...\"} or {\"type\": \"url\", "
                           "\"value\": \"https://...\"}, or the image_id of an earlier request", field="image")
    image = images.find(key, body.image_id)
    if image is None:
        raise NotFound(f"image_id {body.image_id!r} is not held for this API key (never sent, or forgotten); "
                       "send the image again", field="image_id")
    return image


async def _decode(kind: str, value, settings: Settings) -> np.ndarray:
    if kind not in ACCEPTED_IMAGE_TYPES:
        raise InvalidImage(f"image type {kind!r} is not accepted here: send {{\"type\": \"base64\"}} or "
                           "{\"type\": \"url\"} (numpy pickles and server file paths are refused)", field="image")
    if not isinstance(value, str) or not value:
        raise InvalidImage(f"image.value must be a non-empty string for type {kind!r}", field="image")
    return await (image_from_base64(value, settings) if kind == "base64" else image_from_url(value, settings))


async def _concept(engine: Sam3Engine, image: PreparedImage, prompt: ConceptPrompt, default: float | None,
                   index: int) -> Segmentation:
    boxes = [box.xyxy() for box in prompt.boxes or []]
    text = prompt.text if prompt.text and prompt.text.strip() else None
    if text is None and not boxes:
        raise InvalidPrompt(f"prompts[{index}] has neither text nor boxes: give \"text\": \"dog\" or exemplar "
                            "boxes", field="prompts")
    labels = None if prompt.box_labels is None else [int(bool(label)) for label in prompt.box_labels]
    threshold = default if prompt.output_prob_thresh is None else prompt.output_prob_thresh
    prompts = ImagePrompts(texts=[text] if text else [], exemplar_boxes=boxes, exemplar_labels=labels,
                           confidence_threshold=threshold)
    return (await serving.segment_concepts(engine, image, prompts)).segmentation


async def _visual(engine: Sam3Engine, image: PreparedImage, prompt: VisualPrompt, multimask: bool,
                  index: int) -> Segmentation:
    if not prompt.points and not prompt.box:
        raise InvalidPrompt(f"prompts[{index}] has neither a box nor points", field="prompts")
    prompts = ImagePrompts(boxes=[prompt.box.xyxy()] if prompt.box else [], multimask=multimask, max_masks=1,
                           points=[[point.x, point.y] for point in prompt.points or []],
                           point_labels=[int(point.positive) for point in prompt.points or []])
    return (await serving.segment_objects(engine, image, prompts)).segmentation


def _predictions(result: Segmentation, fmt: str) -> list[dict]:
    encode = mask_to_rle if fmt == "rle" else mask_to_outer_contours
    return [{"masks": encode(mask), "confidence": float(score), "format": fmt}
            for mask, score in zip(result.masks, result.scores)]


def _prompt_result(index: int, prompt: ConceptPrompt, result: Segmentation, fmt: str) -> dict:
    num_boxes = len(prompt.boxes or [])
    echo = {"prompt_index": index, "type": "visual" if num_boxes else "text", "text": prompt.text,
            "num_boxes": num_boxes}
    return {"prompt_index": index, "echo": echo, "predictions": _predictions(result, fmt)}
