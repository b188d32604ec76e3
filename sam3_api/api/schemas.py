"""Request and response models of the REST API. Field names are seed 000's, to the letter.

One parameter model per prompt kind serves all three input modes: multipart forms (FastAPI reads the model
from form fields), base64 JSON and URL JSON (the same model plus `image_base64` or `image_url`). Forms carry
lists as comma-separated strings ("100,200") or JSON ("[[1,2,3,4]]"); JSON bodies carry real lists.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..serving.defaults import MASK_THRESHOLD
from .openapi_limits import setting_cap

MAX_LIST = 10_000  # hard cap; /openapi.json states SAM3_MAX_PROMPTS (setting_cap), which the engine checks
BOX_SCHEMA = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}


def _parse_list(value: Any) -> Any:
    """'1,2,3' or '[1,2,3]' (forms, possibly repeated fields) -> list; lists and None pass through."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if isinstance(value, list) and all(isinstance(item, str) for item in value) and value:
        value = ",".join(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg}") from exc
        try:  # "1,2" -> [1, 2]: numbers stay numbers, so strict JSON bodies take comma lists too
            return json.loads(f"[{text}]")
        except json.JSONDecodeError:
            return [item.strip() for item in text.split(",")]
    return value


class ParamsBase(BaseModel):
    """Options every segmentation route accepts."""

    model_config = ConfigDict(allow_inf_nan=False, extra="ignore")

    return_visualization: bool = Field(False, description="Answer an image/png overlay instead of JSON.")
    mask_threshold: float = Field(MASK_THRESHOLD, ge=0.0, le=1.0, description="Probability above which a pixel is in a mask.")
    confidence_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Score below which instances are dropped (text default 0.5, others 0)."
    )
    max_masks: int | None = Field(None, ge=1, le=1000, description="Keep at most this many masks (best first).")
    output_format: Literal["png", "rle", "polygon"] = Field(
        "png", description="png: base64 grayscale PNG; rle: COCO compressed RLE; polygon: rings [[x, y], ...]."
    )
    return_contours: bool = Field(False, description="Also return each mask's polygon rings in `contours`.")


class BoxFields(BaseModel):
    """Seed 000's single box plus our list of boxes."""

    x1: float | None = None
    y1: float | None = None
    x2: float | None = None
    y2: float | None = None
    boxes: list[list[float]] | None = Field(None, max_length=MAX_LIST, description="[[x1, y1, x2, y2], ...]",
                                            json_schema_extra=setting_cap("max_prompts", items=BOX_SCHEMA))

    _box_lists = field_validator("boxes", mode="before")(classmethod(lambda cls, v: _parse_list(v)))

    def single_box(self) -> list[float] | None:
        coords = (self.x1, self.y1, self.x2, self.y2)
        if all(c is None for c in coords):
            return None
        if any(c is None for c in coords):
            raise ValueError("give all four of x1, y1, x2, y2")
        return [float(c) for c in coords]


class PointFields(BaseModel):
    points_x: list[float] | None = Field(None, max_length=MAX_LIST, description="x of each point, e.g. '100,250'",
                                         json_schema_extra=setting_cap("max_prompts"))
    points_y: list[float] | None = Field(None, max_length=MAX_LIST, description="y of each point",
                                         json_schema_extra=setting_cap("max_prompts"))
    labels: list[int] | None = Field(None, max_length=MAX_LIST, description="1 positive, 0 negative (default 1)",
                                     json_schema_extra=setting_cap("max_prompts"))

    _point_lists = field_validator("points_x", "points_y", "labels", mode="before")(
        classmethod(lambda cls, v: _parse_list(v))
    )


class TextParams(ParamsBase):
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["text"]}, {"required": ["texts"]},
                                                           {"required": ["exemplar_boxes"]}]})

    text: str | None = Field(None, json_schema_extra={"minLength": 1},
                             max_length=10_000, description="What to find, e.g. 'person'.")
    texts: list[str] | None = Field(None, max_length=MAX_LIST, description="Several concepts, each with results.",
                                    json_schema_extra=setting_cap("max_prompts"))
    exemplar_boxes: list[list[float]] | None = Field(
        None, max_length=MAX_LIST, description="Boxes around examples: find every object like them.",
        json_schema_extra=setting_cap("max_prompts", items=BOX_SCHEMA))
    exemplar_labels: list[int] | None = Field(None, max_length=MAX_LIST, description="1 positive, 0 negative.",
                                              json_schema_extra=setting_cap("max_prompts"))

    _text_lists = field_validator("texts", "exemplar_boxes", "exemplar_labels", mode="before")(
        classmethod(lambda cls, v: _parse_list(v))
    )


class BoxParams(ParamsBase, BoxFields, PointFields):
    """One object per box; optional points refine a single box."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["x1", "y1", "x2", "y2"]},
                                                           {"required": ["boxes"]}]})


class PointParams(ParamsBase, BoxFields, PointFields):
    model_config = ConfigDict(json_schema_extra={"allOf": [{"required": ["points_x", "points_y"]}]})

    multimask_output: bool = Field(False, description="Return SAM's three candidate masks, best first.")


class AutoParamsModel(ParamsBase):
    points_per_side: int = Field(32, ge=1, le=64, description="Grid density: points_per_side^2 prompts.")
    points_per_batch: int | None = Field(None, ge=1, le=1024, description="Prompts per decoder batch (default 64 on GPU; on CPU as many as fit 384 MB, 4 at full size).")
    pred_iou_thresh: float = Field(0.88, ge=0.0, le=1.0)
    stability_score_thresh: float = Field(0.95, ge=0.0, le=1.0)
    box_nms_thresh: float = Field(0.7, ge=0.0, le=1.0)
    min_mask_region_area: int = Field(0, ge=0, le=100_000_000)


class Base64Image(BaseModel):
    # JSON bodies are strict: a boolean is true/false, an integer is not 1.0 or "1" (forms stay lenient: every
    # form field is a string, so "true" / "1" are read as a form sends them).
    model_config = ConfigDict(strict=True)

    image_base64: str = Field(..., json_schema_extra={"minLength": 1},
                              description="Base64 image bytes; a data: URL prefix is accepted.")


class UrlImage(BaseModel):
    model_config = ConfigDict(strict=True)

    image_url: str = Field(..., max_length=8192, description="http(s) URL of an image on a public host.")


class SegmentResponse(BaseModel):
    """Seed 000's response; fields after `message` are additions."""

    success: bool = True
    num_masks: int
    masks: list[Any] = Field(description="Per mask: base64 PNG, COCO RLE object or polygon rings (output_format).")
    boxes: list[list[float]] = Field(description="[x1, y1, x2, y2] in original image pixels.")
    scores: list[float]
    prompt: str | None = None
    message: str | None = None
    image_size: list[int] = Field(description="[width, height] of the image as decoded (EXIF applied).")
    areas: list[int]
    mask_format: str
    mask_prompts: list[str] | None = Field(None, description="For several texts: the text each mask answers.")
    prompt_indices: list[int] | None = Field(None, description="For several boxes: the box each mask answers.")
    contours: list[Any] | None = None
    timing: dict[str, Any] = Field(default_factory=dict, description="Server-side milliseconds.")


class ErrorResponse(BaseModel):
    detail: str
    status_code: int
    code: str | None = None


class HealthResponse(BaseModel):
    status: str = Field(description="running | loading | error")
    model: str
    model_loaded: bool
    device: str
    version: str
    state: str
    trained_weights: bool
    message: str | None = None
    load_seconds: float | None = None
    queue_depth: int = 0
    cached_images: int = 0
    load_attempts: int = Field(0, description="Model load attempts so far (transient failures are retried)")
    precision: str | None = Field(None, description="fp32 | bf16: the precision the model runs in, once loaded")
    precision_reason: str | None = Field(None, description="Why that precision (SAM3_PRECISION, or what auto found)")
