"""Messages of WebSocket /ws/realtime: client messages as a discriminated union on `type`, server events.

Client messages are validated strictly at the edge (finite coordinates, labels 0/1, thresholds in [0, 1]) but
unknown extra fields are ignored, so seed 000's clients and newer clients both parse. Server events are
models too, so every event has one documented shape; fields are only ever added, never renamed.
The protocol itself is described in routes/ws.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, model_validator

from ..serving.defaults import TEXT_CONFIDENCE
from .ws import protocol as ws
from .ws.protocol import (CloseMessage, Coordinate, ErrorEvent, Event, Message, NewObjectMessage,  # noqa: F401
                          ObjectCreated, ObjectId, PingMessage, Pong, ProtocolError, SessionClosed)

MaskFormat = Literal["png", "rle"]
__all__ = ["Coordinate", "ErrorEvent", "ObjectId", "Pong", "ProtocolError", "SessionClosed"]  # the shared base
class _ObjectMessage(Message):
    """A prompt or command aimed at one object: the current object when object_id is omitted."""

    object_id: ObjectId | None = None


class InitMessage(Message):
    """Load an image: base64 / data URL (`image`), an http(s) URL (`image_url`) or a cached `image_id`."""

    type: Literal["init"]
    image: str | None = None
    image_url: str | None = Field(None, max_length=8192)
    image_id: str | None = Field(None, max_length=128)
    mask_format: MaskFormat | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "InitMessage":
        given = [name for name in ("image", "image_url", "image_id") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of image (base64 or data URL), image_url or image_id")
        return self


class ClickMessage(_ObjectMessage):
    type: Literal["click"]
    x: Coordinate
    y: Coordinate
    label: int = Field(1, ge=0, le=1, description="1 foreground (positive), 0 background (negative)")


class BoxMessage(_ObjectMessage):
    type: Literal["box"]
    x1: Coordinate
    y1: Coordinate
    x2: Coordinate
    y2: Coordinate


class SegmentMessage(_ObjectMessage):
    type: Literal["segment"]


class TextMessage(Message):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=10_000)
    confidence_threshold: float = Field(TEXT_CONFIDENCE, ge=0.0, le=1.0)
    max_masks: int | None = Field(None, ge=1, le=1000)


class UndoMessage(_ObjectMessage):
    type: Literal["undo"]


class ResetMessage(_ObjectMessage):
    type: Literal["reset"]


class SetOptionsMessage(Message):
    type: Literal["set_options"]
    mask_format: MaskFormat | None = None
    mask_threshold: float | None = Field(None, ge=0.0, le=1.0)


ClientMessage = Annotated[
    Union[
        InitMessage, ClickMessage, BoxMessage, SegmentMessage, TextMessage, NewObjectMessage, UndoMessage,
        ResetMessage, SetOptionsMessage, PingMessage, CloseMessage,
    ],
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ClientMessage)
MESSAGE_TYPES = ("init", "click", "box", "segment", "text", "new_object", "undo", "reset", "set_options",
                 "ping", "close")


def parse_message(text: str | bytes) -> Any:
    """Validate one frame; raises ProtocolError with a sentence saying what to send instead."""
    return ws.parse_message(_ADAPTER, text, MESSAGE_TYPES)


# ---------------------------------------------------------------------------------------------- server events
class SessionCreated(Event):
    type: Literal["session_created"] = "session_created"
    session_id: str
    idle_ttl_s: float


class ImageLoaded(Event):
    type: Literal["image_loaded"] = "image_loaded"
    width: int
    height: int
    image_id: str
    object_id: int
    latency_ms: float


class PointAdded(Event):
    type: Literal["point_added"] = "point_added"
    x: float
    y: float
    label: int
    total_points: int
    object_id: int


class BoxAdded(Event):
    type: Literal["box_added"] = "box_added"
    x1: float
    y1: float
    x2: float
    y2: float
    object_id: int


class SegmentationResult(Event):
    type: Literal["segmentation_result"] = "segmentation_result"
    mask: str | dict[str, Any]
    score: float
    num_points: int
    box: list[float] | None  # xyxy of the mask; None when the mask is empty
    area: int
    object_id: int
    image_id: str
    mask_format: MaskFormat
    latency_ms: float


class TextResult(Event):
    type: Literal["text_result"] = "text_result"
    text: str
    num_masks: int
    masks: list[str | dict[str, Any]]
    scores: list[float]
    boxes: list[list[float]]
    image_id: str
    mask_format: MaskFormat
    latency_ms: float


class PromptRemoved(Event):
    type: Literal["prompt_removed"] = "prompt_removed"
    object_id: int
    kind: Literal["point", "box"]
    total_points: int
    has_box: bool


class PointsCleared(Event):
    type: Literal["points_cleared"] = "points_cleared"
    object_id: int | None  # None: every object was cleared
    current_object_id: int


class OptionsSet(Event):
    type: Literal["options_set"] = "options_set"
    mask_format: MaskFormat
    mask_threshold: float



