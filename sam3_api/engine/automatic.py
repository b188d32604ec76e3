"""Automatic "segment everything", as SAM's automatic mask generator does it, on the shared tracker.

A regular point grid is decoded in batches (three candidate masks per point); candidates are filtered by
predicted IoU and stability score, de-duplicated with box NMS (torchvision), cleaned of small regions, and
only the survivors are upscaled to the original image size. Filtering and NMS run on the low-resolution
logits: upscaling a thousand candidates to a 12-megapixel image first would cost gigabytes for nothing.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch
from torchvision.ops import batched_nms, masks_to_boxes

from .runtime import ImageEmbedding, Sam3Runtime, probability_to_logit
from .types import AutoParams, Segmentation

UPSCALE_CHUNK = 16
MAX_BATCH = 64  # SAM's automatic mask generator default; keeps a GPU busy
# The decoder copies the image's tracker features for every prompt in a batch, and its upscaling layers
# need about four times that. On a CPU the batch is sized to this budget: at full size that is 4 prompts
# (as fast as 64, ~0.3 GB instead of ~3.5 GB extra); the tiny dev model still gets 64.
CPU_BATCH_BYTES = 384 * 1024**2
FP32_BYTES = 4


def default_batch(embedding: ImageEmbedding, device_type: str) -> int:
    if device_type == "cuda":
        return MAX_BATCH
    # The decoder reads fp32 copies of the features whatever the cache holds (Precision.decoder_features).
    per_prompt = 4 * sum(t.numel() * FP32_BYTES for t in embedding.tracker)
    return max(1, min(MAX_BATCH, CPU_BATCH_BYTES // per_prompt))


def point_grid(points_per_side: int, height: int, width: int) -> list[list[float]]:
    """Cell-centred grid in original pixels, like SAM's build_point_grid."""
    offsets = (np.arange(points_per_side) + 0.5) / points_per_side
    return [[float(x * width), float(y * height)] for y in offsets for x in offsets]


def stability_scores(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """IoU between the mask binarised at threshold+offset and at threshold-offset (SAM's definition)."""
    intersections = (logits > threshold + offset).flatten(1).sum(-1)
    unions = (logits > threshold - offset).flatten(1).sum(-1)
    return intersections / unions.clamp(min=1)


def _boxes_of(masks: torch.Tensor) -> torch.Tensor:
    """xyxy pixel-edge boxes of boolean masks (a full mask -> [0, 0, W, H]); [0, 0, 0, 0] when empty.

    torchvision's helper returns the last pixel's index, so add 1 to x2, y2: the box then covers the pixels.
    """
    boxes = torch.zeros((masks.shape[0], 4), dtype=torch.float32)
    non_empty = masks.flatten(1).any(-1)
    if non_empty.any():
        boxes[non_empty] = masks_to_boxes(masks[non_empty]).float() + torch.tensor([0.0, 0.0, 1.0, 1.0])
    return boxes


def remove_small_regions(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Drop islands and fill holes smaller than min_area pixels (SAM's postprocessing, with OpenCV)."""
    for fill_holes in (True, False):
        working = (~mask if fill_holes else mask).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(working, connectivity=8)
        small = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] < min_area]
        if small:
            region = np.isin(labels, small)
            mask = mask | region if fill_holes else mask & ~region
    return mask


def _candidates(runtime: Sam3Runtime, embedding: ImageEmbedding, params: AutoParams,
                between_batches: Callable[[], None]):
    """Decode the grid in batches; keep low-res logits and scores of candidates passing both filters.

    `between_batches` runs before each batch: the model worker's checkpoint, which stops an abandoned request
    there and lets waiting interactive prompts run, so a click never waits for a whole automatic run.
    """
    height, width = embedding.original_size
    grid = point_grid(params.points_per_side, height, width)
    threshold = probability_to_logit(params.mask_threshold)
    kept_logits, kept_scores = [], []
    batch_size = params.points_per_batch or default_batch(embedding, runtime.device.type)
    for start in range(0, len(grid), batch_size):
        between_batches()
        batch = grid[start : start + batch_size]
        logits, iou = runtime.decode(
            embedding, points=[[point] for point in batch], labels=[[1]] * len(batch), multimask=True
        )
        logits, iou = logits.flatten(0, 1).cpu(), iou.flatten().cpu()
        keep = iou > params.pred_iou_thresh
        if params.stability_score_thresh > 0:
            stability = stability_scores(logits, threshold, params.stability_score_offset)
            keep &= stability > params.stability_score_thresh
        kept_logits.append(logits[keep].half())  # only ever thresholded again: half precision is plenty
        kept_scores.append(iou[keep])
    return torch.cat(kept_logits), torch.cat(kept_scores)


def generate(runtime: Sam3Runtime, embedding: ImageEmbedding, params: AutoParams,
             between_batches: Callable[[], None] = lambda: None) -> Segmentation:
    """Segment everything in the image; returns masks at the original size, sorted by predicted IoU."""
    height, width = embedding.original_size
    logits, scores = _candidates(runtime, embedding, params, between_batches)
    threshold = probability_to_logit(params.mask_threshold)
    if logits.shape[0] == 0:
        return Segmentation.empty(height, width, prompt="auto")
    low_h, low_w = logits.shape[-2:]
    scale = torch.tensor([width / low_w, height / low_h, width / low_w, height / low_h])
    low_boxes = _boxes_of(logits > threshold) * scale
    keep = batched_nms(low_boxes, scores, torch.zeros_like(scores, dtype=torch.long), params.box_nms_thresh)
    if params.max_masks is not None:
        keep = keep[: params.max_masks]
    masks = torch.cat(
        [
            runtime.upscale(logits[chunk].float().to(runtime.device), (height, width)).cpu() > threshold
            for chunk in keep.split(UPSCALE_CHUNK)
        ]
    ).numpy()
    if params.min_mask_region_area > 0:
        masks = np.stack([remove_small_regions(m, params.min_mask_region_area) for m in masks])
    non_empty = masks.reshape(len(masks), -1).any(-1)
    if params.min_mask_region_area > 0:
        non_empty &= masks.reshape(len(masks), -1).sum(-1) >= params.min_mask_region_area
    masks = masks[non_empty]
    result = Segmentation(
        masks=masks,
        boxes=_boxes_of(torch.from_numpy(masks)).numpy(),
        scores=scores[keep][torch.from_numpy(non_empty)].numpy().astype(np.float32),
        prompt="auto",
    )
    return result.sorted_by_score()
