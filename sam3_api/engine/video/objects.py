"""Picked objects (boxes and points on any frame) tracked by the loaded model's own tracker.

Sam3VideoModel already holds a Sam3TrackerVideoModel (`model.tracker_model`, built without a vision encoder)
over the detector's backbone. This drives that tracker the way transformers documents Sam3TrackerVideoModel
(processor.add_inputs_to_inference_session, model(session, frame_idx), then frame after frame), except that
each frame's vision features come from the shared backbone: the detector's ViT followed by the tracker neck
(`get_vision_features_for_tracker`), placed in the session's feature cache before the tracker asks for them.
That is exactly what the standalone tracker computes with its own copy of the ViT and neck; tests compare the
two masks frame by frame. Model thread only.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from transformers import Sam3TrackerVideoInferenceSession, Sam3TrackerVideoProcessor


@dataclass(frozen=True)
class ObjectPrompt:
    """One object's prompt on one frame: a box and/or points (pixels of the original video)."""

    object_id: int
    frame: int  # index within the run
    box: list[float] | None = None
    points: list[list[float]] | None = None
    labels: list[int] | None = None


@dataclass
class TrackedMasks:
    """One frame's tracker output: logits at the original size, one per object, in session order."""

    object_ids: list[int]
    logits: torch.Tensor  # (N, H, W) float, original video size
    scores: torch.Tensor  # (N,) probability that the object is visible


class ObjectTracker:
    """A Sam3TrackerVideoInferenceSession over chunked frames, fed by the shared backbone."""

    def __init__(self, runtime, frames, height: int, width: int):
        self.runtime = runtime
        self.model = runtime.model.tracker_model
        self.processor = Sam3TrackerVideoProcessor(image_processor=runtime.processor.image_processor,
                                                   video_processor=runtime.video_processor.video_processor)
        self.session = Sam3TrackerVideoInferenceSession(
            video_height=height, video_width=width, inference_device=runtime.device,
            inference_state_device=runtime.device, video_storage_device="cpu", dtype=torch.float32,
        )
        self.session.processed_frames = frames  # len() is the run's length; frames load per chunk
        self.size = (height, width)

    @property
    def config(self):
        return self.model.config

    def add(self, prompt: ObjectPrompt, features) -> TrackedMasks:
        """Prompt one object on its frame and decode that frame (the documented add-inputs-then-forward)."""
        self.processor.add_inputs_to_inference_session(
            self.session, frame_idx=prompt.frame, obj_ids=prompt.object_id,
            input_points=None if prompt.points is None else [[prompt.points]],
            input_labels=None if prompt.labels is None else [[prompt.labels]],
            input_boxes=None if prompt.box is None else [[prompt.box]],
        )
        return self.track(prompt.frame, features, reverse=False)

    def track(self, frame: int, features, reverse: bool) -> TrackedMasks:
        """Propagate every object to `frame` (features: this frame's shared-backbone output; None when every
        object was prompted on this frame, so the tracker returns its stored masks without looking at pixels)."""
        if features is not None:
            self._cache_features(frame, features)
        with self.runtime._autocast():
            output = self.model(inference_session=self.session, frame_idx=frame, reverse=reverse)
        logits = self.processor.post_process_masks(  # resized in fp32: bf16 loses mask edges when upsampled
            [output.pred_masks.float()], original_sizes=[list(self.size)], binarize=False)[0][:, 0]
        scores = output.object_score_logits.float().sigmoid().reshape(-1)
        return TrackedMasks(list(output.object_ids), logits.float(), scores.cpu())

    def _cache_features(self, frame: int, features) -> None:
        """Put the shared backbone's tracker features where the tracker looks before running its own ViT."""
        feature_maps, positions = features.tracker
        self.session.cache.cache_vision_features(frame, {"vision_feats": feature_maps, "vision_pos_embeds": positions})


@dataclass
class FrameFeatures:
    """One frame's backbone output: the detector's (when a text session needs it) and the tracker's."""

    tracker: tuple[list[torch.Tensor], list[torch.Tensor]]
    detector: object | None = None


def frame_features(runtime, pixel_values: torch.Tensor, with_detector: bool) -> FrameFeatures:
    """Run the ViT once for a frame; the detector's FPN only when a concept session will read it."""
    model = runtime.model
    pixel_values = pixel_values.unsqueeze(0).to(runtime.device)
    with runtime._autocast():
        if with_detector:
            vision = model.detector_model.get_vision_features(pixel_values=pixel_values)
        else:  # box/point tracking reads only the ViT's last hidden state, through the tracker's own neck
            hidden = model.detector_model.vision_encoder.backbone(pixel_values).last_hidden_state
            vision = SimpleNamespace(last_hidden_state=hidden)
        tracker = model.get_vision_features_for_tracker(vision_embeds=vision)
    # Kept (interactive sessions, the tracker's feature cache) in the compute dtype: half the bytes under bf16.
    store = runtime.precision.store
    return FrameFeatures(tracker=store(tracker), detector=store(vision) if with_detector else None)


def binarize(logits: torch.Tensor, mask_threshold_logit: float) -> np.ndarray:
    return (logits > mask_threshold_logit).cpu().numpy()
