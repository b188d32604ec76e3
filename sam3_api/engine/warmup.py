"""Warm-up: one blank image through every image path before the server says ready.

The first call of each model part pays costs that later calls do not: the first reads of the memory-mapped
weights (fp32 weights stay mapped from the checkpoint file until first touched), and the math libraries'
choice of a kernel per shape (oneDNN builds its CPU kernels on first use; cuDNN and cuBLAS pick theirs on a
GPU). Measured here at full size under bf16 on 2 CPU cores (in one process, under load): the prompt decoder's
first call 1.01 s and its next two 0.08 and 0.13 s; the text encoder's first text 0.45 s, a later one 0.08 s.
Without a warm-up the first user of a fresh server pays these, and a benchmark's first prompt measures them
(bench/precision.py's box, always the first request, gave bf16 / fp32 0.17 in one idle run and 0.54 in the next).
So the model runs once, outside the caches and the metrics, while /health still says loading; SAM3_WARMUP=false
skips it (a faster start on CPU: the warm-up costs one backbone pass, 5-45 s at full size).
"""

from __future__ import annotations

import time

import numpy as np

WARMUP_TEXT = "object"  # also the category name of automatic mode, so its cached features are not wasted
WARMUP_SIZE = 64  # any size works: the processor resizes every image to the model's square input


def warm_up(runtime) -> float:
    """Run the backbone, the text encoder and detector head, and the prompt decoder once; return the seconds."""
    started = time.perf_counter()
    pixels = np.zeros((WARMUP_SIZE, WARMUP_SIZE, 3), np.uint8)
    embedding = runtime.encode(pixels)
    # Thresholds only shape a result nobody reads (the defaults are serving's to decide, not the engine's).
    runtime.detect(embedding, WARMUP_TEXT, None, None, confidence_threshold=1.0, mask_threshold=0.5, limit=1)
    edge = WARMUP_SIZE / 8
    runtime.decode(embedding, boxes=[[edge, edge, WARMUP_SIZE - edge, WARMUP_SIZE - edge]])
    return time.perf_counter() - started
