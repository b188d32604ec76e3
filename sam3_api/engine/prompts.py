"""Prompt validation shared by every surface (REST, WebSocket, adapters): one place, one wording.

Coordinates are original-image pixels. Messages name the field and say how to fix it.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..errors import InvalidPrompt


def _finite(values: Sequence[float], field: str) -> None:
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise InvalidPrompt(f"{field} must contain finite numbers (no NaN or infinity), got {list(values)}", field=field)


def check_box(box: Sequence[float], width: int, height: int, field: str = "box") -> list[float]:
    """A box is [x1, y1, x2, y2] with x1 < x2, y1 < y2 and at least part of it inside the image."""
    if len(box) != 4:
        raise InvalidPrompt(f"{field} must have 4 numbers [x1, y1, x2, y2], got {len(box)}", field=field)
    _finite(box, field)
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        raise InvalidPrompt(
            f"{field} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] is empty or inverted: need x1 < x2 and y1 < y2", field=field
        )
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise InvalidPrompt(
            f"{field} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] lies outside the {width}x{height} image: "
            f"coordinates are original-image pixels with 0 <= x <= {width} and 0 <= y <= {height}",
            field=field,
        )
    return [x1, y1, x2, y2]


def check_boxes(boxes: Sequence[Sequence[float]], width: int, height: int, field: str = "boxes") -> list[list[float]]:
    if not boxes:
        raise InvalidPrompt(f"{field} is empty: give at least one [x1, y1, x2, y2] box", field=field)
    return [check_box(box, width, height, f"{field}[{i}]") for i, box in enumerate(boxes)]


def check_labels(labels: Sequence[int], count: int, field: str = "labels", what: str = "points") -> list[int]:
    if len(labels) != count:
        raise InvalidPrompt(f"{field} has {len(labels)} entries but there are {count} {what}: give one label each",
                            field=field)
    if any(label not in (0, 1) for label in labels):
        raise InvalidPrompt(f"{field} must be 1 (positive) or 0 (negative), got {list(labels)}", field=field)
    return [int(label) for label in labels]


def check_points(points: Sequence[Sequence[float]], width: int, height: int, field: str = "points") -> list[list[float]]:
    if not points:
        raise InvalidPrompt(f"{field} is empty: give at least one [x, y] point", field=field)
    checked = []
    for i, point in enumerate(points):
        if len(point) != 2:
            raise InvalidPrompt(f"{field}[{i}] must be [x, y], got {list(point)}", field=field)
        _finite(point, field)
        x, y = float(point[0]), float(point[1])
        if not (0 <= x <= width and 0 <= y <= height):
            raise InvalidPrompt(
                f"{field}[{i}] ({x:g}, {y:g}) lies outside the {width}x{height} image: "
                f"need 0 <= x <= {width} and 0 <= y <= {height}",
                field=field,
            )
        checked.append([x, y])
    return checked


def check_text(text: str, max_length: int, field: str = "text") -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InvalidPrompt(f"{field} is empty: describe the objects to find, e.g. \"cat\"", field=field)
    if len(cleaned) > max_length:
        raise InvalidPrompt(f"{field} is {len(cleaned)} characters; the limit is {max_length} (SAM3_MAX_TEXT_LENGTH)",
                            field=field)
    return cleaned


def check_threshold(value: float, field: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InvalidPrompt(f"{field} must be a number between 0 and 1, got {value}", field=field)
    return float(value)


def check_count(count: int, limit: int, field: str) -> None:
    if count > limit:
        raise InvalidPrompt(f"{field} has {count} entries; the limit is {limit} (SAM3_MAX_PROMPTS)", field=field)


# SAM 3's text encoder has 32 positions (start and end tokens included); longer prompts crash the model.
TEXT_TOKENS = 32


def fit_text(tokenizer, text: str, tokens: int = TEXT_TOKENS) -> str:
    """`text` cut to what the text encoder reads: SAM 3's own tokenizer keeps the first tokens of a long
    prompt, and so do we (transformers' processors pad to 32 but do not truncate, so the model would fail)."""
    ids = tokenizer(text)["input_ids"]
    if len(ids) <= tokens:
        return text
    kept = ids[1:tokens - 1]
    while kept:  # decoding can re-tokenize a little longer; drop tokens until it fits
        fitted = tokenizer.decode(kept, skip_special_tokens=True)
        if len(tokenizer(fitted)["input_ids"]) <= tokens:
            return fitted
        kept = kept[:-1]
    return ""
