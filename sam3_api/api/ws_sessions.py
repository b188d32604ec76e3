"""State of /ws/realtime sessions: one Session per socket, a registry that bounds them, and the image map.

Bounded, explicit state: at most `ws_max_sessions` sessions at once; a session lives exactly as long as its
socket (freed in the connection's `finally`). The image map (image_id -> PreparedImage) holds the images of
live sessions plus a few recently loaded ones, so a client that reconnects can re-init by `image_id`
without uploading again. The map keeps pixels only; embeddings live in the engine's own bounded cache.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..engine.types import PreparedImage
from ..serving.defaults import MASK_THRESHOLD
from .ws.history import PromptHistory
from .ws.protocol import ProtocolError
from .ws.registry import SessionRegistry
from .ws_protocol import MaskFormat

RECENT_IMAGES = 8  # images kept for image_id re-use after their session ended


@dataclass
class ObjectPrompts:
    """The prompts of one object: points with labels, at most one box, and the order they came in (undo)."""

    object_id: int
    points: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: list[float] | None = None
    history: PromptHistory = field(default_factory=PromptHistory)  # for undo

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

    def add_point(self, x: float, y: float, label: int) -> None:
        self.points.append([x, y])
        self.labels.append(label)
        self.history.point()

    def set_box(self, box: list[float]) -> None:
        self.history.box(self.box)
        self.box = box

    def undo(self) -> str | None:
        """Remove the last point or box; returns which kind was removed (None: nothing to undo)."""
        entry = self.history.pop()
        if entry is None:
            return None
        if entry.kind == "point":
            self.points.pop()
            self.labels.pop()
        else:
            self.box = entry.replaced_box
        return entry.kind


@dataclass
class Session:
    """Everything one socket has told the server: image, objects and output options."""

    session_id: str
    image: PreparedImage | None = None
    objects: dict[int, ObjectPrompts] = field(default_factory=dict)
    current: int = 1
    next_object_id: int = 1
    mask_format: MaskFormat = "png"
    mask_threshold: float = MASK_THRESHOLD

    def load(self, image: PreparedImage) -> None:
        """A new image starts over with one empty object."""
        self.image = image
        self.clear_objects()

    def clear_objects(self) -> None:
        self.objects.clear()
        self.next_object_id = 1
        self.new_object()

    def new_object(self) -> ObjectPrompts:
        prompts = ObjectPrompts(self.next_object_id)
        self.objects[prompts.object_id] = prompts
        self.current = prompts.object_id
        self.next_object_id += 1
        return prompts

    def require_image(self) -> PreparedImage:
        if self.image is None:
            raise ProtocolError('no image yet: send {"type": "init", "image": "<base64>"} first', "no_image")
        return self.image

    def object(self, object_id: int | None) -> ObjectPrompts:
        """The named object (which becomes current) or the current one."""
        self.require_image()
        if object_id is None:
            return self.objects[self.current]
        if object_id not in self.objects:
            known = ", ".join(str(key) for key in self.objects)
            raise ProtocolError(
                f"unknown object_id {object_id}: known objects are {known}; send {{\"type\": \"new_object\"}} "
                "to start another", "unknown_object")
        self.current = object_id
        return self.objects[object_id]


class RealtimeRegistry(SessionRegistry):
    """/ws/realtime's live sessions, plus the image_id -> PreparedImage map of their and recent images."""

    def __init__(self, max_sessions: int, recent_images: int = RECENT_IMAGES):
        super().__init__(max_sessions, name="WebSocket", setting="SAM3_WS_MAX_SESSIONS")
        self._recent: OrderedDict[str, PreparedImage] = OrderedDict()
        self._recent_limit = max(1, min(recent_images, max_sessions))

    def remember_image(self, image: PreparedImage) -> None:
        self._recent[image.key] = image
        self._recent.move_to_end(image.key)
        while len(self._recent) > self._recent_limit:
            self._recent.popitem(last=False)

    def find_image(self, image_id: str) -> PreparedImage | None:
        """An image a live session holds, or one of the recently loaded ones."""
        for connection in self.connections.values():
            image = connection.session.image
            if image is not None and image.key == image_id:
                return image
        return self._recent.get(image_id)
