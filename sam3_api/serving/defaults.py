"""Every default a request falls back to, decided here once for all surfaces.

REST routes, both WebSockets, the drop-in adapters and jobs leave a threshold out (None) or advertise these
values in their schemas; nothing else picks a number. A foreign service's own fixed default (seed 001's
0.5 score, Roboflow's output_prob_thresh) is that service's contract and stays in its adapter.
"""

from __future__ import annotations

from ..engine.types import Thresholds

MASK_THRESHOLD = 0.5  # probability above which a pixel is in a mask (SAM's own cut of the mask logits)
TEXT_CONFIDENCE = 0.5  # concept prompts: the score an instance needs (Sam3Processor's default)
OBJECT_CONFIDENCE = 0.0  # boxes and points: the prompt names its object, so no candidate is dropped by score
AUTO_CONFIDENCE = 0.0  # automatic mode: its own quality filters (pred_iou_thresh ...) decide; no extra cut


def thresholds(confidence: float | None, mask: float | None, default_confidence: float) -> Thresholds:
    """A request's thresholds with the defaults filled in where it gave none."""
    return Thresholds(mask=MASK_THRESHOLD if mask is None else mask,
                      confidence=default_confidence if confidence is None else confidence)
