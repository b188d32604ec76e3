"""Label Studio results (region JSON) from masks: brush RLE, polygons and rectangles in percent."""

from __future__ import annotations

import contextlib
import io
import uuid

import numpy as np

from ...media.masks import mask_to_outer_contours
from .labeling import Control

# label-studio-sdk is installed without its dependencies (requirements-no-deps.txt): its brush converter needs
# only numpy and Pillow, but the package's converter/__init__.py also tries the full export Converter and
# prints that ImportError (pandas, lxml, ...) to stdout; the brush module loads either way.
with contextlib.redirect_stdout(io.StringIO()):
    from label_studio_sdk.converter.brush import mask2rle


def _region(control: Control, kind: str, value: dict, label: str, score: float, width: int, height: int) -> dict:
    return {"id": uuid.uuid4().hex[:10], "from_name": control.name, "to_name": control.to_name, "type": kind,
            "original_width": width, "original_height": height, "image_rotation": 0,
            "value": {**value, kind: [label]}, "score": round(float(score), 6), "readonly": False}


def instance_results(control: Control, label: str, mask: np.ndarray, box, score: float) -> list[dict]:
    """The regions of one found instance in `control`'s form (a polygon per outer contour of its mask)."""
    height, width = mask.shape
    if control.kind == "brush":
        value = {"format": "rle", "rle": brush_rle(mask)}
        return [_region(control, "brushlabels", value, label, score, width, height)]
    if control.kind == "polygon":
        return [_region(control, "polygonlabels", {"points": _percent_points(contour, width, height), "closed": True},
                        label, score, width, height)
                for contour in mask_to_outer_contours(mask) if len(contour) >= 3]
    x0, y0, x1, y1 = (float(v) for v in box)
    value = {"x": 100 * x0 / width, "y": 100 * y0 / height, "width": 100 * (x1 - x0) / width,
             "height": 100 * (y1 - y0) / height, "rotation": 0}
    return [_region(control, "rectanglelabels", value, label, score, width, height)]


def brush_rle(mask: np.ndarray) -> list[int]:
    """Label Studio's brush RLE of a 2-d mask (truthy = painted), by label-studio-sdk's converter."""
    return mask2rle(np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8))


def _percent_points(contour: list[list[int]], width: int, height: int) -> list[list[float]]:
    return [[100 * x / width, 100 * y / height] for x, y in contour]


def prediction(results: list[dict], model_version: str) -> dict:
    """One task's prediction: its regions, their mean score, and the model version."""
    scores = [r["score"] for r in results]
    return {"result": results, "score": float(np.mean(scores)) if scores else 0.0, "model_version": model_version}
