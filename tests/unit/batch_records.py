"""Per-image batch records built from known masks, for the export tests (and their judges)."""

from __future__ import annotations

import numpy as np

from sam3_api.media.masks import mask_to_box, mask_to_rle

CATEGORIES = ["cat", "dog", "traffic light"]


def blob(height: int, width: int, *rectangles: tuple[int, int, int, int]) -> np.ndarray:
    """A bool mask with each (x1, y1, x2, y2) rectangle set."""
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in rectangles:
        mask[y1:y2, x1:x2] = True
    return mask


def ring(height: int, width: int) -> np.ndarray:
    """A square with a square hole (64 pixels)."""
    mask = blob(height, width, (60, 10, 90, 40))
    mask[20:28, 70:78] = False
    return mask


def annotation(category: str, score: float, mask: np.ndarray) -> dict:
    return {"category": category, "score": score, "box": mask_to_box(mask), "mask": mask_to_rle(mask)}


def sample_records() -> list[dict]:
    """Four records: two instances (one in two parts, one with a hole), a failure, no objects, then one in three
    parts, one overlapping it and an empty mask. Instances exported: 2 + 0 + 0 + 2 (an empty mask labels nothing).
    Masks are tens of pixels wide: polygons trace pixel centres, half a pixel inside the mask's edge."""
    h1, w1, h4, w4 = 120, 160, 192, 256
    two_parts = blob(h1, w1, (8, 8, 40, 48), (100, 60, 152, 112))
    three_parts = blob(h4, w4, (8, 8, 48, 48), (120, 20, 160, 80), (200, 120, 248, 184))
    overlapping = blob(h4, w4, (32, 32, 136, 64))
    return [
        {"file_name": "photos/a.jpg", "width": w1, "height": h1,
         "annotations": [annotation("cat", 0.9, two_parts), annotation("dog", 0.8, ring(h1, w1))]},
        {"file_name": "broken.jpg", "error": "image is not a decodable image", "annotations": []},
        {"file_name": "empty.png", "width": 20, "height": 10, "annotations": []},
        {"file_name": "street/b.png", "width": w4, "height": h4,
         "annotations": [annotation("traffic light", 0.95, three_parts), annotation("cat", 0.5, overlapping),
                         annotation("dog", 0.4, np.zeros((h4, w4), dtype=bool))]},
    ]


def exported_masks() -> dict[str, list[tuple[str, np.ndarray]]]:
    """file_name -> [(category, mask)] of the instances an export should hold, in record order."""
    from sam3_api.media.masks import rle_to_mask

    return {record["file_name"]: [(item["category"], rle_to_mask(item["mask"])) for item in record["annotations"]
                                  if rle_to_mask(item["mask"]).any()]
            for record in sample_records() if not record.get("error")}
