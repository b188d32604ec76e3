"""Choosing among instances the engine found: by where their boxes lie, or across prompts by mask overlap.

Plain numpy on Segmentation results (no torch), shared by every surface that needs the same choice.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..media.masks import mask_nms
from .types import Segmentation


def centres_inside(boxes: np.ndarray, regions: Sequence[Sequence[float]]) -> np.ndarray:
    """Bool per box: its centre lies in at least one region [x1, y1, x2, y2] (edges included)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    regions = np.asarray(regions, dtype=np.float64).reshape(-1, 4)
    cx = (boxes[:, 0:1] + boxes[:, 2:3]) / 2  # (N, 1) against (1, R)
    cy = (boxes[:, 1:2] + boxes[:, 3:4]) / 2
    inside = (cx >= regions[:, 0]) & (cx <= regions[:, 2]) & (cy >= regions[:, 1]) & (cy <= regions[:, 3])
    return inside.any(axis=1)


def keep_centred_in(result: Segmentation, regions: Sequence[Sequence[float]]) -> Segmentation:
    """The instances of `result` whose box centre lies in one of `regions`."""
    return result.subset(centres_inside(result.boxes, regions))


def suppress_across(results: Sequence[Segmentation], iou_threshold: float) -> list[Segmentation]:
    """Mask NMS over the instances of several prompts at once; each result keeps its surviving instances."""
    if not results:
        return []
    scores = np.concatenate([r.scores for r in results])
    if scores.size == 0:
        return list(results)
    keep = mask_nms(np.concatenate([r.masks for r in results]), scores, iou_threshold)
    bounds = np.cumsum([0] + [r.num_masks for r in results])
    return [r.subset(keep[start:stop]) for r, start, stop in zip(results, bounds[:-1], bounds[1:])]
