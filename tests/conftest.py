"""Shared fixtures: the real dev-tiny engine, apps over it, and images of awkward shapes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sam3_api.config import Settings
from sam3_api.engine.bf16_rope import rotate_in_compute_dtype
from sam3_api.engine.engine import Sam3Engine
from sam3_api.engine.types import AutoParams, Thresholds
from sam3_api.engine.video import VideoRequest
from sam3_api.serving.defaults import MASK_THRESHOLD
from tests.http_server import server  # noqa: F401 - the 127.0.0.1 test HTTP server fixture, for every test

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "data"
# One cache for the whole run (and the next): dev-tiny is generated once, deterministically.
CACHE_DIR = Path(os.environ.get("SAM3_TEST_CACHE_DIR", REPO / ".cache" / "test"))
# Jobs written by one test run stay out of the user's data dir and out of the next run.
DATA_DIR = Path(tempfile.mkdtemp(prefix="sam3-test-data-"))


def dev_settings(**overrides) -> Settings:
    """dev-tiny settings; fp32 unless a test asks otherwise, so results do not depend on the CPU running them
    (auto would pick bf16 on a CPU with AMX / AVX-512 BF16). tests/unit/test_precision.py covers auto and bf16."""
    return Settings(**{"model": "dev-tiny", "cache_dir": CACHE_DIR, "data_dir": DATA_DIR, "precision": "fp32",
                       **overrides})


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def limits(confidence: float = 0.0, mask: float = MASK_THRESHOLD) -> Thresholds:
    """Thresholds of a direct engine call in a test (for requests, serving/defaults.py fills them in)."""
    return Thresholds(mask=mask, confidence=confidence)


def video_request(**fields) -> VideoRequest:
    """A VideoRequest of a direct engine call in a test, at the default mask threshold unless it names one."""
    return VideoRequest(**{"mask_threshold": MASK_THRESHOLD, **fields})


def auto_params(**fields) -> AutoParams:
    """Automatic-mode knobs of a direct engine call in a test, at the default mask threshold unless named."""
    return AutoParams(**{"mask_threshold": MASK_THRESHOLD, **fields})


class ManualClock:
    """A wall clock that moves only when a test says so: `store.clock = clock; clock.advance(ttl + 1)`.

    `sleep` is asyncio.sleep on this clock (for code that waits out a TTL, e.g. Services.idle_sleep): it returns
    once the test has advanced the clock that far. `started` counts the sleeps begun, `slept` those ended.
    """

    POLL_S = 0.002  # how often a sleeper looks at the clock (real time; no TTL is waited out)

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else now
        self.started = self.slept = 0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        deadline = self.now + seconds
        self.started += 1
        while self.now < deadline:
            await asyncio.sleep(self.POLL_S)
        self.slept += 1

    def wait_for_sleep(self, after: int, timeout: float = 30.0) -> None:
        """Block the test's thread until more than `after` sleeps began: the code under test now waits on this
        clock, so advancing it wakes that code."""
        deadline = time.monotonic() + timeout
        while self.started <= after:
            assert time.monotonic() < deadline, "the code under test never slept on the manual clock"
            time.sleep(self.POLL_S)


@pytest.fixture(scope="session")
def engine() -> Sam3Engine:
    """A ready dev-tiny engine shared by the engine tests (its state is per call, never per test)."""
    engine = Sam3Engine(dev_settings())
    status = engine.wait_ready(timeout=300)
    assert status.ready, status.error
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def bf16_engine() -> Sam3Engine:
    """A ready dev-tiny engine under SAM3_PRECISION=bf16 (bf16 autocast, bf16 caches) for parity tests."""
    engine = Sam3Engine(dev_settings(precision="bf16"))
    status = engine.wait_ready(timeout=300)
    assert status.ready and status.precision == "bf16", status
    yield engine
    engine.stop()


@pytest.fixture(params=["fp32", "bf16"])
def precision(request) -> str:
    return request.param


def engine_for(request, precision: str) -> Sam3Engine:
    """The shared engine of that precision (fp32: `engine`, bf16: `bf16_engine`)."""
    return request.getfixturevalue("engine" if precision == "fp32" else "bf16_engine")


def reference_model(model_class, checkpoint, precision: str):
    """transformers' model as a parity test's reference. Under bf16 its ViT rotates in bf16, as the engine's
    does (sam3_api/engine/bf16_rope.py, tested on its own in test_precision.py): on dev-tiny's random weights a
    tracked mask can flip on that rounding alone, and these tests compare the pipelines, not the rounding."""
    model = model_class.from_pretrained(str(checkpoint)).eval()
    if precision == "bf16":
        rotate_in_compute_dtype(model)
    return model


def autocast_for(precision: str):
    """The context a reference pipeline runs in to be compared with our engine under that precision."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """PNG signature + a valid IHDR claiming width x height, then a junk IDAT: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"junk") + _png_chunk(b"IEND", b"")
