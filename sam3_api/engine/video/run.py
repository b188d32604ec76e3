"""A video run: picked objects and text concepts tracked through one clip, one frame per model-thread step.

`VideoRun.step()` does one unit of work (prompting one object, or one frame visit) and returns the frames that
became complete, their masks already COCO RLE: nothing at video resolution outlives the step. A frame is
complete when every session that reports it (objects, text) has done so. Between steps the model thread
serves everyone else, so a click waits for at most one frame step. Model thread only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ...media.masks import mask_to_box, mask_to_rle
from ..runtime import probability_to_logit
from .concepts import ConceptMasks, ConceptTracker
from .frames import ChunkedFrames, FrameReader
from .memory import Pass, prune
from .objects import ObjectPrompt, ObjectTracker, TrackedMasks, frame_features
from .plan import build_plan


@dataclass(frozen=True, kw_only=True)
class VideoRequest:
    """What to track. Frames are indices within the run; coordinates are original-video pixels. The mask
    threshold has no default here: serving/defaults.py decides it."""

    texts: list[str] = field(default_factory=list)
    objects: list[ObjectPrompt] = field(default_factory=list)
    direction: str = "both"
    mask_threshold: float
    confidence_threshold: float | None = None  # text: detection threshold; objects: minimum visibility score


@dataclass
class FrameObject:
    object_id: int
    score: float
    box: list[float] | None  # xyxy pixels of the mask; None when the mask is empty
    mask: dict  # COCO RLE {"size": [h, w], "counts": str}


@dataclass
class FrameResult:
    frame: int
    objects: list[FrameObject]


class VideoRun:
    """Plan + sessions + partial results of one run. Create anywhere; step() on the model thread only."""

    def __init__(self, runtime, reader: FrameReader, request: VideoRequest):
        self.runtime, self.reader, self.request = runtime, reader, request
        self.frame_count = len(reader)
        self.plan = build_plan(self.frame_count, [p.frame for p in request.objects], request.direction,
                               bool(request.texts))
        self._work: Iterator = self._steps()
        self._partial: dict[int, dict[str, list[FrameObject]]] = {}
        self._text_ids: dict[int, int] = {}  # the concept session's object id -> the run's object id
        self.catalog: dict[int, dict] = {p.object_id: _describe(p) for p in request.objects}
        self.frames_done = 0
        self.done = False

    def step(self) -> list[FrameResult]:
        """Advance by one unit of work; returns the frames completed by it (in no particular order)."""
        try:
            completed = next(self._work)
        except StopIteration:
            self.done = True
            return []
        self.frames_done += len(completed)
        return completed

    # ------------------------------------------------------------------------------------------ the work
    def _steps(self) -> Iterator[list[FrameResult]]:
        frames = ChunkedFrames(self.reader, self.runtime.video_processor.video_processor)
        size = (self.reader.height, self.reader.width)
        objects = ObjectTracker(self.runtime, frames, *size) if self.request.objects else None
        concepts = ConceptTracker(self.runtime, frames, *size, self.request.texts) if self.request.texts else None
        self.objects, self.concepts = objects, concepts
        yield self._complete_frames_nobody_reports()
        for prompt in self.request.objects:
            features = self._features(frames[prompt.frame], with_detector=False)
            objects.add(prompt, features)
            yield []
        for position, visit in enumerate(self.plan.visits):
            completed = self._visit(visit, frames, objects, concepts)
            if objects is not None:
                prune(objects.session, self.plan.remaining_object_passes(position + 1), objects.config)
            if visit.text:
                prune(concepts.session, [Pass(visit.frame + 1, self.frame_count - 1)], concepts.config)
            yield completed

    def _visit(self, visit, frames, objects, concepts) -> list[FrameResult]:
        completed = []
        reuse_only = visit.objects and _only_reuses(objects, visit.frame)
        if visit.objects and reuse_only and not visit.emit_objects and not visit.text:
            return completed  # a prompted frame seen again: the tracker would only return what it stored
        features = None
        if visit.text and visit.objects or (visit.objects and not reuse_only):
            features = self._features(frames[visit.frame], with_detector=visit.text)
        if visit.objects:
            tracked = objects.track(visit.frame, features, visit.reverse)
            if visit.emit_objects:
                completed += self._deliver(visit.frame, "objects", self._object_results(tracked))
        if visit.text:
            for released in concepts.track(visit.frame, None if features is None else features.detector,
                                           **self._text_thresholds(concepts)):
                completed += self._deliver(released.frame, "text", self._text_results(released))
        return completed

    @torch.inference_mode()
    def _features(self, pixel_values, with_detector: bool):
        return frame_features(self.runtime, pixel_values, with_detector)

    def _text_thresholds(self, concepts: ConceptTracker) -> dict:
        return {} if self.request.confidence_threshold is None else {"confidence": self.request.confidence_threshold}

    # ------------------------------------------------------------------------------------------ results
    def _deliver(self, frame: int, source: str, found: list[FrameObject]) -> list[FrameResult]:
        parts = self._partial.setdefault(frame, {})
        parts[source] = found
        if set(parts) < self.plan.contributors[frame]:
            return []
        del self._partial[frame]
        merged = [obj for name in ("objects", "text") for obj in parts.get(name, [])]
        return [FrameResult(frame, merged)]

    def _complete_frames_nobody_reports(self) -> list[FrameResult]:
        return [FrameResult(f, []) for f, sources in self.plan.contributors.items() if not sources]

    def _object_results(self, tracked: TrackedMasks) -> list[FrameObject]:
        masks = (tracked.logits > probability_to_logit(self.request.mask_threshold)).cpu().numpy()
        minimum = self.request.confidence_threshold or 0.0
        return [frame_object(obj_id, float(score), mask)
                for obj_id, score, mask in zip(tracked.object_ids, tracked.scores.tolist(), masks)
                if score >= minimum]

    def _text_results(self, found: ConceptMasks) -> list[FrameObject]:
        results = []
        for model_id, score, mask in zip(found.object_ids, found.scores.tolist(), found.masks.numpy()):
            run_id = self._text_ids.get(model_id)
            if run_id is None:
                run_id = self._text_ids[model_id] = self._next_object_id()
                self.catalog[run_id] = {"object_id": run_id, "prompt": found.prompts.get(model_id, ""),
                                        "kind": "text", "frame": found.frame}
            results.append(frame_object(run_id, float(score), mask))
        return results

    def _next_object_id(self) -> int:
        return max(self.catalog, default=0) + 1


def frame_object(object_id: int, score: float, mask) -> FrameObject:
    """One object's mask on a frame as the API reports it: RLE, its box (None when empty), its score."""
    box = mask_to_box(mask) if mask.any() else None
    return FrameObject(object_id, round(score, 5), box, mask_to_rle(mask))


def _only_reuses(objects: ObjectTracker, frame: int) -> bool:
    """True when every object was prompted on `frame`: the tracker only returns the masks it stored (no ViT)."""
    return all(frame in outputs["cond_frame_outputs"] for outputs in objects.session.output_dict_per_obj.values())


def _describe(prompt: ObjectPrompt) -> dict:
    kind = "+".join(name for name, value in (("box", prompt.box), ("points", prompt.points)) if value is not None)
    return {"object_id": prompt.object_id, "prompt": kind, "kind": kind, "frame": prompt.frame}
