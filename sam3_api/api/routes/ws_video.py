"""WebSocket /ws/video: pick objects on any frame of a video, watch them tracked, correct, re-track, export.

Client -> server (frames are indices 0 .. frame_count - 1 of the opened video; x, y are its pixels):
  {"type": "open", "video_id": "..."}     an upload (POST /video/uploads) or a video job's id; or
    "video_url": "https://..." / "video_base64": "..." (+ start_frame, end_frame, frame_stride), or the file
    itself as one binary message: decoded into a private copy, deleted with the session
  {"type": "click", "frame": 0, "x": 120, "y": 80, "label": 1, "object_id"?}   adds a point (1 positive, 0 negative)
  {"type": "box", "frame": 0, "x1", "y1", "x2", "y2", "object_id"?}            sets the object's box on that frame
  {"type": "undo", "object_id"?}            takes back the object's last point or box (on whatever frame); an object a
                                            concept found falls back to the mask it was found with
  {"type": "text", "frame": 0, "text": "cat", "confidence_threshold"?: 0.5}    every instance becomes an object
  {"type": "new_object"}                    a fresh object_id, current from now on
  {"type": "remove_object", "object_id": 2} / {"type": "rename_object", "object_id": 2, "label": "dog"}
  {"type": "propagate", "direction"?: "both" | "forward" | "backward", "from_frame"?: k}
  {"type": "cancel"}                        stops the running propagation before its next frame step
  {"type": "get_frame", "frame": 20}        that frame's latest masks (no model work)
  {"type": "reset"}                         forget every object (the video stays open)
  {"type": "export", "annotated_video"?: false}   save the results as a video job
  {"type": "ping"}, {"type": "close"}
Server -> client:
  {"type": "session_created", "session_id", "idle_ttl_s", "max_frames"}         right after the socket opens
  {"type": "video_opened", "video_id", "width", "height", "fps", "frame_count", "start_frame", "frame_stride",
   "frame_url": "/video/sources/<id>/frames/{frame}.jpg", "object_id", "latency_ms"}
  {"type": "prompt_result", "frame", "object_id", "points", "labels", "box", "cached", "objects", "latency_ms"}
    answers click, box and undo: the object's prompt on that frame now, and EVERY object's mask on that frame
    (objects: [{"object_id", "score", "box", "mask": COCO RLE {"size": [h, w], "counts"}}]); cached: the
    frame's backbone output was reused (a second click on a frame runs no ViT)
  {"type": "concept_result", "frame", "text", "object_ids", "cached", "objects", "latency_ms"}
  {"type": "object_created", "object_id"}; {"type": "object_removed", "object_id", "current_object_id"};
  {"type": "object_renamed", "object_id", "label"}; {"type": "session_reset", "object_id"}
  {"type": "propagation_started", "direction", "from_frame", "frames_total"}, then per finished frame
  {"type": "frame_result", "frame", "source": "propagation", "objects", "frames_done", "frames_total"}, then
  {"type": "propagation_done", "status": "finished" | "cancelled" | "failed", "frames_done", "frames_total",
   "fps", "error"}; get_frame answers a frame_result with "source": "stored"
  {"type": "exported", "job_id", "frames", "links", "latency_ms"}: /video/jobs/{job_id} (+ /frames, /video.mp4)
  {"type": "pong"}, {"type": "session_closed", "reason"}, {"type": "error", "message", "code", "field"}
Objects: a click or box without object_id goes to the current object (object 1 after open); an object_id not
seen before creates that object. Every prompted frame conditions the tracker; propagate starts by default at
the earliest frame prompted since the last propagation, so a correction on frame k re-tracks from k and
frames it cannot change are not recomputed (`forward`: frames before k are kept as they are).
Messages keep being read while a propagation runs: cancel, get_frame, ping and close are answered at once;
anything that changes the objects, open, export and a second propagate get error "propagation_running".
Errors never close the socket: invalid_json, unknown_type, invalid_message, no_video (a prompt before open),
invalid_prompt (a frame past the end, a click or box outside the frame, an empty text), unknown_object,
nothing_to_undo, too_many_objects (SAM3_VIDEO_MAX_OBJECTS), no_objects (propagate before any prompt),
not_propagating (cancel with nothing running), nothing_to_export, propagation_running, not_found (an unknown
video_id), invalid_video, video_too_large (incl. SAM3_WS_VIDEO_MAX_FRAMES), url_not_allowed, url_fetch_failed,
model_not_ready, engine_busy, conflict (export after the opened job was deleted), internal_error. Beyond SAM3_WS_VIDEO_MAX_SESSIONS a new socket gets too_many_sessions and close
code 1013; a socket idle for SAM3_WS_IDLE_TTL_S (and not propagating) is closed; a closed socket frees its
session: the tracker state, the masks and a private copy of the video.
"""

from __future__ import annotations

import copy
import uuid

from fastapi import APIRouter, WebSocket

from ...engine import prompts
from ...jobs.export import export_job, session_lines
from ...jobs.video_io import StoreFrames
from ...serving import interactive_video as interactive
from .. import ws_video_protocol as proto
from ..video_stream import job_out
from ..ws.loop import SocketLoop, ms_since
from ..ws.protocol import ProtocolError
from ..ws_video_open import open_held, open_private
from ..ws_video_state import FramePrompt, ObjectBook, VideoSession
from ..ws_video_tracking import Propagator, objects_out
from ..deps import ApiKeyDep, ServicesDep
from ..services import Services
from .video_sources import FRAME_URL

router = APIRouter()
STOP_WAIT_S = 120.0  # a closing session waits this long for its propagation's current frame step


class VideoConnection(SocketLoop):
    """One /ws/video socket and its session."""

    def __init__(self, websocket: WebSocket, services: Services, owner: str | None):
        self.settings, self.engine = services.settings, services.engine
        self.sources, self.jobs, self.owner = services.video_sources, services.video_jobs, owner
        super().__init__(websocket, self.settings.ws_idle_ttl_s, services.idle_sleep)
        self.session = VideoSession(uuid.uuid4().hex, self.settings.video_max_objects, self.settings.max_prompts)
        self.registry = services.ws_video_sessions
        self.propagator = Propagator(self.engine, self.send)

    def created_event(self) -> proto.SessionCreated:
        return proto.SessionCreated(session_id=self.session.session_id, idle_ttl_s=self.settings.ws_idle_ttl_s,
                                    max_frames=self.settings.ws_video_max_frames)

    def parse(self, text: str):
        return proto.parse_message(text)

    @property
    def busy(self) -> bool:
        return self.propagator.running

    async def cleanup(self) -> None:
        """The socket is gone: stop tracking, then free the video, its tracker state and a private copy."""
        if not await self.propagator.cancel(timeout=STOP_WAIT_S):
            # A step stuck that long (a busy model thread): stop waiting. If it still runs, it reads frames
            # from an open file handle; whatever it returns goes to nobody.
            self.propagator.task.cancel()
        self.session.detach(self.sources)

    def _idle_video(self):
        """The open video, when nothing is propagating (changes wait for the propagation's end or a cancel)."""
        video = self.session.require_video()
        if self.propagator.running:
            raise ProtocolError("a propagation is running: send cancel first, or wait for propagation_done",
                                "propagation_running")
        return video

    # ------------------------------------------------------------------------------------------ opening
    async def on_open(self, message: proto.OpenMessage, started: float) -> None:
        await self._open(message, message.video_id, started)

    async def on_binary(self, data: bytes, started: float) -> None:
        """The video file itself, as one binary message (opened as a private copy, every frame)."""
        await self._open(data, None, started)

    async def _open(self, payload: proto.OpenMessage | bytes, video_id: str | None, started: float) -> None:
        if self.propagator.running:
            raise ProtocolError("a propagation is running: send cancel first", "propagation_running")
        sources, owner = self.sources, self.owner
        if video_id:
            frames, source = await open_held(video_id, sources, self.jobs, self.settings, owner)
        else:
            source = await open_private(payload, sources, self.settings, self.jobs.decoding, owner)
            frames, video_id = source.frames, source.video_id
        try:
            video = interactive.open_video(self.engine, StoreFrames(frames))
        except BaseException:
            sources.release(source) if source is not None else frames.close()
            raise
        self.session.detach(sources)  # the previous video, only once the new one is open
        self.session.attach(video, video_id, frames, source)
        info = frames.info
        await self.send(proto.VideoOpened(
            video_id=video_id, width=info.width, height=info.height, fps=info.fps, frame_count=info.frame_count,
            start_frame=info.start_frame, frame_stride=info.frame_stride,
            frame_url=FRAME_URL.format(video_id=video_id), object_id=self.session.current,
            latency_ms=ms_since(started)))

    # ------------------------------------------------------------------------------------------ prompts
    async def on_click(self, message: proto.ClickMessage, started: float) -> None:
        self._idle_video()
        frame = self.session.check_frame(message.frame)
        book = self.session.object(message.object_id)
        await self._change(book, frame, started,
                           lambda: self.session.add_point(book, frame, message.x, message.y, message.label))

    async def on_box(self, message: proto.BoxMessage, started: float) -> None:
        self._idle_video()
        frame = self.session.check_frame(message.frame)
        book = self.session.object(message.object_id)
        box = [message.x1, message.y1, message.x2, message.y2]
        await self._change(book, frame, started, lambda: self.session.set_box(book, frame, box))

    async def on_undo(self, message: proto.UndoMessage, started: float) -> None:
        self._idle_video()
        object_id = self.session.current if message.object_id is None else message.object_id
        # The current object may not exist yet (no prompt so far): nothing to undo rather than unknown.
        book = self.session.objects.get(object_id) if object_id == self.session.current else \
            self.session.known(object_id)
        if book is None or not book.history:
            raise ProtocolError(f"object {object_id} has no point or box to undo", "nothing_to_undo")
        frame = book.history.last().where
        await self._change(book, frame, started, book.undo)

    async def _change(self, book: ObjectBook, frame: int, started: float, change) -> None:
        """Apply a prompt change to the book, then to the engine; the book is restored if the engine fails."""
        saved = copy.deepcopy((book.frames, book.history))
        change()
        video, prompt = self.session.video, book.frames.get(frame)
        runs = video.backbone_runs
        try:
            result = await interactive.apply_prompt(self.engine, video, book.object_id, frame, prompt)
        except BaseException:
            book.frames, book.history = saved
            raise
        prompt = prompt or FramePrompt()
        await self.send(proto.PromptResult(
            frame=frame, object_id=book.object_id, points=prompt.points, labels=prompt.labels, box=prompt.box,
            cached=video.backbone_runs == runs, objects=objects_out(result), latency_ms=ms_since(started)))
        if book.object_id not in video.objects and not book.frames:
            self.session.forget(book.object_id)
            await self.send(proto.ObjectRemoved(object_id=book.object_id, current_object_id=self.session.current))

    async def on_text(self, message: proto.TextMessage, started: float) -> None:
        video = self._idle_video()
        frame = self.session.check_frame(message.frame)
        text = prompts.check_text(message.text, self.settings.max_text_length)
        room = self.settings.video_max_objects - len(self.session.tracked_ids())
        if room <= 0:
            raise ProtocolError(f"this session already has {self.settings.video_max_objects} objects, the limit "
                                "(SAM3_VIDEO_MAX_OBJECTS); remove one first", "too_many_objects")
        runs, next_id = video.backbone_runs, max([*self.session.objects, *video.objects, 0]) + 1
        found, result = await interactive.find_concept(self.engine, video, frame, text, next_id=next_id, room=room,
                                                       confidence=message.confidence_threshold)
        self.session.add_found(found, text)
        await self.send(proto.ConceptResult(frame=frame, text=text, object_ids=found,
                                            cached=video.backbone_runs == runs, objects=objects_out(result),
                                            latency_ms=ms_since(started)))

    async def on_new_object(self, message: proto.NewObjectMessage, started: float) -> None:
        await self.send(proto.ObjectCreated(object_id=self.session.new_object_id()))

    async def on_remove_object(self, message: proto.RemoveObjectMessage, started: float) -> None:
        video = self._idle_video()
        self.session.known(message.object_id)
        if message.object_id in video.objects:
            await self.engine.video_remove(video, message.object_id)
        self.session.forget(message.object_id)
        await self.send(proto.ObjectRemoved(object_id=message.object_id, current_object_id=self.session.current))

    async def on_rename_object(self, message: proto.RenameObjectMessage, started: float) -> None:
        video = self.session.require_video()
        book = self.session.known(message.object_id)
        book.label = " ".join(message.label.split()) or book.label
        if book.object_id in video.objects:
            video.objects[book.object_id].label = book.label
        await self.send(proto.ObjectRenamed(object_id=book.object_id, label=book.label))

    # ------------------------------------------------------------------------------------------ tracking
    async def on_propagate(self, message: proto.PropagateMessage, started: float) -> None:
        video = self._idle_video()
        if not video.objects:
            raise ProtocolError("no objects to track yet: click, draw a box or send a text on a frame first",
                                "no_objects")
        start = None if message.from_frame is None else self.session.check_frame(message.from_frame, "from_frame")
        stepper = video.propagation(direction=message.direction, from_frame=start)
        await self.send(proto.PropagationStarted(direction=message.direction, from_frame=stepper.start,
                                                 frames_total=stepper.frames_total))
        self.propagator.start(stepper)

    async def on_cancel(self, message: proto.CancelMessage, started: float) -> None:
        if not self.propagator.running:
            raise ProtocolError("no propagation is running", "not_propagating")
        await self.propagator.cancel()  # its propagation_done (status cancelled) is sent by the task

    async def on_get_frame(self, message: proto.GetFrameMessage, started: float) -> None:
        frame = self.session.check_frame(message.frame)
        result = self.session.video.frame_result(frame)
        await self.send(proto.FrameResult(frame=frame, source="stored", objects=objects_out(result)))

    async def on_reset(self, message: proto.ResetMessage, started: float) -> None:
        video = self._idle_video()
        await self.engine.video_reset(video)
        self.session.clear_objects()
        await self.send(proto.SessionReset(object_id=self.session.current))

    async def on_export(self, message: proto.ExportMessage, started: float) -> None:
        video, session = self._idle_video(), self.session
        if not any(video.results.values()):
            raise ProtocolError("nothing to export yet: prompt an object (and propagate) first", "nothing_to_export")
        info = session.frames.info
        job = await export_job(self.jobs, session.frames.store_dir, info, session_lines(video, info),
                               session.export_objects(), session.export_request(), self.owner,
                               message.annotated_video)
        await self.send(proto.Exported(job_id=job.job_id, frames=info.frame_count, links=job_out(job).links,
                                       latency_ms=ms_since(started)))


@router.websocket("/ws/video")
async def video_socket(websocket: WebSocket, services: ServicesDep, key: ApiKeyDep) -> None:
    """Interactive video channel; the protocol is in this module's docstring."""
    await VideoConnection(websocket, services, key).serve()

