"""Messages of WebSocket /ws/video: client messages as a discriminated union on `type`, server events as models.

Validated strictly at the edge (finite coordinates, labels 0/1, frame indices >= 0, thresholds in [0, 1]);
unknown extra fields are ignored. Frame indices and coordinates are checked against the open video by the
connection. The protocol itself is described in routes/ws_video.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from ..serving.defaults import TEXT_CONFIDENCE
from .ws import protocol as ws
from .ws.protocol import CloseMessage, Coordinate, Event, Message, NewObjectMessage, ObjectId, PingMessage
from .ws.protocol import ErrorEvent, ObjectCreated, Pong, SessionClosed  # noqa: F401 - the same as /ws/realtime

FrameIndex = Annotated[int, Field(ge=0, le=10_000_000)]
Direction = Literal["forward", "backward", "both"]


class _FrameMessage(Message):
    frame: FrameIndex
    object_id: ObjectId | None = None  # None: the current object


class OpenMessage(Message):
    """Open a video: a held `video_id` (upload or job), an http(s) `video_url`, or `video_base64`."""

    type: Literal["open"]
    video_id: str | None = Field(None, max_length=128)
    video_url: str | None = Field(None, max_length=8192)
    video_base64: str | None = None
    start_frame: int = Field(0, ge=0)
    end_frame: int | None = Field(None, ge=0)
    frame_stride: int = Field(1, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_source(self) -> "OpenMessage":
        given = [name for name in ("video_id", "video_url", "video_base64") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of video_id, video_url or video_base64 (or send the file as one "
                             "binary message)")
        if self.video_id and (self.start_frame, self.end_frame, self.frame_stride) != (0, None, 1):
            raise ValueError("start_frame / end_frame / frame_stride apply when a video is decoded; a video_id "
                             "opens as it was uploaded")
        return self


class ClickMessage(_FrameMessage):
    type: Literal["click"]
    x: Coordinate
    y: Coordinate
    label: int = Field(1, ge=0, le=1, description="1 positive, 0 negative")


class BoxMessage(_FrameMessage):
    type: Literal["box"]
    x1: Coordinate
    y1: Coordinate
    x2: Coordinate
    y2: Coordinate


class TextMessage(Message):
    type: Literal["text"]
    frame: FrameIndex
    text: str = Field(min_length=1, max_length=10_000)
    confidence_threshold: float = Field(TEXT_CONFIDENCE, ge=0.0, le=1.0)


class UndoMessage(Message):
    type: Literal["undo"]
    object_id: ObjectId | None = None


class RemoveObjectMessage(Message):
    type: Literal["remove_object"]
    object_id: ObjectId


class RenameObjectMessage(Message):
    type: Literal["rename_object"]
    object_id: ObjectId
    label: str = Field(min_length=1, max_length=200)


class PropagateMessage(Message):
    type: Literal["propagate"]
    direction: Direction = "both"
    from_frame: FrameIndex | None = None


class GetFrameMessage(Message):
    type: Literal["get_frame"]
    frame: FrameIndex


class ExportMessage(Message):
    type: Literal["export"]
    annotated_video: bool = False


class CancelMessage(Message):
    type: Literal["cancel"]


class ResetMessage(Message):
    type: Literal["reset"]


ClientMessage = Annotated[
    Union[OpenMessage, ClickMessage, BoxMessage, TextMessage, UndoMessage, NewObjectMessage, RemoveObjectMessage,
          RenameObjectMessage, PropagateMessage, CancelMessage, GetFrameMessage, ResetMessage, ExportMessage,
          PingMessage, CloseMessage],
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ClientMessage)
MESSAGE_TYPES = ("open", "click", "box", "text", "undo", "new_object", "remove_object", "rename_object",
                 "propagate", "cancel", "get_frame", "reset", "export", "ping", "close")


def parse_message(text: str) -> Any:
    """Validate one text frame; raises ProtocolError with a sentence saying what to send instead."""
    return ws.parse_message(_ADAPTER, text, MESSAGE_TYPES)


# ---------------------------------------------------------------------------------------------- server events
class FrameObjectOut(BaseModel):
    object_id: int
    score: float
    box: list[float] | None  # xyxy pixels of the mask; None when the mask is empty
    mask: dict[str, Any]  # COCO RLE {"size": [h, w], "counts": str}


class SessionCreated(Event):
    type: Literal["session_created"] = "session_created"
    session_id: str
    idle_ttl_s: float
    max_frames: int


class VideoOpened(Event):
    type: Literal["video_opened"] = "video_opened"
    video_id: str
    width: int
    height: int
    fps: float
    frame_count: int
    start_frame: int
    frame_stride: int
    frame_url: str  # "/video/sources/<id>/frames/{frame}.jpg": put the frame index in place of {frame}
    object_id: int  # the current object (the next click's, unless one names another)
    latency_ms: float


class PromptResult(Event):
    type: Literal["prompt_result"] = "prompt_result"
    frame: int
    object_id: int
    points: list[list[float]]  # the object's prompt on this frame, after the change
    labels: list[int]
    box: list[float] | None
    cached: bool  # the frame's backbone output was reused (no ViT ran)
    objects: list[FrameObjectOut]  # every object's mask on this frame
    latency_ms: float


class ConceptResult(Event):
    type: Literal["concept_result"] = "concept_result"
    frame: int
    text: str
    object_ids: list[int]  # the new objects, one per instance found
    cached: bool
    objects: list[FrameObjectOut]
    latency_ms: float


class ObjectRemoved(Event):
    type: Literal["object_removed"] = "object_removed"
    object_id: int
    current_object_id: int


class ObjectRenamed(Event):
    type: Literal["object_renamed"] = "object_renamed"
    object_id: int
    label: str


class PropagationStarted(Event):
    type: Literal["propagation_started"] = "propagation_started"
    direction: Direction
    from_frame: int
    frames_total: int


class FrameResult(Event):
    type: Literal["frame_result"] = "frame_result"
    frame: int
    source: Literal["propagation", "stored"]
    objects: list[FrameObjectOut]
    frames_done: int | None = None  # propagation progress
    frames_total: int | None = None


class PropagationDone(Event):
    type: Literal["propagation_done"] = "propagation_done"
    status: Literal["finished", "cancelled", "failed"]
    frames_done: int
    frames_total: int
    fps: float
    error: str | None = None


class SessionReset(Event):
    type: Literal["session_reset"] = "session_reset"
    object_id: int


class Exported(Event):
    type: Literal["exported"] = "exported"
    job_id: str
    frames: int
    links: dict[str, str]
    latency_ms: float
