"""Request and response models of the batch labeling job API (/batch/jobs)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .openapi_limits import setting_cap

MAX_LIST = 1_000_000  # hard cap; /openapi.json states SAM3_BATCH_MAX_IMAGES / SAM3_MAX_PROMPTS (setting_cap)


class BatchJobParams(BaseModel):
    """What to ask every image; JSON bodies add image_urls or image_dir, multipart forms `images` or `archive`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"allOf": [{"oneOf": [
        {"required": ["texts"]}, {"required": ["mode"]}, {"required": ["annotations"]}]}]})

    texts: list[Annotated[str, Field(pattern=r"\S")]] | None = Field(None, min_length=1, max_length=MAX_LIST,
                                    description="Concepts, each a category: every instance of each, e.g. [\"car\"].",
                                    json_schema_extra=setting_cap("max_prompts"))
    mode: Literal["auto"] | None = Field(None, description="\"auto\": segment everything, one category \"object\".")
    annotations: dict[str, Any] | None = Field(
        None, description="A COCO detection JSON (images, categories, annotations with bbox): each box becomes a "
                          "mask of its category; images are matched by file_name.")
    confidence_threshold: float | None = Field(None, ge=0.0, le=1.0,
                                               description="Score an instance needs (default: as /segment/*).")
    mask_threshold: float | None = Field(None, ge=0.0, le=1.0, description="Probability above which a pixel is in "
                                                                           "a mask (default 0.5).")
    max_masks: int | None = Field(None, ge=1, le=100_000, description="Most instances kept per image, best first.")
    min_area: int = Field(0, ge=0, description="Instances with fewer mask pixels are dropped.")

    @field_validator("texts", "annotations", mode="before")
    @classmethod
    def _json_in_forms(cls, value: Any) -> Any:
        """Multipart forms carry lists and objects as JSON strings ('["cat"]', '{"images": ...}')."""
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg}") from exc
        return value


class BatchJobJson(BatchJobParams):
    model_config = ConfigDict(json_schema_extra={"allOf": [
        *BatchJobParams.model_config["json_schema_extra"]["allOf"],
        {"oneOf": [{"required": ["image_urls"]}, {"required": ["image_dir"]}]}]})

    image_urls: list[str] | None = Field(None, min_length=1, max_length=MAX_LIST,
                                         description="http(s) URLs of the images.",
                                         json_schema_extra=setting_cap("batch_max_images"))
    image_dir: str | None = Field(None, max_length=4096, description="A folder below SAM3_IMAGE_ROOT, searched "
                                                                     "recursively; relative paths become file_name.")


class BatchProgress(BaseModel):
    images_done: int
    images_total: int
    images_failed: int
    images_per_s: float
    skipped: int = Field(0, description="Files of the archive or folder that are not images (listed in the job).")


class BatchJobOut(BaseModel):
    job_id: str
    status: str = Field(description="queued | running | succeeded | failed | cancelled")
    progress: BatchProgress
    categories: list[str]
    error: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    links: dict[str, str]
