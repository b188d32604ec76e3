"""Engine benchmark: prints one JSON object of figures (no asserts; ratios within one run are what count).

    python bench/engine.py                 # dev-tiny
    python bench/engine.py --full          # full-size architecture, random weights (built once, cached)
    python bench/engine.py --model DIR     # any checkpoint directory or hub id

Measures load time; for text, single box, points and automatic prompts the latency on a new image (cold:
backbone + head) and on the same image again (cached: head only); peak RSS; parameter count and weight bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sam3_api.config import Settings  # noqa: E402
from sam3_api.engine.devmodel import ensure_full_size_checkpoint  # noqa: E402
from sam3_api.engine.engine import Sam3Engine  # noqa: E402
from sam3_api.engine.types import AutoParams, Thresholds  # noqa: E402
from sam3_api.serving.defaults import MASK_THRESHOLD  # noqa: E402

def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _image(seed: int, height: int = 480, width: int = 640) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


async def _latency(call) -> float:
    started = time.perf_counter()
    await call()
    return round((time.perf_counter() - started) * 1000, 1)


KEEP_ALL = Thresholds(mask=MASK_THRESHOLD, confidence=0.0)  # every instance, as the latency figures always were


def _prompts(engine: Sam3Engine, auto_side: int):
    return {
        "text": lambda img: engine.segment_text(img, ["cat"], thresholds=KEEP_ALL),
        "box": lambda img: engine.segment_boxes(img, [[100, 100, 400, 300]], thresholds=KEEP_ALL),
        "points": lambda img: engine.segment_points(img, [[320, 240]], [1], thresholds=KEEP_ALL),
        "auto": lambda img: engine.segment_auto(img, AutoParams(points_per_side=auto_side, pred_iou_thresh=0.0,
                                                                stability_score_thresh=0.0)),
    }


async def measure(engine: Sam3Engine, auto_side: int, repeats: int) -> dict:
    figures = {}
    for index, (kind, run) in enumerate(_prompts(engine, auto_side).items()):
        image = await engine.prepare(_image(index))
        cold = await _latency(lambda: run(image))
        cached = sorted([await _latency(lambda: run(image)) for _ in range(repeats)])[repeats // 2]
        figures[kind] = {"cold_ms": cold, "cached_ms": cached, "cached_over_cold": round(cached / cold, 4),
                         "peak_rss_bytes_so_far": peak_rss_bytes()}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dev-tiny", help="dev-tiny, a checkpoint directory, or a hub id")
    parser.add_argument("--full", action="store_true", help="full-size architecture with random weights")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--auto-points-per-side", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = str(ensure_full_size_checkpoint(Settings().cache_dir)) if args.full else args.model
    engine = Sam3Engine(Settings(model=model, device=args.device))
    started = time.perf_counter()
    status = engine.wait_ready()
    load_s = round(time.perf_counter() - started, 2)
    if not status.ready:
        print(json.dumps({"model": model, "error": status.error}))
        sys.exit(1)
    prompts = asyncio.run(measure(engine, args.auto_points_per_side, args.repeats))
    runtime = engine.runtime
    report = {
        "model": "full-size random weights" if args.full else model,
        "device": status.device,
        "load_s": load_s,
        "parameters": runtime.parameter_count,
        "weight_bytes": runtime.weight_bytes,
        "prompts": prompts,
        "backbone_runs": engine.backbone_runs,
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_over_weight_bytes": round(peak_rss_bytes() / runtime.weight_bytes, 3),
        "auto_points_per_side": args.auto_points_per_side,
    }
    engine.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
