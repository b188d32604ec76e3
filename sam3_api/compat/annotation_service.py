"""Drop-in for seed 002, the "SAM3 图像标注服务" annotation service: its browser client works unchanged.

Routes (wire format read from the service's app.py, schemas/api.py and core/model_wrapper.py):
  POST /predict   JSON {"image_base64": str (a data-URL prefix is stripped) | "image_path": str,
                        "boxes": [{"box": [x1, y1, x2, y2]}], "texts": [{"text": str}]}
                  -> {"masks": [{"label", "mask_base64": "data:image/png;base64,..."}], "message": "Success"}
                  text only: every instance of texts[0], labelled "<text>_<i>";
                  boxes only: the boxes are positive exemplars of one concept, every similar instance,
                  labelled "box_<i>";
                  text and boxes: the instances of texts[0] whose box centre lies in one of the boxes.
                  i counts from 0 in the answer's order. Each mask is an RGBA PNG at the image's size:
                  colour (0, 255, 255) and opaque on the object, transparent elsewhere. Instances are kept
                  when their score reaches 0.5 (the original's fixed threshold; extension: a
                  `confidence_threshold` field changes it).
  POST /predict_video       JSON {"video_base64": str, "boxes": [{"box": [x1, y1, x2, y2]}]}: each box is one
                            object on the first frame, tracked forward -> {"frames": {"0": "data:image/jpeg;
                            base64,...", ...}, "debug_images": null}
  POST /predict_video_text  JSON {"video_base64": str, "text_prompt": str}: every instance of the text, found
                            and tracked through the video -> {"frames": {...}}
                  Each frame (JPEG quality 90) has its objects' masks blended in, each object in its own
                  colour. They run as ordinary video jobs (annotation_video.py): the native decoder limits,
                  plus at most SAM3_COMPAT_VIDEO_MAX_FRAMES frames (413 beyond: every frame is in the answer).
                  No boxes, or a blank text_prompt, is a 400 as in the original.
Errors: {"detail": "<message>"} (its browser client shows `detail`). /health is the native one: it already
carries the `model_loaded` field this service's clients read.

`image_path` reads a file only below the operator's SAM3_IMAGE_ROOT (media/local_files.py): unset, it is
a 403; `..`, absolute paths outside the root and symlinks pointing out are a 403; a missing file a 404.

Deliberate differences: the original read any path on the server (here: only below SAM3_IMAGE_ROOT);
masks are not blurred at the edges (the original Gaussian-blurred the alpha, so pixels just outside the
object were tinted too: here alpha is exactly the mask); instances are sorted by score; a request with
neither texts nor boxes is a 422 that says so (the original answered an empty list); like the original,
texts after the first are not used. Video: a bad or oversized video or a box outside the frame is a
4xx naming the problem (the original answered 500 with a traceback); the job is cancelled when the client
hangs up; masks are outlined as well as tinted, in the palette colours of the native annotated MP4.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..api.deps import ApiKeyDep, EngineDep, SettingsDep, VideoJobsDep
from ..api.errors import Surface
from ..api.inputs import image_from_base64, image_from_server_path
from ..api.openapi import json_body_schema
from ..api.schemas import MAX_LIST
from ..engine.prompts import check_boxes
from ..engine.selection import keep_centred_in
from ..engine.types import Segmentation
from ..errors import InvalidImage, InvalidPrompt, Sam3Error
from ..media.masks import mask_to_rgba_png_base64
from ..serving import image as serving
from ..serving.image import ImagePrompts
from .annotation_video import track_video
from .common import detail_error

router = APIRouter(tags=["drop-in: annotation service (seed 002)"])
SURFACE = Surface("annotation-service", detail_error,
                  paths=frozenset({"/predict", "/predict_video", "/predict_video_text"}))
MASK_COLOUR = (0, 255, 255)  # RGB, the original's colour
SCORE_THRESHOLD = 0.5


class BoxPrompt(BaseModel):
    box: list[float] = Field(..., min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels")


class TextPrompt(BaseModel):
    text: str = Field(..., max_length=10_000, description="What to find, e.g. 'a red car'")


class AnnotationRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, json_schema_extra={
        "anyOf": [{"required": ["image_base64"]}, {"required": ["image_path"]}]})

    image_base64: str | None = Field(None, json_schema_extra={"minLength": 1},
                                     description="Base64 image; a data: URL prefix is accepted")
    image_path: str | None = Field(None, json_schema_extra={"minLength": 1},
                                   max_length=4096, description="A file below SAM3_IMAGE_ROOT")
    boxes: list[BoxPrompt] | None = Field(None, max_length=MAX_LIST)
    texts: list[TextPrompt] | None = Field(None, max_length=MAX_LIST)
    confidence_threshold: float = Field(SCORE_THRESHOLD, ge=0.0, le=1.0,
                                        description="Extension: the score an instance needs (the original: 0.5)")


class MaskResult(BaseModel):
    label: str
    mask_base64: str


class AnnotationResponse(BaseModel):
    masks: list[MaskResult]
    message: str = "Success"


@router.post("/predict", response_model=AnnotationResponse, summary="Annotate an image (the service's /predict)")
async def predict(request: AnnotationRequest, engine: EngineDep, settings: SettingsDep) -> AnnotationResponse:
    """Text, exemplar boxes, or text inside boxes: RGBA mask PNGs labelled the way the service labels them."""
    if request.image_base64:
        pixels = await image_from_base64(request.image_base64, settings)
    elif request.image_path:
        pixels = await image_from_server_path(request.image_path, settings)
    else:
        raise InvalidImage("Either image_base64 or image_path must be provided", field="image_base64")
    boxes = [prompt.box for prompt in request.boxes or []]
    text = request.texts[0].text if request.texts else None
    if text is None and not boxes:
        raise InvalidPrompt("give texts ([{\"text\": \"car\"}]), boxes ([{\"box\": [x1, y1, x2, y2]}]) or both",
                            field="texts")
    if text is None:  # boxes alone: exemplars of one concept
        prompts = ImagePrompts(exemplar_boxes=boxes, confidence_threshold=request.confidence_threshold)
        found, label = (await serving.segment_concepts(engine, pixels, prompts)).segmentation, "box"
    else:
        prompts = ImagePrompts(texts=[text], confidence_threshold=request.confidence_threshold)
        found, label = (await serving.segment_concepts(engine, pixels, prompts)).segmentation, text
        if boxes:  # the same box rules as everywhere else (4 finite numbers, inside the image)
            found = keep_centred_in(found, check_boxes(boxes, pixels.shape[1], pixels.shape[0]))
    return AnnotationResponse(masks=await asyncio.to_thread(_masks, found, label))


def _masks(found: Segmentation, label: str) -> list[MaskResult]:
    return [MaskResult(label=f"{label}_{index}",
                       mask_base64="data:image/png;base64," + mask_to_rgba_png_base64(mask, MASK_COLOUR))
            for index, mask in enumerate(found.masks)]


class VideoBoxRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    video_base64: str = Field(..., json_schema_extra={"minLength": 1},
                              description="The video file, base64 (a data: URL prefix is accepted)")
    boxes: list[BoxPrompt] = Field(..., max_length=MAX_LIST, json_schema_extra={"minItems": 1},
                                   description="Objects to track, boxed on frame 0")


class VideoTextRequest(BaseModel):
    video_base64: str = Field(..., json_schema_extra={"minLength": 1},
                              description="The video file, base64 (a data: URL prefix is accepted)")
    text_prompt: str = Field(..., json_schema_extra={"minLength": 1},
                             max_length=10_000, description="What to find and track, e.g. 'a running dog'")


def _body_schema(model: type[BaseModel]) -> dict:
    return {"requestBody": {"content": {"application/json": {"schema": json_body_schema(model)}}, "required": True}}


@router.post("/predict_video", openapi_extra=_body_schema(VideoBoxRequest),
             summary="Track boxed objects through a video (the service's /predict_video)")
async def predict_video(request: Request, runner: VideoJobsDep, settings: SettingsDep, key: ApiKeyDep) -> Response:
    """Boxes on the first frame, tracked forward: every frame as a JPEG with the objects blended in."""
    body = await _video_body(request, VideoBoxRequest)
    if not body.boxes:
        raise Sam3Error("Initial box prompts are required for video tracking.", field="boxes")
    objects = [{"frame_index": 0, "box": prompt.box} for prompt in body.boxes]
    frames = await track_video(runner, settings, key, body.video_base64, {"objects": objects, "direction": "forward"})
    return await _json({"frames": frames, "debug_images": None})


@router.post("/predict_video_text", openapi_extra=_body_schema(VideoTextRequest),
             summary="Find and track every instance of a text through a video (the service's /predict_video_text)")
async def predict_video_text(request: Request, runner: VideoJobsDep, settings: SettingsDep,
                             key: ApiKeyDep) -> Response:
    """Every instance of the text, tracked: every frame as a JPEG with the instances blended in."""
    body = await _video_body(request, VideoTextRequest)
    if not body.text_prompt.strip():
        raise Sam3Error("Text prompt is required for video tracking.", field="text_prompt")
    frames = await track_video(runner, settings, key, body.video_base64,
                               {"texts": [body.text_prompt], "direction": "forward"})
    return await _json({"frames": frames})


async def _video_body(request: Request, model: type[BaseModel]):
    """Bodies of up to SAM3_VIDEO_MAX_BYTES of base64: parsed off the event loop."""
    try:
        return await asyncio.to_thread(model.model_validate_json, await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


async def _json(answer: dict) -> Response:
    return Response(await asyncio.to_thread(json.dumps, answer), media_type="application/json")
