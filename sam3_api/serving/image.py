"""What an image prompt means, for every surface: REST, /ws/realtime, the drop-in adapters, and batch jobs.

A surface parses its own wire format into `ImagePrompts` (coordinates in the image's pixels, thresholds
left None for the defaults of serving/defaults.py), calls one function here, and renders the
surface-neutral `ImageResult` its own way. The decisions live here and nowhere else:

* concept prompts: several texts are answered each on its own and merged best first (`mask_prompts` says
  which text each instance answers); exemplar boxes without a text mean "everything like these";
* boxes and points: points, with at most one box, describe ONE object (engine.segment_points: the box and
  the points refine each other); boxes without points are one object EACH (engine.segment_boxes); points
  with several boxes are refused, since it is unclear which box they refine;
* automatic mode: the grid's quality filters, then an optional confidence cut.

`segment(engine, image, prompts)` picks the kind from the prompts given: the one call a per-image job
runner (batch labeling) or a Label Studio backend needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.types import AutoParams, PreparedImage, Segmentation
from ..errors import InvalidPrompt
from .defaults import AUTO_CONFIDENCE, MASK_THRESHOLD, OBJECT_CONFIDENCE, TEXT_CONFIDENCE, thresholds

Image = np.ndarray | PreparedImage


@dataclass(frozen=True)
class ImagePrompts:
    """Everything one image may be asked, whatever surface it came from."""

    texts: list[str] = field(default_factory=list)  # concepts: every instance of each
    exemplar_boxes: list[list[float]] = field(default_factory=list)  # "everything like these boxes"
    exemplar_labels: list[int] | None = None  # 1 positive, 0 negative (default: all positive)
    boxes: list[list[float]] = field(default_factory=list)  # single-object boxes [x1, y1, x2, y2]
    points: list[list[float]] = field(default_factory=list)  # [[x, y], ...] of one object
    point_labels: list[int] | None = None  # 1 positive, 0 negative (default: all positive)
    multimask: bool = False  # points: SAM's three candidates, best first
    confidence_threshold: float | None = None  # None: the kind's default (defaults.py)
    mask_threshold: float | None = None
    max_masks: int | None = None
    auto: AutoParams | None = None  # automatic mode's grid and filters, when no prompt is given


@dataclass
class ImageResult:
    """Instances found on one image, best first, before any wire encoding."""

    segmentation: Segmentation  # every instance (several texts merged)
    per_prompt: list[Segmentation]  # concept prompts: one result per text, in order; else [segmentation]
    mask_prompts: list[str] | None = None  # several texts: the text each instance answers


async def segment(engine, image: Image, prompts: ImagePrompts) -> ImageResult:
    """One image, whichever prompt kind it carries (texts/exemplars, boxes/points, or automatic)."""
    if prompts.texts or prompts.exemplar_boxes:
        return await segment_concepts(engine, image, prompts)
    if prompts.boxes or prompts.points:
        return await segment_objects(engine, image, prompts)
    if prompts.auto is not None:
        return await segment_everything(engine, image, prompts.auto, prompts.confidence_threshold)
    raise InvalidPrompt("give a text, exemplar boxes, a box, points, or automatic parameters", field="prompts")


async def segment_concepts(engine, image: Image, prompts: ImagePrompts) -> ImageResult:
    """Every instance of each text (and/or like the exemplar boxes); several texts are merged best first."""
    texts: list[str | None] = list(prompts.texts)
    if not texts and prompts.exemplar_boxes:
        texts = [None]  # exemplar boxes alone: "find everything like these"
    if not texts:
        raise InvalidPrompt("text is required: describe the objects to find, e.g. text=person", field="text")
    results = await engine.segment_text(
        image, texts, thresholds=thresholds(prompts.confidence_threshold, prompts.mask_threshold, TEXT_CONFIDENCE),
        exemplar_boxes=prompts.exemplar_boxes or None, exemplar_labels=prompts.exemplar_labels,
        max_masks=prompts.max_masks)
    merged, mask_prompts = merge(results)
    return ImageResult(merged, results, mask_prompts if len(results) > 1 else None)


async def segment_objects(engine, image: Image, prompts: ImagePrompts) -> ImageResult:
    """Points (with at most one box): one object. Boxes alone: one object per box."""
    limits = thresholds(prompts.confidence_threshold, prompts.mask_threshold, OBJECT_CONFIDENCE)
    if prompts.points:
        if len(prompts.boxes) > 1:
            raise InvalidPrompt("points can refine exactly one box; send several boxes without points", field="boxes")
        labels = prompts.point_labels if prompts.point_labels is not None else [1] * len(prompts.points)
        result = await engine.segment_points(
            image, prompts.points, labels, box=prompts.boxes[0] if prompts.boxes else None, thresholds=limits,
            multimask=prompts.multimask, max_masks=prompts.max_masks)
    elif prompts.boxes:
        result = await engine.segment_boxes(image, prompts.boxes, thresholds=limits, max_masks=prompts.max_masks)
    else:
        raise InvalidPrompt("give a box or points", field="prompts")
    return ImageResult(result, [result])


async def segment_everything(engine, image: Image, auto: AutoParams, confidence: float | None = None) -> ImageResult:
    """Automatic mode: the grid and its quality filters (engine/automatic.py), then the confidence cut."""
    result = await engine.segment_auto(image, auto)
    cut = AUTO_CONFIDENCE if confidence is None else confidence
    if cut:
        result = result.subset(result.scores >= cut)
    return ImageResult(result, [result])


def auto_params(mask_threshold: float | None = None, **grid) -> AutoParams:
    """Automatic mode's parameters with serving's mask threshold (the grid's knobs keep SAM's defaults)."""
    return AutoParams(mask_threshold=MASK_THRESHOLD if mask_threshold is None else mask_threshold, **grid)


def merge(results: list[Segmentation]) -> tuple[Segmentation, list[str]]:
    """Several texts -> one list of instances, best first, remembering which text each answers."""
    if len(results) == 1:
        return results[0], [results[0].prompt or ""] * results[0].num_masks
    merged = Segmentation(
        masks=np.concatenate([r.masks for r in results]),
        boxes=np.concatenate([r.boxes for r in results]),
        scores=np.concatenate([r.scores for r in results]),
        prompt=", ".join(r.prompt or "" for r in results),
        prompt_indices=np.concatenate([np.full(r.num_masks, i) for i, r in enumerate(results)]),
        timing_ms=results[0].timing_ms,
    ).sorted_by_score()
    return merged, [results[i].prompt or "" for i in merged.prompt_indices]
