"""Request models of Roboflow's SAM 3 routes (seed 004), read from inference/core/entities/requests/.

Field names and defaults are Roboflow's; unknown fields (model_id, sam2_version_id, source, ...) are
accepted and ignored, as a drop-in must. Coordinates are pixels of the image as sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..api.schemas import MAX_LIST

MAX_VISUAL_PROMPTS = 1000  # each is one prediction; more would pass the body-size limit before the schema
MAX_CONCEPT_PROMPTS = 16  # the hosted API's SAM3_MAX_PROMPT_BATCH_SIZE: part of its wire contract
ACCEPTED_IMAGE_TYPES = ("base64", "url")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, protected_namespaces=())


class ImageInput(_Model):
    """{"type": "base64" | "url", "value": ...}; "numpy" (a pickle) and "file" (a server path) are refused."""

    type: str = Field(..., max_length=32)
    value: Any = None


class RequestBase(_Model):
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["image"]}, {"required": ["image_id"]}]})

    image: ImageInput | None = Field(None, description="The image; optional when image_id names one sent before")
    image_id: str | None = Field(None, min_length=1, max_length=256,
                                 description="Name the image for later requests (scoped to your API key)")
    api_key: str | None = Field(None, description="Read by the API-key check; otherwise ignored")


class XYWHBox(_Model):
    """Top-left corner plus size (concept prompts)."""

    x: float
    y: float
    width: float
    height: float

    def xyxy(self) -> list[float]:
        return [self.x, self.y, self.x + self.width, self.y + self.height]


class XYXYBox(_Model):
    x0: float
    y0: float
    x1: float
    y1: float

    def xyxy(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]


class ConceptPrompt(_Model):
    type: Literal["text", "visual"] | None = None
    text: str | None = Field(None, max_length=10_000)
    output_prob_thresh: float | None = Field(None, ge=0.0, le=1.0)
    boxes: list[XYWHBox | XYXYBox] | None = Field(None, max_length=MAX_LIST)
    box_labels: list[int | bool] | None = Field(None, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _check(self) -> "ConceptPrompt":
        if self.type == "visual" and not self.boxes:
            raise ValueError("a visual prompt needs at least one box")
        if self.box_labels is not None and len(self.box_labels) != len(self.boxes or []):
            raise ValueError("box_labels must have one label per box")
        return self


class ConceptSegmentRequest(RequestBase):
    prompts: list[ConceptPrompt] = Field(..., min_length=1, max_length=MAX_CONCEPT_PROMPTS)
    output_prob_thresh: float | None = Field(0.5, ge=0.0, le=1.0)
    format: Literal["polygon", "json", "rle"] | None = "polygon"
    nms_iou_threshold: float | None = Field(None, ge=0.0, le=1.0)


class CentreBox(_Model):
    """Box centre plus size (visual prompts, SAM 2's convention)."""

    x: float
    y: float
    width: float
    height: float

    def xyxy(self) -> list[float]:
        half_w, half_h = self.width / 2, self.height / 2
        return [self.x - half_w, self.y - half_h, self.x + half_w, self.y + half_h]


class Point(_Model):
    x: float
    y: float
    positive: bool


class VisualPrompt(_Model):
    box: CentreBox | None = None
    points: list[Point] | None = Field(None, max_length=MAX_LIST)


class VisualSegmentRequest(RequestBase):
    # Documented as required (minItems 1); an absent or empty list is refused by the route with its own hint.
    model_config = ConfigDict(json_schema_extra={"anyOf": RequestBase.model_config["json_schema_extra"]["anyOf"],
                                                 "required": ["prompts"]})

    prompts: list[VisualPrompt] = Field(default_factory=list, max_length=MAX_VISUAL_PROMPTS,
                                        json_schema_extra={"minItems": 1})
    multimask_output: bool = True
    format: Literal["json", "polygon", "rle"] | None = "json"

    @field_validator("prompts", mode="before")
    @classmethod
    def _flatten(cls, value):
        """{"prompts": [...]}, a list, one prompt dict or null, as Roboflow accepts."""
        if value is None:
            return []
        if isinstance(value, dict) and "prompts" in value:
            return value["prompts"] or []
        if isinstance(value, dict):
            return [value]
        return value


class EmbedImageRequest(RequestBase):
    pass
