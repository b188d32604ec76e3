"""State of one /ws/video session: the open video, its objects and their prompts by frame (with undo).

A session holds one video at a time: its frames (an upload or a job's frames, shared; or a private copy that
is deleted with the session), the engine's InteractiveVideo over them, and, per object, the points / box of
each frame it was prompted on. The engine replaces an object's prompt on a frame with what it is given, so
every click sends the object's whole prompt for that frame. Opening a video: ws_video_open.py; the registry
of sessions: ws/registry.py. Event-loop thread only; model work goes through the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine import prompts
from ..errors import InvalidPrompt
from ..jobs.sources import VideoSource
from ..media.video import FrameStore
from .ws.history import PromptHistory
from .ws.protocol import ProtocolError


@dataclass
class FramePrompt:
    """An object's prompt on one frame: points with labels and at most one box."""

    points: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: list[float] | None = None

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None


@dataclass
class ObjectBook:
    """One object: its label, its prompts by frame, and the order they came in (undo)."""

    object_id: int
    label: str
    frames: dict[int, FramePrompt] = field(default_factory=dict)
    history: PromptHistory = field(default_factory=PromptHistory)  # where = the frame

    def prompt(self, frame: int) -> FramePrompt:
        return self.frames.setdefault(frame, FramePrompt())

    def undo(self) -> tuple[int, FramePrompt] | None:
        """Take back the last point or box; the frame it was on and what is left there (None: nothing to undo)."""
        entry = self.history.pop()
        if entry is None:
            return None
        frame, prompt = entry.where, self.prompt(entry.where)
        if entry.kind == "point":
            prompt.points.pop()
            prompt.labels.pop()
        else:
            prompt.box = entry.replaced_box
        if prompt.empty:
            del self.frames[frame]
        return frame, prompt


class VideoSession:
    """What one socket has open: the video and the objects."""

    def __init__(self, session_id: str, max_objects: int, max_points: int):
        self.session_id = session_id
        self.max_objects, self.max_points = max_objects, max_points
        self.video = None  # engine.video.interactive.InteractiveVideo
        self.video_id: str | None = None
        self.frames: FrameStore | None = None
        self.source: VideoSource | None = None  # None when the frames are a job's (opened by this session)
        self.objects: dict[int, ObjectBook] = {}
        self.current = 1

    # ------------------------------------------------------------------------------------------ the video
    def require_video(self):
        if self.video is None:
            raise ProtocolError('no video yet: send {"type": "open", "video_id": "..."} (or video_url, '
                                "video_base64, or the file as a binary message) first", "no_video")
        return self.video

    def check_frame(self, frame: int, field: str = "frame") -> int:
        count = self.require_video().frame_count
        if not 0 <= frame < count:
            raise InvalidPrompt(f"{field} {frame} is past the end: the video has frames 0 to {count - 1}", field=field)
        return frame

    def attach(self, video, video_id: str, frames: FrameStore, source: VideoSource | None) -> None:
        """The newly opened video; objects start over with object 1 current."""
        self.video, self.video_id, self.frames, self.source = video, video_id, frames, source
        self.clear_objects()

    def detach(self, sources) -> None:
        """Let go of the video: a private copy is deleted, a job's frames are closed, an upload stays."""
        if self.source is not None:
            sources.release(self.source)
        elif self.frames is not None:
            self.frames.close()
        self.video = self.video_id = self.frames = self.source = None
        self.objects.clear()

    def clear_objects(self) -> None:
        self.objects.clear()
        self.current = 1

    # ------------------------------------------------------------------------------------------ objects
    def object(self, object_id: int | None) -> ObjectBook:
        """The named object (created on first use; it becomes current) or the current one."""
        self.require_video()
        object_id = self.current if object_id is None else object_id
        if object_id not in self.objects:
            if len(self.tracked_ids() | {object_id}) > self.max_objects:
                raise ProtocolError(f"this session already has {self.max_objects} objects, the limit "
                                    "(SAM3_VIDEO_MAX_OBJECTS); remove one first", "too_many_objects")
            self.objects[object_id] = ObjectBook(object_id, f"object {object_id}")
        self.current = object_id
        return self.objects[object_id]

    def new_object_id(self) -> int:
        """A fresh id (one past the highest in use); it becomes current and is created by its first prompt."""
        self.require_video()
        if len(self.tracked_ids()) >= self.max_objects:
            raise ProtocolError(f"this session already has {self.max_objects} objects, the limit "
                                "(SAM3_VIDEO_MAX_OBJECTS); remove one first", "too_many_objects")
        self.current = max([*self.objects, *self.video.objects, self.current]) + 1
        return self.current

    def tracked_ids(self) -> set[int]:
        """Objects with at least one prompt (the engine's), plus those this session has prompted."""
        return set(self.video.objects) | {i for i, book in self.objects.items() if book.frames}

    def known(self, object_id: int) -> ObjectBook:
        if object_id not in self.objects:
            known = ", ".join(str(key) for key in sorted(self.objects)) or "none"
            raise ProtocolError(f"unknown object_id {object_id}: the objects are {known}", "unknown_object")
        return self.objects[object_id]

    def add_point(self, book: ObjectBook, frame: int, x: float, y: float, label: int) -> FramePrompt:
        width, height = self.video.width, self.video.height
        point = prompts.check_points([[x, y]], width, height, field="click")[0]
        prompt = book.prompt(frame)
        if len(prompt.points) >= self.max_points:
            raise InvalidPrompt(f"object {book.object_id} already has {len(prompt.points)} points on frame {frame}, "
                                "the limit (SAM3_MAX_PROMPTS); undo first", field="click")
        prompt.points.append(point)
        prompt.labels.append(label)
        book.history.point(frame)
        return prompt

    def set_box(self, book: ObjectBook, frame: int, box: list[float]) -> FramePrompt:
        box = prompts.check_box(box, self.video.width, self.video.height)
        prompt = book.prompt(frame)
        book.history.box(prompt.box, frame)
        prompt.box = box
        return prompt

    def forget(self, object_id: int) -> None:
        """The object is gone from the engine too: drop it, and make the lowest remaining id current."""
        self.objects.pop(object_id, None)
        if self.current == object_id:
            self.current = min(self.objects, default=max([*self.video.objects, 0]) + 1)

    def add_found(self, object_ids: list[int], text: str) -> None:
        for object_id in object_ids:
            self.objects[object_id] = ObjectBook(object_id, text)

    # ------------------------------------------------------------------------------------------ export
    def export_objects(self) -> list[dict]:
        """The job's objects: [{object_id, prompt (the label), kind, frame_index (first prompted frame)}]."""
        info, entries = self.frames.info, []
        for object_id, state in sorted(self.video.objects.items()):
            book = self.objects.get(object_id)
            frames = sorted({*state.prompts, *state.masks})
            entries.append({"object_id": object_id, "prompt": book.label if book else state.label,
                            "kind": "text" if state.masks and not state.prompts else "object",
                            "frame_index": info.source_index(frames[0]) if frames else None})
        return entries

    def export_request(self) -> dict:
        """What the job was made from: this session's video and every prompt (original frame indices)."""
        info = self.frames.info
        prompted = [{"object_id": book.object_id, "label": book.label,
                     "frames": [{"frame_index": info.source_index(frame), "points": p.points, "labels": p.labels,
                                 "box": p.box} for frame, p in sorted(book.frames.items())]}
                    for book in self.objects.values() if book.frames]
        return {"source": "interactive", "video_id": self.video_id, "prompts": prompted}
