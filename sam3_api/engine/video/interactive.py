"""Interactive video: objects prompted on any frame and answered at once, then tracked, corrected, re-tracked.

One `InteractiveVideo` per client session (the /ws/video socket). It holds the model's tracker session over
the clip's chunked frames, the last few frames' backbone outputs (a second click on a frame runs no backbone),
every object's prompts, and the latest masks of every frame (COCO RLE, for scrubbing and export).

- `prompt()` sets an object's points / box on a frame and decodes that frame for every object. Every prompted
  frame is a conditioning frame (SAM 2's "add all frames to correct as conditioning"): a correction on a
  frame the tracker already visited anchors every later propagation, instead of being overwritten by it.
- `add_concept()` finds every instance of a text on a frame with the detector and adds each as an object
  (its mask is the object's prompt on that frame).
- `propagation()` returns a stepper that tracks every object frame by frame from a frame: forward, backward
  or both; a correction on frame k re-tracks from k, and frames on the other side of k are not recomputed.
- `remove()` / `reset()` rebuild the tracker session from the prompts that remain.
Tracker state is pruned as in jobs (memory.py); between propagations only the conditioning frames stay.
Every method but the constructor runs on the model thread.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from ..runtime import probability_to_logit
from .frames import ChunkedFrames, FrameReader
from .memory import prune
from .objects import ObjectPrompt, ObjectTracker, TrackedMasks, frame_features
from .plan import build_plan
from .run import FrameObject, FrameResult, frame_object

FEATURE_FRAMES = 4  # frames whose backbone output is kept for more clicks (full size: ~21 MB each in fp32, half in bf16)


@dataclass
class ObjectState:
    """One object's prompts, by frame: points/labels/box, or a mask (objects found by a text concept)."""

    object_id: int
    label: str = ""
    prompts: dict[int, ObjectPrompt] = field(default_factory=dict)
    masks: dict[int, np.ndarray] = field(default_factory=dict)


class InteractiveVideo:
    """One session's tracker, prompts and results over one decoded clip."""

    def __init__(self, runtime, reader: FrameReader, mask_threshold: float, feature_frames: int = FEATURE_FRAMES):
        self.runtime, self.reader = runtime, reader
        self.frame_count, self.height, self.width = len(reader), reader.height, reader.width
        self.mask_threshold = mask_threshold
        self.frames = ChunkedFrames(reader, runtime.video_processor.video_processor)
        self.objects: dict[int, ObjectState] = {}
        self.results: dict[int, dict[int, FrameObject]] = {}  # frame -> object id -> latest mask
        self.changed_from: int | None = None  # earliest frame prompted since the last propagation
        self.backbone_runs = 0
        self._features: OrderedDict[int, object] = OrderedDict()
        self._feature_frames = feature_frames
        self.tracker = self._new_tracker()

    # ------------------------------------------------------------------------------------------ prompts
    def prompt(self, object_id: int, frame: int, points=None, labels=None, box=None) -> FrameResult:
        """Set the object's prompt on `frame` (replacing its earlier one there); that frame's masks."""
        state = self.objects.setdefault(object_id, ObjectState(object_id, label="object"))
        prompt = ObjectPrompt(object_id, frame, box=box, points=points, labels=labels)
        # A concept object's mask on this frame stays in its state, overridden by the prompt: undo brings it back.
        state.prompts[frame] = prompt
        self._as_conditioning(object_id, frame)
        tracked = self.tracker.add(prompt, self._frame_features(frame))
        return self._record(frame, tracked)

    def clear_prompt(self, object_id: int, frame: int) -> FrameResult:
        """Remove the object's prompt on `frame` (the last undo): a concept object falls back to the mask it was
        found with there; an object with no prompt and no such mask left goes."""
        state = self.objects[object_id]
        if state.prompts.pop(frame, None) is None:
            state.masks.pop(frame, None)
        self.results.get(frame, {}).pop(object_id, None)
        if not state.prompts and not state.masks:
            self.remove(object_id)
        else:
            self._rebuild()
        return self.frame_result(frame)

    def add_concept(self, frame: int, text: str, confidence: float, next_id: int) -> tuple[list[int], FrameResult]:
        """Every instance of `text` on `frame` becomes a new object (ids from `next_id` on)."""
        features = self._frame_features(frame, with_detector=True)
        embedding = _DetectorView(features.detector, (self.height, self.width))
        found = self.runtime.detect(embedding, text, None, None, confidence, self.mask_threshold)
        new_ids, tracked = [], None
        for offset, mask in enumerate(found.masks.numpy()):
            object_id = next_id + offset
            state = self.objects[object_id] = ObjectState(object_id, label=text)
            state.masks[frame] = mask
            tracked = self._add_mask(object_id, frame, mask, features)
            new_ids.append(object_id)
        self.changed_from = frame if self.changed_from is None else min(self.changed_from, frame)
        return new_ids, (self._record(frame, tracked) if tracked is not None else self.frame_result(frame))

    def remove(self, object_id: int) -> None:
        """Forget an object everywhere: its prompts, its masks on every frame, its tracker state."""
        self.objects.pop(object_id, None)
        for frame_objects in self.results.values():
            frame_objects.pop(object_id, None)
        self._rebuild()

    def reset(self) -> None:
        self.objects.clear()
        self.results.clear()
        self.changed_from = None
        self.tracker = self._new_tracker()

    def frame_result(self, frame: int) -> FrameResult:
        return FrameResult(frame, list(self.results.get(frame, {}).values()))

    def has_features(self, frame: int) -> bool:
        """Is this frame's backbone output cached (a prompt on it runs no ViT)? Safe off the model thread."""
        return frame in self._features

    # ------------------------------------------------------------------------------------------ propagation
    def propagation(self, direction: str = "both", from_frame: int | None = None) -> "Propagation":
        start = from_frame if from_frame is not None else self._default_start()
        return Propagation(self, start, direction)

    def _default_start(self) -> int:
        if self.changed_from is not None:
            return self.changed_from
        prompted = [f for state in self.objects.values() for f in (*state.prompts, *state.masks)]
        return min(prompted, default=0)

    # ------------------------------------------------------------------------------------------ internals
    def _new_tracker(self) -> ObjectTracker:
        return ObjectTracker(self.runtime, self.frames, self.height, self.width)

    @torch.inference_mode()
    def _frame_features(self, frame: int, with_detector: bool = False):
        cached = self._features.get(frame)
        if cached is not None and (cached.detector is not None or not with_detector):
            self._features.move_to_end(frame)
            return cached
        features = frame_features(self.runtime, self.frames[frame], with_detector)
        self.backbone_runs += 1
        self._features[frame] = features
        while len(self._features) > self._feature_frames:
            self._features.popitem(last=False)
        return features

    def _as_conditioning(self, object_id: int, frame: int) -> None:
        """Make `frame` a conditioning frame of the object even if the tracker visited it before."""
        session = self.tracker.session
        index = session._obj_id_to_idx.get(object_id)
        if index is not None:
            session.frames_tracked_per_obj[index].pop(frame, None)
            session.output_dict_per_obj[index]["non_cond_frame_outputs"].pop(frame, None)
        self.changed_from = frame if self.changed_from is None else min(self.changed_from, frame)

    def _add_mask(self, object_id: int, frame: int, mask: np.ndarray, features) -> TrackedMasks:
        self._as_conditioning(object_id, frame)
        self.tracker.processor.add_inputs_to_inference_session(
            self.tracker.session, frame_idx=frame, obj_ids=object_id, input_masks=mask)
        return self.tracker.track(frame, features, reverse=False)

    def _rebuild(self) -> None:
        """A fresh tracker session with every remaining prompt applied again, in frame order."""
        self.tracker = self._new_tracker()
        for frame in sorted({f for s in self.objects.values() for f in (*s.prompts, *s.masks)}):
            features = self._frame_features(frame)
            for state in self.objects.values():
                if frame in state.prompts:
                    self._record(frame, self.tracker.add(state.prompts[frame], features))
                elif frame in state.masks:
                    self._record(frame, self._add_mask(state.object_id, frame, state.masks[frame], features))
        prune(self.tracker.session, [], self.tracker.config)

    def _record(self, frame: int, tracked: TrackedMasks) -> FrameResult:
        """Store a frame's masks (replacing what an earlier pass or prompt left there) and return them."""
        masks = (tracked.logits > probability_to_logit(self.mask_threshold)).cpu().numpy()
        objects = {obj: frame_object(obj, score, mask)
                   for obj, score, mask in zip(tracked.object_ids, tracked.scores.tolist(), masks)}
        self.results[frame] = objects
        return FrameResult(frame, list(objects.values()))


class Propagation:
    """Tracks every object from one frame, frame by frame: `step()` on the model thread until `done`."""

    def __init__(self, video: InteractiveVideo, start: int, direction: str):
        self.video, self.start, self.direction = video, start, direction
        self.plan = build_plan(video.frame_count, [start], direction, has_text=False)
        self.frames_total = sum(1 for visit in self.plan.visits if visit.emit_objects)
        self.frames_done = 0
        self._position = 0
        self.done = not video.objects or not self.plan.visits

    def step(self) -> list[FrameResult]:
        video = self.video
        if self.done:
            return []
        visit = self.plan.visits[self._position]
        self._position += 1
        features = video._frame_features(visit.frame)
        tracked = video.tracker.track(visit.frame, features, visit.reverse)
        completed = [video._record(visit.frame, tracked)] if visit.emit_objects else []
        self.frames_done += len(completed)
        self.done = self._position >= len(self.plan.visits)
        remaining = [] if self.done else self.plan.remaining_object_passes(self._position)
        prune(video.tracker.session, remaining, video.tracker.config)
        if self.done:
            video.changed_from = None
        return completed


@dataclass
class _DetectorView:
    """What Sam3Runtime.detect reads of an image embedding: the detector's features and the original size."""

    detector: object
    original_size: tuple[int, int]
