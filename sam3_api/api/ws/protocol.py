"""The base protocol every socket shares: message and event bases, the error event, and how a message that
fails validation is described. /ws/realtime (api/ws_protocol.py) and /ws/video (api/ws_video_protocol.py)
define their own messages on these bases; neither imports the other's private names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..errors import describe_errors

Coordinate = Annotated[float, Field(ge=-1e9, le=1e9)]  # finite; the image bounds are checked per session
ObjectId = Annotated[int, Field(ge=1, le=1_000_000)]


class ProtocolError(Exception):
    """A message the server cannot act on; it becomes an error event and the socket stays open."""

    def __init__(self, message: str, code: str = "invalid_message"):
        super().__init__(message)
        self.message = message
        self.code = code


class Message(BaseModel):
    """Base of client messages: strict values, unknown extra fields ignored (older and newer clients parse)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, str_max_length=64 * 1024**2)


# The messages and events both sockets speak alike.
class NewObjectMessage(Message):
    type: Literal["new_object"]


class PingMessage(Message):
    type: Literal["ping"]


class CloseMessage(Message):
    type: Literal["close"]


class Event(BaseModel):
    """Base of server events: one documented shape each; fields are only ever added."""

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Pong(Event):
    type: Literal["pong"] = "pong"


class ObjectCreated(Event):
    type: Literal["object_created"] = "object_created"
    object_id: int


class SessionClosed(Event):
    type: Literal["session_closed"] = "session_closed"
    reason: str


class ErrorEvent(Event):
    type: Literal["error"] = "error"
    message: str
    code: str
    field: str | None = None


def parse_message(adapter: TypeAdapter, text: str | bytes, message_types: tuple[str, ...]) -> Any:
    """Validate one frame against a socket's union of messages; ProtocolError says what to send instead."""
    try:
        return adapter.validate_json(text)
    except ValidationError as exc:
        raise describe_invalid(exc, message_types) from None


def describe_invalid(exc: ValidationError, message_types: tuple[str, ...]) -> ProtocolError:
    """A validation error as one sentence, with the code a client can act on."""
    errors = exc.errors(include_url=False)
    kinds = {error["type"] for error in errors}
    if "json_invalid" in kinds or "json_type" in kinds:
        return ProtocolError("message is not valid JSON: send one JSON object per text frame", "invalid_json")
    if "union_tag_not_found" in kinds:
        return ProtocolError(f"message has no \"type\"; use one of {', '.join(message_types)}", "unknown_type")
    if "union_tag_invalid" in kinds:
        tag = str(errors[0].get("ctx", {}).get("tag", ""))[:40]
        return ProtocolError(f"unknown message type {tag!r}; use one of {', '.join(message_types)}", "unknown_type")
    return ProtocolError(describe_errors(errors, skip_first=True, whole="message"))
