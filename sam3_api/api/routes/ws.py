"""WebSocket /ws/realtime: click-to-segment with the image encoded once per session.

Seed 000's protocol (its clients work unchanged). Client -> server:
  {"type": "init", "image": "<base64 or data:image/...;base64,...>"}
  {"type": "click", "x": 120, "y": 80, "label": 1}        label 1 foreground (default), 0 background
  {"type": "segment"}                                     re-send the current object's mask
  {"type": "reset"}                                       clear every point, box and object
  {"type": "close"}                                       the server answers session_closed and closes (1000)
Server -> client:
  {"type": "session_created", "session_id", "idle_ttl_s"}          right after the socket is accepted
  {"type": "image_loaded", "width", "height", "image_id", "object_id", "latency_ms"}
  {"type": "point_added", "x", "y", "label", "total_points", "object_id"}
  {"type": "segmentation_result", "mask", "score", "num_points", "box", "area", "object_id", "image_id",
   "mask_format", "latency_ms"}                           mask: base64 grayscale PNG (0 / 255) by default
  {"type": "points_cleared", "object_id", "current_object_id"}      answer to reset
  {"type": "error", "message", "code", "field"}
Every click segments at once: the server answers point_added then segmentation_result (seed 000's page
redraws after each click); "segment" answers one more segmentation_result for the same prompts. A click runs
only SAM's prompt decoder: init encoded the image (engine.embed) and the engine caches that embedding.

Extensions (additive; old clients never see them unless they ask):
  init by {"image_url": "https://..."} (SSRF-safe download, the REST /url routes' limits) or by
    {"image_id": "<image_loaded.image_id>"}: no upload while the server still holds that image (the images
    of live sessions and up to 8 recently loaded ones); otherwise error code "not_found".
  init and set_options accept "mask_format": "png" | "rle" (COCO compressed RLE {"size": [h, w], "counts"});
    set_options also accepts "mask_threshold" (0-1) and answers {"type": "options_set", ...}.
  {"type": "box", "x1", "y1", "x2", "y2", "object_id"?} -> box_added + segmentation_result; one box per object
    (a new box replaces the previous one), combined with the object's points.
  {"type": "text", "text": "cat", "confidence_threshold"?: 0.5, "max_masks"?} -> {"type": "text_result",
    "text", "num_masks", "masks", "scores", "boxes", "image_id", "mask_format", "latency_ms"}: every instance.
  Several objects per image: {"type": "new_object"} -> {"type": "object_created", "object_id"}; click, box,
    segment, undo and reset may carry "object_id" (it becomes the current object); without it they apply to
    the current object (object 1 after init). Every segmentation_result names its object_id.
  {"type": "undo", "object_id"?} removes the object's last point or box -> {"type": "prompt_removed",
    "object_id", "kind", "total_points", "has_box"}, then a segmentation_result if prompts remain.
  {"type": "reset", "object_id": 2} clears only that object; {"type": "ping"} -> {"type": "pong"}.
Errors never close the socket: invalid JSON (code invalid_json), unknown or missing type (unknown_type),
missing or invalid fields (invalid_message), a prompt before init (no_image), a click or box outside the
image (invalid_prompt), an unknown object (unknown_object), segment or undo with nothing to act on
(no_prompts, nothing_to_undo) and engine errors (model_not_ready, engine_busy, invalid_image,
image_too_large, url_not_allowed, url_fetch_failed, not_found) all become error events.
Sessions are bounded: beyond SAM3_WS_MAX_SESSIONS concurrent sockets the new one gets an error event
(too_many_sessions) and is closed with code 1013 (try again later); a socket silent for SAM3_WS_IDLE_TTL_S
gets session_closed (reason "idle") and is closed with code 1000. uvicorn refuses frames over --ws-max-size
(app.py sets it to the HTTP body cap of SAM3_MAX_UPLOAD_BYTES; plain uvicorn: 16 MiB) with close code 1009.
"""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
from fastapi import APIRouter, WebSocket

from ...engine import prompts
from ...engine.types import PreparedImage, Segmentation
from ...errors import InvalidPrompt, NotFound
from ...serving import image as serving
from ...serving.image import ImagePrompts
from ..encoding import MASK_ENCODERS
from .. import ws_protocol as proto
from ..inputs import image_from_base64, image_from_url
from ..ws.loop import SocketLoop, ms_since
from ..ws.protocol import ProtocolError
from ..ws_sessions import ObjectPrompts, RealtimeRegistry, Session
from ..deps import ServicesDep
from ..services import Services

router = APIRouter()


class Connection(SocketLoop):
    """One /ws/realtime socket: the loop (accept, announce, receive -> dispatch -> send) is SocketLoop's."""

    def __init__(self, websocket: WebSocket, services: Services):
        super().__init__(websocket, services.settings.ws_idle_ttl_s, services.idle_sleep)
        self.engine, self.settings = services.engine, services.settings
        self.registry: RealtimeRegistry = services.ws_sessions
        self.session = Session(uuid.uuid4().hex)

    def created_event(self) -> proto.SessionCreated:
        return proto.SessionCreated(session_id=self.session.session_id, idle_ttl_s=self.settings.ws_idle_ttl_s)

    def parse(self, text: str):
        return proto.parse_message(text)

    async def on_binary(self, data: bytes, started: float) -> None:
        """Seed 000's clients may send their JSON in binary frames: parsed the same way."""
        message = proto.parse_message(data)
        await getattr(self, f"on_{message.type}")(message, started)

    # ------------------------------------------------------------------------------------------ handlers
    async def on_init(self, message: proto.InitMessage, started: float) -> None:
        if message.mask_format:
            self.session.mask_format = message.mask_format
        image = await self.engine.embed(await self._pixels(message))
        self.registry.remember_image(image)
        self.session.load(image)
        await self.send(proto.ImageLoaded(width=image.width, height=image.height, image_id=image.key,
                                          object_id=self.session.current, latency_ms=ms_since(started)))

    async def _pixels(self, message: proto.InitMessage) -> np.ndarray | PreparedImage:
        if message.image_id:
            image = self.registry.find_image(message.image_id)
            if image is None:
                raise NotFound(f"image_id {message.image_id!r} is no longer held by the server; send the image "
                               "again with \"image\" or \"image_url\"", field="image_id")
            return image
        if message.image_url:
            return await image_from_url(message.image_url, self.settings)
        return await image_from_base64(message.image or "", self.settings)

    async def on_click(self, message: proto.ClickMessage, started: float) -> None:
        image = self.session.require_image()
        target = self.session.object(message.object_id)
        prompts.check_points([[message.x, message.y]], image.width, image.height, field="click")
        if len(target.points) >= self.settings.max_prompts:
            raise InvalidPrompt(f"object {target.object_id} already has {len(target.points)} points, the limit "
                                "(SAM3_MAX_PROMPTS); undo or reset first", field="click")
        target.add_point(message.x, message.y, message.label)
        await self.send(proto.PointAdded(x=message.x, y=message.y, label=message.label,
                                         total_points=len(target.points), object_id=target.object_id))
        await self._segment(target, started)

    async def on_box(self, message: proto.BoxMessage, started: float) -> None:
        image = self.session.require_image()
        target = self.session.object(message.object_id)
        box = prompts.check_box([message.x1, message.y1, message.x2, message.y2], image.width, image.height)
        target.set_box(box)
        await self.send(proto.BoxAdded(x1=box[0], y1=box[1], x2=box[2], y2=box[3], object_id=target.object_id))
        await self._segment(target, started)

    async def on_segment(self, message: proto.SegmentMessage, started: float) -> None:
        target = self.session.object(message.object_id)
        if target.empty:
            raise ProtocolError(f"object {target.object_id} has no points or box yet: send a click first",
                                "no_prompts")
        await self._segment(target, started)

    async def _segment(self, target: ObjectPrompts, started: float) -> None:
        """Decode the object's mask from its prompts (prompt decoder only: the embedding is cached)."""
        image = self.session.require_image()
        prompts = ImagePrompts(points=target.points, point_labels=target.labels,
                               boxes=[target.box] if target.box is not None else [],
                               mask_threshold=self.session.mask_threshold)
        result = (await serving.segment_objects(self.engine, image, prompts)).segmentation
        event = await asyncio.to_thread(self._result_event, target, result, image, started)
        await self.send(event)

    def _result_event(self, target: ObjectPrompts, result: Segmentation, image: PreparedImage,
                      started: float) -> proto.SegmentationResult:
        if result.num_masks:
            mask, score = result.masks[0], float(result.scores[0])
        else:
            mask, score = np.zeros((image.height, image.width), dtype=bool), 0.0
        area = int(mask.sum())
        box = [round(float(v), 2) for v in result.boxes[0]] if area else None
        return proto.SegmentationResult(
            mask=MASK_ENCODERS[self.session.mask_format](mask), score=round(score, 5), num_points=len(target.points),
            box=box, area=area, object_id=target.object_id, image_id=image.key,
            mask_format=self.session.mask_format, latency_ms=ms_since(started))

    async def on_text(self, message: proto.TextMessage, started: float) -> None:
        image = self.session.require_image()
        prompts = ImagePrompts(texts=[message.text], confidence_threshold=message.confidence_threshold,
                               mask_threshold=self.session.mask_threshold, max_masks=message.max_masks)
        result = (await serving.segment_concepts(self.engine, image, prompts)).segmentation
        event = await asyncio.to_thread(self._text_event, message.text, result, image, started)
        await self.send(event)

    def _text_event(self, text: str, result: Segmentation, image: PreparedImage, started: float) -> proto.TextResult:
        encode = MASK_ENCODERS[self.session.mask_format]
        return proto.TextResult(
            text=text, num_masks=result.num_masks, masks=[encode(mask) for mask in result.masks],
            scores=[round(float(s), 5) for s in result.scores],
            boxes=[[round(float(v), 2) for v in box] for box in result.boxes],
            image_id=image.key, mask_format=self.session.mask_format, latency_ms=ms_since(started))

    async def on_new_object(self, message: proto.NewObjectMessage, started: float) -> None:
        self.session.require_image()
        if len(self.session.objects) >= self.settings.max_prompts:
            raise InvalidPrompt(f"this image already has {len(self.session.objects)} objects, the limit "
                                "(SAM3_MAX_PROMPTS); reset to start over", field="object_id")
        await self.send(proto.ObjectCreated(object_id=self.session.new_object().object_id))

    async def on_undo(self, message: proto.UndoMessage, started: float) -> None:
        target = self.session.object(message.object_id)
        kind = target.undo()
        if kind is None:
            raise ProtocolError(f"object {target.object_id} has no point or box to undo", "nothing_to_undo")
        await self.send(proto.PromptRemoved(object_id=target.object_id, kind=kind, total_points=len(target.points),
                                            has_box=target.box is not None))
        if not target.empty:
            await self._segment(target, started)

    async def on_reset(self, message: proto.ResetMessage, started: float) -> None:
        session = self.session
        if message.object_id is not None:
            target = session.object(message.object_id)
            session.objects[target.object_id] = ObjectPrompts(target.object_id)
        else:
            session.clear_objects()
        await self.send(proto.PointsCleared(object_id=message.object_id, current_object_id=session.current))

    async def on_set_options(self, message: proto.SetOptionsMessage, started: float) -> None:
        if message.mask_format is not None:
            self.session.mask_format = message.mask_format
        if message.mask_threshold is not None:
            self.session.mask_threshold = message.mask_threshold
        await self.send(proto.OptionsSet(mask_format=self.session.mask_format,
                                         mask_threshold=self.session.mask_threshold))


@router.websocket("/ws/realtime")
async def realtime(websocket: WebSocket, services: ServicesDep) -> None:
    """Click-to-segment channel; the protocol is in this module's docstring."""
    await Connection(websocket, services).serve()
