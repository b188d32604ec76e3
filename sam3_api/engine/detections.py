"""The detector's output for one concept, kept and resized to the original image (Sam3Runtime.detect)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

MASK_CHUNK = 16  # detector masks upsampled to the original size this many at a time


@dataclass
class Detections:
    """Detector output for one concept, already at the original image size."""

    masks: torch.Tensor  # (N, H, W) bool
    boxes: torch.Tensor  # (N, 4) xyxy pixels
    scores: torch.Tensor  # (N,)


def instances(outputs, confidence_threshold: float, mask_threshold: float, size: tuple[int, int],
              limit: int | None = None) -> Detections:
    """Detector output -> kept instances at the original size, best score first (at most `limit` of them).

    The same arithmetic as Sam3Processor.post_process_instance_segmentation (score = sigmoid(logit) x
    presence, boxes scaled from [0, 1], bilinear resize, sigmoid > mask_threshold), but it upsamples only the
    kept queries, a chunk at a time, straight to bool: the processor's version materialises every query as
    float and then int64 at the original size (~0.7 GB for 200 queries on a 640x480 image). With `limit`
    only the best `limit` are upsampled: a text prompt answers max_masks of the detector's 200 queries.
    """
    scores = outputs.pred_logits[0].float().sigmoid() * outputs.presence_logits[0].float().sigmoid()
    kept = (scores > confidence_threshold).nonzero().flatten()
    kept = kept[torch.sort(scores[kept], descending=True, stable=True).indices[:limit]]
    height, width = size
    scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=scores.device)
    boxes = outputs.pred_boxes[0][kept].float() * scale
    logits = outputs.pred_masks[0][kept]
    masks = torch.zeros((logits.shape[0], height, width), dtype=torch.bool)
    for start in range(0, logits.shape[0], MASK_CHUNK):
        chunk = logits[start : start + MASK_CHUNK].float().unsqueeze(0)
        resized = torch.nn.functional.interpolate(chunk, size=size, mode="bilinear", align_corners=False)[0]
        masks[start : start + MASK_CHUNK] = (resized.sigmoid() > mask_threshold).cpu()
    return Detections(masks=masks, boxes=boxes.cpu(), scores=scores[kept].cpu())
