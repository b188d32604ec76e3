"""Every figure worth having from a GPU lent for a few minutes, in ONE command and ONE JSON object.

    .venv/bin/python bench/gpu_report.py                       # CUDA: full-size random weights, built on the GPU
    .venv/bin/python bench/gpu_report.py --model dev-tiny --device cpu --frames 3 --clicks 4 --repeats 1
                                                               # what CI runs (tests/unit/test_gpu_report.py)

Builds the full-size architecture with random weights on the device (no download; reused when already
built), starts the real server in this process (uvicorn on 127.0.0.1, the app's own engine) and measures:
- prompts: cold (new image: backbone + head) and cached (same image again) time of text, box, points, auto;
- clicks: WebSocket click round trips on an initialised image, p50 / p95;
- video: frames per second tracking 1, 4 and 16 boxed objects and a text concept (bench/video.py's clip);
- backbone: the ViT alone on one frame; batch_backbone: seconds per image with B = 1, 2, 4 images per backbone
  step (bench/batch.py; what SAM3_BATCH_BACKBONE_IMAGES=0 should pick on this device);
- peak GPU memory, torch / CUDA / driver versions, the precision and why.
Every section checks the budget (--budget-s, default 450 s: inside 8 minutes with start-up); a section that
would start past it is listed in "skipped" and its figures are null, so a slow device still prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import batch as batch_bench  # noqa: E402
from bench import engine as engine_bench  # noqa: E402
from bench import video as video_bench  # noqa: E402
from bench.inprocess import start_server  # noqa: E402
from bench.server import DEFAULT_IMAGE, clicks  # noqa: E402
from sam3_api.config import Settings  # noqa: E402
from sam3_api.engine.checkpoint import is_current_checkpoint, write_checkpoint  # noqa: E402
from sam3_api.engine.devmodel import dev_tokenizer, full_size_config  # noqa: E402
from sam3_api.engine.video import VideoRequest  # noqa: E402
from sam3_api.engine.video.memory import memory_window  # noqa: E402
from sam3_api.serving.defaults import MASK_THRESHOLD  # noqa: E402

VIDEO_OBJECTS = (1, 4, 16)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="full", help="full (random weights, built on the device), dev-tiny, "
                                                        "a checkpoint directory or a hub id")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--budget-s", type=float, default=450.0, help="start no section after this many seconds")
    parser.add_argument("--frames", type=int, default=24, help="frames per video run")
    parser.add_argument("--clicks", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5, help="cached runs per prompt kind (median)")
    parser.add_argument("--auto-points-per-side", type=int, default=32)
    parser.add_argument("--backbone-repeats", type=int, default=5,
                        help="timed runs of the ViT alone (median) and rounds of the batched backbone")
    parser.add_argument("--cache-dir", type=Path, help="where the checkpoint is built (default: SAM3_CACHE_DIR)")
    return parser.parse_args()


class Budget:
    """Seconds since the start; sections past the budget are skipped, and named. A section that raises is named
    in `failed` with its error and the others still run: a GPU is lent for minutes, so one broken figure must
    not cost the rest of the report."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.clock = clock
        self.started, self.seconds, self.skipped, self.failed = clock(), seconds, [], {}

    def elapsed(self) -> float:
        return round(self.clock() - self.started, 2)

    def run(self, name: str, section):
        if self.elapsed() > self.seconds:
            self.skipped.append(name)
            return None
        try:
            return section()
        except Exception as error:  # noqa: BLE001 - reported in the JSON, the next section runs
            traceback.print_exc()
            self.failed[name] = f"{type(error).__name__}: {error}"[:500]
            return None


def device_name(requested: str) -> str:
    return "cuda" if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()) else "cpu"


def build_checkpoint(cache_dir: Path, device: str) -> tuple[str, float]:
    """The full-size architecture with random weights, drawn on `device` (seconds on a GPU), built once."""
    path = cache_dir / ("full-size-random" if device == "cpu" else f"full-size-random-{device}")
    started = time.perf_counter()
    if not is_current_checkpoint(path):
        write_checkpoint(path, full_size_config(), dev_tokenizer(), device=device)
        if device == "cuda":
            torch.cuda.empty_cache()
    return str(path), round(time.perf_counter() - started, 2)


def versions() -> dict:
    driver = None
    if torch.cuda.is_available():
        try:
            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            driver = None
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "driver": driver,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def click_figures(host: str, image: bytes, count: int) -> dict:
    """WebSocket click round trips on one initialised image (the image's backbone runs once, at init)."""
    timings = clicks(f"ws://{host}/ws/realtime", image, count, random.Random(0))
    return {"p50": round(float(np.percentile(timings, 50)), 2), "p95": round(float(np.percentile(timings, 95)), 2),
            "clicks": len(timings)}


def video_figures(engine, frames: list[np.ndarray], budget: Budget) -> dict:
    height, width = frames[0].shape[:2]
    requests = {f"box_{n}": VideoRequest(objects=video_bench.boxes(n, height, width), direction="forward",
                                         mask_threshold=MASK_THRESHOLD) for n in VIDEO_OBJECTS}
    requests["text"] = VideoRequest(texts=["square"], mask_threshold=MASK_THRESHOLD)
    # Untimed: the tracker's memory (mask memories and object pointers) grows over its first frames, a new
    # attention shape on each, and a GPU picks kernels per shape on first use; without this the first timed run
    # pays for every run after it.
    window = memory_window(engine.runtime.model.tracker_model.config) + 1
    warm_up = budget.run("video.warm_up", lambda: asyncio.run(
        video_bench.track(engine, frames[:window], requests["box_1"])))
    figures = {"warm_up_s": None if warm_up is None else round(warm_up["frames"] / warm_up["frames_per_s"], 3)}
    for name, request in requests.items():
        run = budget.run(f"video.{name}", lambda: asyncio.run(video_bench.track(engine, frames, request)))
        figures[name] = None if run is None else {key: run[key] for key in ("frames_per_s", "per_frame_s",
                                                                           "first_frame_result_s")}
    return figures


def peak_gpu_memory(device: str) -> int | None:
    return int(torch.cuda.max_memory_allocated()) if device == "cuda" else None


def measure(args: argparse.Namespace, model: str, device: str, budget: Budget) -> dict:
    settings = Settings(model=model, device=device, precision=args.precision, ws_idle_ttl_s=3600.0,
                        request_timeout_s=0, **({"cache_dir": args.cache_dir} if args.cache_dir else {}))
    app, server, thread, host = start_server(settings)
    try:
        status = app.state.services.engine.wait_ready(timeout=1800)
        if not status.ready:
            raise SystemExit(f"model failed to load: {status.error}")
        engine = app.state.services.engine
        report = {"model": model, "device": status.device, "precision": status.precision,
                  "precision_reason": status.precision_reason, "load_s": round(status.load_seconds or 0, 2),
                  "parameters": engine.runtime.parameter_count}
        report["prompts"] = budget.run("prompts", lambda: asyncio.run(
            engine_bench.measure(engine, args.auto_points_per_side, args.repeats)))
        report["click_ms"] = budget.run("clicks", lambda: click_figures(host, DEFAULT_IMAGE.read_bytes(), args.clicks))
        frames = video_bench.clip(args.frames, 480, 640)
        report["backbone_s"] = budget.run("backbone", lambda: round(
            video_bench.backbone_seconds(engine, frames, args.backbone_repeats), 4))
        report["batch_backbone"] = budget.run("batch_backbone", lambda: batch_bench.backbone_timing(
            engine.runtime, frames[:4], [1, 2, 4], args.backbone_repeats))
        report["video"] = video_figures(engine, frames, budget)
        report["cache_bytes_per_image"] = engine.cache.nbytes / max(len(engine.cache), 1)
        return report
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def main() -> None:
    args = parse_args()
    budget = Budget(args.budget_s)
    device = device_name(args.device)
    cache_dir = args.cache_dir or Settings().cache_dir
    model, build_s = (build_checkpoint(cache_dir, device) if args.model == "full" else (args.model, None))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    report = {"versions": versions(), "checkpoint_build_s": build_s, **measure(args, model, device, budget)}
    report.update({"peak_gpu_memory_bytes": peak_gpu_memory(device), "frames_per_video_run": args.frames,
                   "budget_s": args.budget_s, "elapsed_s": budget.elapsed(), "skipped": budget.skipped,
                   "failed": budget.failed})
    if args.model == "full":
        report["model"] = "full-size random weights"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
