"""Engine benchmark: prints one JSON object of figures (no asserts; ratios within one run are what count).

    python bench/engine.py                 # dev-tiny
    python bench/engine.py --full          # full-size architecture, random weights (built once, cached)
    python bench/engine.py --model DIR     # any checkpoint directory or hub id
    python bench/engine.py --full --precisions fp32,auto   # both precisions in one run, with ratios

Measures load time; for text, single box, points and automatic prompts the latency on a new image (cold:
backbone + head) and on the same image again (cached: head only); peak RSS; parameter count and weight bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from bench.args import model_arguments  # noqa: E402

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
                                                                stability_score_thresh=0.0,
                                                                mask_threshold=MASK_THRESHOLD)),
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
    model_arguments(parser)
    parser.add_argument("--auto-points-per-side", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default="auto",
                        help="comma-separated SAM3_PRECISION values, run one after the other (e.g. fp32,auto)")
    args = parser.parse_args()

    model = str(ensure_full_size_checkpoint(Settings().cache_dir)) if args.full else args.model
    reports = {precision: one_precision(args, model, precision) for precision in args.precisions.split(",")}
    if len(reports) == 1:
        print(json.dumps(next(iter(reports.values())), indent=2))
        return
    print(json.dumps({**reports, "comparison": compare_precisions(reports)}, indent=2))


def compare_precisions(reports: dict) -> dict:
    """Every later precision's cold and cached times and cached-image bytes over the first one's (fp32)."""
    names = list(reports)
    base = reports[names[0]]
    out = {}
    for name in names[1:]:
        for kind, figures in reports[name]["prompts"].items():
            for key in ("cold_ms", "cached_ms"):
                out[f"{kind}_{key}_{name}_over_{names[0]}"] = round(figures[key] / base["prompts"][kind][key], 3)
        out[f"cache_bytes_per_image_{name}_over_{names[0]}"] = round(
            reports[name]["cache_bytes_per_image"] / base["cache_bytes_per_image"], 3)
    return out


def one_precision(args, model: str, precision: str) -> dict:
    engine = Sam3Engine(Settings(model=model, device=args.device, precision=precision))
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
        "precision": status.precision,
        "precision_reason": status.precision_reason,
        "load_s": load_s,
        "parameters": runtime.parameter_count,
        "weight_bytes": runtime.weight_bytes,
        "prompts": prompts,
        "backbone_runs": engine.backbone_runs,
        "cache_bytes_per_image": engine.cache.nbytes / max(len(engine.cache), 1),
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_over_weight_bytes": round(peak_rss_bytes() / runtime.weight_bytes, 3),
        "auto_points_per_side": args.auto_points_per_side,
    }
    engine.stop()
    del engine, runtime
    gc.collect()  # one full-size model at a time
    return report


if __name__ == "__main__":
    main()
