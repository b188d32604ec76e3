"""The work of one seed 003 job: what the service's Runpod handler (gpu-worker/handler.py) did, on our engine.

{"image_url", "concepts": [...], "confidence_threshold": 0.5} -> {"output": {"image_size": [W, H], "results":
{concept: {"instance_count", "masks_base64": [grayscale PNG, 0 background / 255 object], "scores"}}}}, one
entry per distinct concept in input order, instances best first. Errors fail the job with the handler's own
message prefixes, which its clients may match: "Missing required field: ...", "Failed to download image: ...",
"Segmentation failed: ...".
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..api.errors import describe_errors
from ..api.inputs import image_from_url
from ..api.schemas import MAX_LIST
from ..config import Settings
from ..engine.engine import Sam3Engine
from ..engine.types import PreparedImage, Segmentation
from ..errors import EngineBusy, InvalidPrompt, Sam3Error
from ..jobs.store import Job
from ..media.masks import mask_to_png_base64
from ..serving import image as serving
from ..serving.image import ImagePrompts


class RunpodInput(BaseModel):
    """The handler's input (extra fields are ignored, as the original ignored them)."""

    model_config = ConfigDict(allow_inf_nan=False)

    image_url: str = Field(..., max_length=8192, description="http(s) URL of the image (public hosts only)")
    concepts: list[str] = Field(..., max_length=MAX_LIST, description="What to find, e.g. [\"wall\", \"door\"]")
    confidence_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Score an instance must exceed")


def make_handler(engine: Sam3Engine, settings: Settings):
    """The ShortJobRunner handler of seed 003 jobs."""

    async def segment(job: Job) -> dict:
        params = parse_input(job.request.get("input"), settings)
        try:
            pixels = await image_from_url(params.image_url, settings)
        except Sam3Error as exc:
            raise exc.with_message(f"Failed to download image: {exc.message}", field="image_url") from None
        image = await engine.prepare(pixels)
        results: dict[str, dict] = {}
        for concept in params.concepts:
            if concept not in results:  # the original's dict kept one entry per concept too
                found = await _segment(engine, image, concept, params.confidence_threshold)
                results[concept] = await asyncio.to_thread(_concept_result, found)
        return {"output": {"image_size": [image.width, image.height], "results": results}}

    return segment


def parse_input(document: Any, settings: Settings) -> RunpodInput:
    """The job's input, or a Sam3Error with the original handler's message for what is missing."""
    if not isinstance(document, dict):
        raise InvalidPrompt("Invalid input: `input` must be an object such as {\"image_url\": \"https://...\", "
                            "\"concepts\": [\"wall\"]}", field="input")
    for required in ("image_url", "concepts"):
        if required not in document:
            raise InvalidPrompt(f"Missing required field: {required}", field=required)
    try:
        params = RunpodInput.model_validate(document)
    except ValidationError as exc:
        raise InvalidPrompt(f"Invalid input: {describe_errors(exc.errors(include_url=False), whole='input')}",
                            field="input") from None
    if len(params.concepts) > settings.max_prompts:
        raise InvalidPrompt(f"Invalid input: {len(params.concepts)} concepts; the limit is {settings.max_prompts} "
                            "(SAM3_MAX_PROMPTS)", field="concepts")
    return params


async def _segment(engine: Sam3Engine, image: PreparedImage, concept: str, threshold: float) -> Segmentation:
    """One concept on the model thread. A busy model queue only delays a job: it waits its turn and retries."""
    while True:
        try:
            prompts = ImagePrompts(texts=[concept], confidence_threshold=threshold)
            return (await serving.segment_concepts(engine, image, prompts)).segmentation
        except EngineBusy as exc:
            await asyncio.sleep(exc.retry_after_s)
        except Sam3Error as exc:
            raise exc.with_message(f"Segmentation failed: {exc.message}") from None


def _concept_result(found: Segmentation) -> dict:
    return {"instance_count": found.num_masks,
            "masks_base64": [mask_to_png_base64(mask) for mask in found.masks],
            "scores": [float(score) for score in found.scores]}
