"""Concept (text) tracking: every instance of each text in every frame, with stable ids.

This is transformers' own Sam3VideoModel pipeline (a Sam3VideoProcessor session: add_text_prompt, the model
called frame by frame, postprocess_outputs), driven one frame per model-thread step instead of through
`propagate_in_video_iterator`, whose generator computes up to `hotstart_delay` frames before yielding its
first result (15 frames at once: far too long for a click to wait behind). The hot-start hold-back is kept:
outputs are released in the same order and at the same moments as the iterator releases them.
When the same frame also tracks picked objects, the backbone output is shared (`reuse_backbone`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from transformers import Sam3VideoInferenceSession

from ..precision import cast_floats
from ..prompts import fit_text


@dataclass
class ConceptMasks:
    """One frame of concept results at the original size (transformers' postprocess_outputs)."""

    frame: int
    object_ids: list[int]
    masks: torch.Tensor  # (N, H, W) bool
    scores: torch.Tensor  # (N,)
    prompts: dict[int, str]  # model object id -> its text


class ConceptTracker:
    """A Sam3VideoInferenceSession over chunked frames, stepped one frame at a time."""

    def __init__(self, runtime, frames, height: int, width: int, texts: list[str]):
        self.runtime = runtime
        self.model = runtime.model
        self.session = Sam3VideoInferenceSession(
            video_height=height, video_width=width, inference_device=runtime.device,
            inference_state_device=runtime.device, video_storage_device="cpu", dtype=torch.float32,
        )
        self.session.processed_frames = frames
        # Results name the caller's own text, even when the encoder only reads its first tokens.
        self._asked = {fit_text(runtime.video_processor.tokenizer, text): text for text in texts}
        runtime.video_processor.add_text_prompt(self.session, list(self._asked))
        self._held: list = []  # outputs held back during the hot start
        self._last_frame = len(frames) - 1

    @property
    def config(self):
        return self.model.tracker_model.config

    def track(self, frame: int, detector_features=None, confidence: float | None = None) -> list[ConceptMasks]:
        """Detect and track on `frame`; returns the frames released now (possibly none, possibly several)."""
        with (reuse_backbone(self.model.detector_model, detector_features), thresholds(self.model, confidence),
              self.runtime._autocast()):
            output = self.model(inference_session=self.session, frame_idx=frame, reverse=False)
        self._forget_old_frames(frame)
        return [self._postprocess(out) for out in self._release(output, frame)]

    def _release(self, output, frame: int) -> list:
        """propagate_in_video_iterator's hot-start hold-back, one frame at a time."""
        delay = self.model.hotstart_delay
        if delay <= 0:
            return [output]
        self._held.append(output)
        self.session.hotstart_removed_obj_ids.update(output.removed_obj_ids)
        if frame == self._last_frame:
            released, self._held = self._held, []
        elif len(self._held) >= delay:
            released, self._held = self._held[:1], self._held[1:]
        else:
            released = []
        return released

    def _postprocess(self, output) -> ConceptMasks:
        # Post-processed in fp32 whatever the precision: resizing bf16 mask logits loses mask edges.
        result = self.runtime.video_processor.postprocess_outputs(self.session, cast_floats(output, torch.float32))
        ids = [int(i) for i in result["object_ids"]]
        prompts = {obj_id: self._asked.get(text, text) for text, obj_ids in result["prompt_to_obj_ids"].items() for obj_id in obj_ids}
        return ConceptMasks(frame=output.frame_idx, object_ids=ids, masks=result["masks"].cpu(),
                            scores=result["scores"].float().cpu(), prompts=prompts)

    def _forget_old_frames(self, frame: int) -> None:
        """Per-frame bookkeeping read only for the current frame: keep it from growing with the clip."""
        for per_frame in (self.session.obj_id_to_tracker_score_frame_wise, self.session.suppressed_obj_ids):
            for old in [f for f in per_frame if f < frame]:
                del per_frame[old]


@contextlib.contextmanager
def thresholds(model, confidence: float | None):
    """A run's own detection threshold, for the duration of one step.

    Sam3VideoModel reads its thresholds from attributes (score_threshold_detection 0.5 to keep a detection,
    new_det_thresh 0.7 to start an object); a client's confidence_threshold replaces the first and moves the
    second by the same amount. Restored after the call, so one run never changes another's.
    """
    if confidence is None:
        yield
        return
    saved = model.score_threshold_detection, model.new_det_thresh
    shift = confidence - model.config.score_threshold_detection
    model.score_threshold_detection = confidence
    model.new_det_thresh = min(max(model.config.new_det_thresh + shift, confidence), 1.0)
    try:
        yield
    finally:
        model.score_threshold_detection, model.new_det_thresh = saved


@contextlib.contextmanager
def reuse_backbone(detector, features):
    """Make the detector return this frame's already computed backbone output instead of running the ViT again.

    Sam3VideoModel computes a frame's vision features inside its own step with no way to pass them in; when a
    job also tracks picked objects on that frame, the ViT has already run. Only the model thread calls the
    model, so overriding the method for the duration of one call is safe.
    """
    if features is None:
        yield
        return
    detector.get_vision_features = lambda pixel_values=None, **kwargs: features
    try:
        yield
    finally:
        del detector.get_vision_features  # back to the class's method
