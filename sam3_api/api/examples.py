"""Working request examples for /docs: a small real PNG, so "Try it out" succeeds as shipped."""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import numpy as np
from PIL import Image

EXAMPLE_URL = "https://upload.wikimedia.org/wikipedia/commons/3/3a/Cat03.jpg"


@lru_cache(maxsize=1)
def example_png_base64() -> str:
    """A 96x64 gradient PNG (a few KB): small enough for Swagger, real enough to decode and segment."""
    y, x = np.mgrid[0:64, 0:96]
    pixels = np.stack([x * 2.6, y * 4.0, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _scaled(fields: dict) -> dict:
    """Fit the example's coordinates (written for ~450x300 photos) into the 96x64 example image."""
    scaled = dict(fields)
    for key, limit in (("x1", 95), ("x2", 95), ("y1", 63), ("y2", 63)):
        if key in scaled:
            scaled[key] = min(scaled[key] // 5, limit)
    if "points_x" in scaled:
        scaled["points_x"] = [min(v // 5, 95) for v in scaled["points_x"]]
        scaled["points_y"] = [min(v // 5, 63) for v in scaled["points_y"]]
    return scaled


def base64_example(fields: dict) -> dict:
    return {"example": {"summary": "A small inline PNG",
                        "value": {"image_base64": example_png_base64(), **_scaled(fields)}}}


def url_example(fields: dict) -> dict:
    return {"example": {"summary": "A public photo", "value": {"image_url": EXAMPLE_URL, **fields}}}
