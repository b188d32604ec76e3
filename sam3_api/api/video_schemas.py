"""Request and response models of the video job API (/video/jobs). Coordinates are original-video pixels;
frame indices count the frames of the original video (before start_frame / frame_stride)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..serving.defaults import MASK_THRESHOLD
from .openapi_limits import setting_cap

MAX_LIST = 10_000  # hard cap; /openapi.json states SAM3_VIDEO_MAX_OBJECTS / SAM3_MAX_PROMPTS (setting_cap)


class VideoObject(BaseModel):
    """One object to track, prompted on one frame with a box and/or points."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    object_id: int | None = Field(None, ge=1, le=1_000_000, description="Your id for it (default: 1, 2, ...).")
    frame_index: int = Field(..., ge=0, description="Frame of the original video the prompt is on.")
    box: list[float] | None = Field(None, min_length=4, max_length=4, description="[x1, y1, x2, y2] pixels.")
    points: list[list[float]] | None = Field(None, max_length=MAX_LIST, description="[[x, y], ...] pixels.",
                                             json_schema_extra=setting_cap("max_prompts"))
    labels: list[int] | None = Field(None, max_length=MAX_LIST, description="1 positive, 0 negative (default 1).",
                                     json_schema_extra=setting_cap("max_prompts"))


class VideoJobParams(BaseModel):
    """What to track and how; JSON bodies add video_base64 or video_url, multipart forms a `video` file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    texts: list[str] = Field(default_factory=list, max_length=MAX_LIST,
                             description="Concepts: every instance in every frame, e.g. [\"person\"].",
                             json_schema_extra=setting_cap("max_prompts"))
    objects: list[VideoObject] = Field(default_factory=list, max_length=MAX_LIST,
                                       description="Objects picked with a box and/or points on any frame.",
                                       json_schema_extra=setting_cap("video_max_objects"))
    direction: Literal["forward", "backward", "both"] = Field(
        "both", description="Propagate picked objects forward, backward or both ways from their frames.")
    start_frame: int = Field(0, ge=0, description="First frame to process.")
    end_frame: int | None = Field(None, ge=0, description="Last frame to process (inclusive; default: the end).")
    frame_stride: int = Field(1, ge=1, le=10_000, description="Process every n-th frame.")
    mask_format: Literal["rle", "polygon"] = Field("rle", description="COCO RLE or polygon rings per mask.")
    annotated_video: bool = Field(False, description="Also render an H.264 MP4 with the masks blended in.")
    confidence_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Text: detection score threshold (default 0.5); picked objects: "
                                          "minimum visibility score for a frame to report the object (default 0).")
    mask_threshold: float = Field(MASK_THRESHOLD, ge=0.0, le=1.0,
                                  description="Probability above which a pixel is in a mask.")

    @field_validator("texts", "objects", mode="before")
    @classmethod
    def _json_in_forms(cls, value: Any) -> Any:
        """Multipart forms carry lists as JSON strings ('["cat"]', '[{"frame_index": 0, ...}]')."""
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) and value[0].lstrip()[:1] in "[{":
            value = value[0]
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg}") from exc
        return value


class VideoJobJson(VideoJobParams):
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["video_base64"]}, {"required": ["video_url"]}]})

    video_base64: str | None = Field(None, json_schema_extra={"minLength": 1},
                                     description="The video file, base64 (a data: URL prefix is accepted).")
    video_url: str | None = Field(None, max_length=8192, description="http(s) URL of the video on a public host.")


class VideoInfoOut(BaseModel):
    width: int
    height: int
    fps: float
    frame_count: int = Field(description="Frames processed (after start_frame, end_frame and frame_stride).")
    start_frame: int
    frame_stride: int


class VideoJobOut(BaseModel):
    job_id: str
    status: str = Field(description="queued | running | succeeded | failed | cancelled | interrupted")
    progress: dict[str, Any] = Field(description="{frames_done, frames_total, fps}")
    video: VideoInfoOut | None = None
    objects: list[dict[str, Any]] = Field(description="[{object_id, prompt, kind, frame_index}]")
    error: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    links: dict[str, str]


class VideoUploadParams(BaseModel):
    """Which frames of an uploaded video to keep (frame indices of the original video)."""

    model_config = ConfigDict(extra="forbid")

    start_frame: int = Field(0, ge=0, description="First frame to keep.")
    end_frame: int | None = Field(None, ge=0, description="Last frame to keep (inclusive; default: the end).")
    frame_stride: int = Field(1, ge=1, le=10_000, description="Keep every n-th frame.")


class VideoUploadJson(VideoUploadParams):
    video_base64: str | None = Field(None, json_schema_extra={"minLength": 1},
                                     description="The video file, base64 (a data: URL prefix is accepted).")
    video_url: str | None = Field(None, max_length=8192, description="http(s) URL of the video on a public host.")


class VideoSourceOut(BaseModel):
    """A decoded video the server holds for interactive sessions (/ws/video opens it by video_id)."""

    video_id: str
    kind: str = Field(description="upload | session (a session's private copy) | job (a video job's frames)")
    width: int
    height: int
    fps: float
    frame_count: int = Field(description="Frames kept (after start_frame, end_frame and frame_stride).")
    start_frame: int
    frame_stride: int
    expires_in_s: float | None = Field(None, description="Uploads: seconds left unless used again.")
    links: dict[str, str]
