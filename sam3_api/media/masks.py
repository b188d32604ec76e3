"""Boolean masks -> PNG / COCO RLE / polygons, their inverses, and an overlay picture (OpenCV).

Conventions: masks are bool arrays of shape (H, W); coordinates are the original image's pixels,
x to the right, y down. RLE is exact; polygons are an approximation (see mask_to_polygons).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as coco_mask

from sam3_api.errors import InvalidPrompt

# Deterministic, high-contrast palette (RGB), cycled when there are more masks than colours, so the
# same mask index always gets the same colour across requests.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (0, 0, 128), (255, 225, 25),
)


def palette_colour(index: int) -> tuple[int, int, int]:
    """The palette colour of mask (or object id) `index`: PALETTE cycled, so ids beyond it repeat colours."""
    return PALETTE[index % len(PALETTE)]


def _as_bool_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def mask_to_png_base64(mask: np.ndarray) -> str:
    """Grayscale PNG (0 background, 255 object), base64-encoded."""
    ok, buffer = cv2.imencode(".png", _as_bool_mask(mask).astype(np.uint8) * 255)
    if not ok:
        raise ValueError("OpenCV could not encode the mask as PNG")
    return base64.b64encode(buffer.tobytes()).decode("ascii")


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE: {"size": [h, w], "counts": str}, decodable by pycocotools.mask.decode."""
    mask = _as_bool_mask(mask)
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))  # COCO RLE is column-major
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: dict[str, Any], *, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Inverse of mask_to_rle; also accepts uncompressed RLE (counts as a list of ints).

    Raises InvalidPrompt for malformed input, since RLE may arrive from a client (mask prompts). Pass
    expected_size=(h, w) for client input: the size is then checked before anything is allocated.
    """
    try:
        height, width = (int(v) for v in rle["size"])
        if height < 0 or width < 0:
            raise ValueError("size must be non-negative")
        if expected_size is not None and (height, width) != tuple(expected_size):
            raise ValueError(f"size {[height, width]} does not match the image's {list(expected_size)}")
        counts = rle["counts"]
        if isinstance(counts, list):
            runs = [int(c) for c in counts]
        else:
            runs = _compressed_runs(counts.encode("ascii") if isinstance(counts, str) else bytes(counts))
        # Validate before decoding: pycocotools' decode would turn short or empty counts into
        # uninitialised memory instead of failing.
        if min(runs, default=0) < 0 or sum(runs) != height * width:
            raise ValueError(f"run lengths must be >= 0 and sum to {height} x {width}")
    except (KeyError, TypeError, ValueError, UnicodeError) as exc:
        raise InvalidPrompt(f"not a valid COCO RLE ({{'size': [h, w], 'counts': ...}}): {exc}") from None
    # Runs alternate background / object, starting with background, in column-major order.
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    return np.ascontiguousarray(np.repeat(values, runs).reshape(width, height).T)


def _compressed_runs(counts: bytes) -> list[int]:
    """Run lengths of a COCO compressed counts string (pycocotools' rleFrString, with bounds checks)."""
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise ValueError("counts string ends inside a run length")
            char = counts[pos] - 48
            value |= (char & 0x1F) << shift
            more = bool(char & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and char & 0x10:
                value -= 1 << shift  # sign-extend
        if len(runs) > 2:
            value += runs[-2]  # runs after the third are stored as deltas
        runs.append(value)
    return runs


def mask_to_polygons(mask: np.ndarray) -> list[list[list[float]]]:
    """Rings of [[x, y], ...] in pixel coordinates: each outer boundary followed by its holes.

    Fill the rings together with the EVEN-ODD rule (SVG fill-rule="evenodd", canvas fill("evenodd"),
    polygons_to_mask): a hole ring then cuts out its hole, and an island inside a hole, which is
    listed as an outer ring of its own, is filled again. Vertices are the centres of boundary pixels,
    so the polygon's area is up to about half a pixel smaller along the edges than the mask; rings with
    fewer than 3 points (1-pixel specks, 1-pixel-wide lines) are dropped. Use RLE when exact pixels matter.
    """
    contours, hierarchy = cv2.findContours(
        _as_bool_mask(mask).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    if hierarchy is None:
        return []
    links = hierarchy[0]  # per contour: [next, previous, first_child, parent]
    rings: list[list[list[float]]] = []
    for index, ring in enumerate(contours):
        if links[index][3] != -1:
            continue  # holes are emitted right after their outer ring
        rings.extend(_ring_list(ring))
        child = links[index][2]
        while child != -1:
            rings.extend(_ring_list(contours[child]))
            child = links[child][0]
    return rings


def _ring_list(contour: np.ndarray) -> list[list[list[float]]]:
    points = contour.reshape(-1, 2)
    if len(points) < 3:
        return []
    return [[[float(x), float(y)] for x, y in points]]


def mask_to_outer_contours(mask: np.ndarray) -> list[list[list[int]]]:
    """Outer boundaries only, as [[x, y], ...] of int pixel coordinates (OpenCV RETR_EXTERNAL, simple chain).

    The polygon form other SAM services answer (holes are not listed, specks are kept); mask_to_polygons
    is the exact, hole-aware form of the native API.
    """
    contours, _ = cv2.findContours(_as_bool_mask(mask).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [[[int(x), int(y)] for x, y in contour.reshape(-1, 2)] for contour in contours if contour.size]


def mask_to_rgba_png_base64(mask: np.ndarray, colour: tuple[int, int, int]) -> str:
    """RGBA PNG at the mask's size: `colour` (RGB) and opaque on the object, transparent elsewhere; base64."""
    mask = _as_bool_mask(mask)
    bgra = np.zeros((*mask.shape, 4), dtype=np.uint8)
    bgra[mask] = (colour[2], colour[1], colour[0], 255)  # OpenCV writes 4-channel arrays as BGRA
    ok, buffer = cv2.imencode(".png", bgra)
    if not ok:
        raise ValueError("OpenCV could not encode the mask as PNG")
    return base64.b64encode(buffer.tobytes()).decode("ascii")


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression on mask IoU: a bool array, True for masks kept.

    Best score first; a mask is dropped when its IoU with a kept, better mask is above `iou_threshold`.
    IoU is computed on COCO RLE (pycocotools), so N masks never need an N x H x W float copy.
    """
    count = len(masks)
    keep = np.zeros(count, dtype=bool)
    if count == 0:
        return keep
    rles = coco_mask.encode(np.asfortranarray(np.moveaxis(np.asarray(masks, dtype=np.uint8), 0, -1)))
    ious = np.asarray(coco_mask.iou(rles, rles, [0] * count)).reshape(count, count)
    suppressed = np.zeros(count, dtype=bool)
    for index in np.argsort(-np.asarray(scores), kind="stable"):
        if suppressed[index]:
            continue
        keep[index] = True
        suppressed |= ious[index] > iou_threshold
    return keep


def polygons_to_mask(polygons: Sequence[Sequence[Sequence[float]]], height: int, width: int) -> np.ndarray:
    """Rasterise rings with the even-odd rule (cv2.fillPoly); inverse of mask_to_polygons."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    rings = [np.round(np.asarray(ring, dtype=np.float64)).astype(np.int32) for ring in polygons if len(ring)]
    if rings:
        cv2.fillPoly(canvas, rings, 1)  # OpenCV fills several contours with even-odd parity
    return canvas.astype(bool)


def mask_area(mask: np.ndarray) -> int:
    """Number of object pixels."""
    return int(np.count_nonzero(_as_bool_mask(mask)))


def mask_to_box(mask: np.ndarray) -> list[float]:
    """[x1, y1, x2, y2] in pixel-edge coordinates (x2 = last column + 1); [0, 0, 0, 0] when empty."""
    mask = _as_bool_mask(mask)
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def render_overlay(
    image: np.ndarray,
    masks: Sequence[np.ndarray] | np.ndarray,
    scores: Sequence[float],
    boxes: Sequence[Sequence[float]] | None = None,
    alpha: float = 0.5,
) -> bytes:
    """PNG of the RGB image with each mask tinted in its palette colour, outlined, and labelled with its score."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be RGB (H, W, 3), got shape {image.shape}")
    masks = [_as_bool_mask(m) for m in masks]
    if len(scores) != len(masks) or (boxes is not None and len(boxes) != len(masks)):
        raise ValueError("masks, scores and boxes must have the same length")
    canvas = image.copy()
    for index, mask in enumerate(masks):
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {index} has shape {mask.shape}, image is {image.shape[:2]}")
        tint_mask(canvas, mask, PALETTE[index % len(PALETTE)], alpha)
    # Outlines, boxes and labels go on after all fills so a later fill never hides an earlier label.
    for index, mask in enumerate(masks):
        colour = PALETTE[index % len(PALETTE)]
        outline_mask(canvas, mask, colour)
        if boxes is not None:
            x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[index])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        label_mask(canvas, mask, f"{float(scores[index]):.2f}", colour)
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("OpenCV could not encode the overlay as PNG")
    return buffer.tobytes()


def tint_mask(canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float) -> None:
    """Blend `colour` into the RGB canvas where mask is true, in place (alpha = the colour's weight)."""
    blended = canvas[mask].astype(np.float32) * (1.0 - alpha) + np.float32(colour) * alpha
    canvas[mask] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def outline_mask(canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Draw the mask's outer and hole boundaries on the canvas, 2 px wide, in place."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, colour, 2)


def label_mask(canvas: np.ndarray, mask: np.ndarray, text: str, colour: tuple[int, int, int]) -> None:
    """Score text on a filled box just above the mask's top-left corner (inside it at the top edge)."""
    if not mask.any():
        return
    x1, y1, _, _ = (int(v) for v in mask_to_box(mask))
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    top = y1 - height - baseline - 2 if y1 - height - baseline - 2 >= 0 else y1
    left = min(max(x1, 0), max(canvas.shape[1] - width - 2, 0))
    cv2.rectangle(canvas, (left, top), (left + width + 2, top + height + baseline + 2), colour, cv2.FILLED)
    # Black or white text, whichever reads better on this palette colour.
    ink = (0, 0, 0) if sum(colour) > 382 else (255, 255, 255)
    cv2.putText(canvas, text, (left + 1, top + height + 1), font, scale, ink, thickness, cv2.LINE_AA)
