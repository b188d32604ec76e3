"""Shared fixtures: the real dev-tiny engine, apps over it, and images of awkward shapes."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam3_api.config import Settings
from sam3_api.engine.engine import Sam3Engine
from sam3_api.engine.types import Thresholds
from sam3_api.serving.defaults import MASK_THRESHOLD
from tests.http_server import server  # noqa: F401 - the 127.0.0.1 test HTTP server fixture, for every test

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "data"
# One cache for the whole run (and the next): dev-tiny is generated once, deterministically.
CACHE_DIR = Path(os.environ.get("SAM3_TEST_CACHE_DIR", REPO / ".cache" / "test"))
# Jobs written by one test run stay out of the user's data dir and out of the next run.
DATA_DIR = Path(tempfile.mkdtemp(prefix="sam3-test-data-"))


def dev_settings(**overrides) -> Settings:
    return Settings(**{"model": "dev-tiny", "cache_dir": CACHE_DIR, "data_dir": DATA_DIR, **overrides})


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def limits(confidence: float = 0.0, mask: float = MASK_THRESHOLD) -> Thresholds:
    """Thresholds of a direct engine call in a test (for requests, serving/defaults.py fills them in)."""
    return Thresholds(mask=mask, confidence=confidence)


class ManualClock:
    """A wall clock that moves only when a test says so: `store.clock = clock; clock.advance(ttl + 1)`."""

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def engine() -> Sam3Engine:
    """A ready dev-tiny engine shared by the engine tests (its state is per call, never per test)."""
    engine = Sam3Engine(dev_settings())
    status = engine.wait_ready(timeout=300)
    assert status.ready, status.error
    yield engine
    engine.stop()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """PNG signature + a valid IHDR claiming width x height, then a junk IDAT: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"junk") + _png_chunk(b"IEND", b"")
