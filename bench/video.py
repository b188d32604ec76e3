"""Video tracking benchmark: prints one JSON object of figures (no asserts; compare ratios within one run).

    python bench/video.py                   # dev-tiny, 120 frames at 640x480
    python bench/video.py --full            # full-size architecture, random weights, a few frames
    python bench/video.py --model DIR --frames 300 --device cuda
    python bench/video.py --full --objects 1 --no-text --precisions fp32,auto   # both precisions, one run

Runs the engine in-process (the same VideoRun the job API uses, stepped on the model thread) and reports, for
box tracking with 1, 4 and 16 objects and for text tracking: frames per second, time to the first frame
result, the steady per-frame time and its ratio to the backbone's own time (the ViT on one frame: the floor
of any per-frame tracking), and the process's memory (RSS) at frame 100 and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sam3_api.config import Settings  # noqa: E402
from sam3_api.engine.devmodel import ensure_full_size_checkpoint  # noqa: E402
from sam3_api.engine.engine import Sam3Engine  # noqa: E402
from sam3_api.engine.video import ArrayFrames, ObjectPrompt, VideoRequest  # noqa: E402
from sam3_api.serving.defaults import MASK_THRESHOLD  # noqa: E402
from bench.args import model_arguments  # noqa: E402


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def clip(frames: int, height: int, width: int) -> list[np.ndarray]:
    """Sixteen squares drifting over a textured background."""
    background = (np.random.default_rng(0).random((height, width, 3)) * 90).astype(np.uint8)
    out = []
    for index in range(frames):
        frame = background.copy()
        for k in range(16):
            x = (40 + 150 * (k % 4) + 2 * index) % (width - 60)
            y = 30 + 110 * (k // 4) % (height - 60)
            frame[y:y + 50, x:x + 50] = (60 + 12 * k, 255 - 10 * k, 120)
        out.append(frame)
    return out


def boxes(count: int, height: int, width: int) -> list[ObjectPrompt]:
    return [ObjectPrompt(k + 1, 0, box=[float((40 + 150 * (k % 4)) % (width - 60)), float(30 + 110 * (k // 4) % (height - 60)),
                                        float((40 + 150 * (k % 4)) % (width - 60) + 50),
                                        float(30 + 110 * (k // 4) % (height - 60) + 50)])
            for k in range(count)]


async def track(engine: Sam3Engine, frames: list[np.ndarray], request: VideoRequest) -> dict:
    run = engine.video_run(ArrayFrames(frames), request)
    started = time.perf_counter()
    first_result = rss_at_100 = None
    step_times, done = [], 0
    masks = {}
    while not run.done:
        step_started = time.perf_counter()
        finished = await engine.video_step(run)
        masks.update({result.frame: [obj.mask for obj in result.objects] for result in finished})
        step_times.append(time.perf_counter() - step_started)
        done += len(finished)
        if finished and first_result is None:
            first_result = time.perf_counter() - started
        if rss_at_100 is None and done >= 100:
            rss_at_100 = rss_bytes()
    elapsed = time.perf_counter() - started
    frame_steps = step_times[len(request.objects) + 2:] or step_times  # after the set-up and prompt steps
    report = {"frames": len(frames), "frames_per_s": round(len(frames) / elapsed, 3),
              "first_frame_result_s": round(first_result or elapsed, 3),
              "per_frame_s": round(statistics.median(frame_steps), 4),
              "rss_at_frame_100_bytes": rss_at_100, "rss_at_end_bytes": rss_bytes()}
    if len(frames) <= 10:
        report["frame_step_s"] = [round(t, 3) for t in frame_steps]
    report["_masks"] = masks  # RLE per frame, for comparing precisions (dropped from the JSON)
    return report


@torch.inference_mode()
def backbone_seconds(engine: Sam3Engine, frames: list[np.ndarray], repeats: int) -> float:
    """Median time of the ViT alone on one preprocessed frame (what every tracked frame must pay)."""
    runtime = engine.runtime
    pixels = runtime.video_processor.video_processor(videos=[frames[:1]], return_tensors="pt").pixel_values_videos[0]
    pixels = pixels.to(runtime.device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with runtime._autocast():
            runtime.model.detector_model.vision_encoder.backbone(pixels).last_hidden_state.float().sum().item()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def measure(engine: Sam3Engine, frames: list[np.ndarray], object_counts: list[int], text: bool) -> dict:
    height, width = frames[0].shape[:2]
    figures = {}
    for count in object_counts:
        request = VideoRequest(objects=boxes(count, height, width), direction="forward", mask_threshold=MASK_THRESHOLD)
        figures[f"box_{count}"] = await track(engine, frames, request)
    if text:
        figures["text"] = await track(engine, frames, VideoRequest(texts=["square"], mask_threshold=MASK_THRESHOLD))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_arguments(parser)
    parser.add_argument("--frames", type=int, help="frames per run (default 120; 4 with --full on CPU)")
    parser.add_argument("--objects", default="1,4,16", help="object counts of the box runs")
    parser.add_argument("--no-text", action="store_true", help="skip the text-tracking run")
    parser.add_argument("--size", default="640x480", help="frame size WxH")
    parser.add_argument("--precisions", default="auto",
                        help="comma-separated SAM3_PRECISION values, run one after the other (e.g. fp32,auto)")
    args = parser.parse_args()

    model = str(ensure_full_size_checkpoint(Settings().cache_dir)) if args.full else args.model
    reports = {precision: one_precision(args, model, precision) for precision in args.precisions.split(",")}
    comparison = compare_precisions(reports)
    for report in reports.values():
        for figures in report["runs"].values():
            figures.pop("_masks")
    print(json.dumps(reports[args.precisions] if len(reports) == 1 else {**reports, "comparison": comparison},
                     indent=2))


def compare_precisions(reports: dict) -> dict:
    """Per-frame time and the tracked objects' mask IoU of every precision against the first one (fp32)."""
    names = list(reports)
    base = reports[names[0]]["runs"]
    out = {}
    for name in names[1:]:
        for run, figures in reports[name]["runs"].items():
            out[f"{run}_per_frame_{name}_over_{names[0]}"] = round(figures["per_frame_s"] / base[run]["per_frame_s"], 3)
            ious = [rle_iou(a, b) for frame, objects in figures["_masks"].items()
                    for a, b in zip(base[run]["_masks"].get(frame, []), objects)]
            out[f"{run}_mask_iou_min_{name}_vs_{names[0]}"] = round(min(ious), 4) if ious else None
        backbone = reports[name]["backbone_s"] / reports[names[0]]["backbone_s"]
        out[f"backbone_{name}_over_{names[0]}"] = round(backbone, 3)
    return out


def rle_iou(a: dict, b: dict) -> float:
    from pycocotools import mask as coco_mask

    one, two = ({"size": m["size"], "counts": m["counts"].encode()} for m in (a, b))
    if coco_mask.area(one) == 0 and coco_mask.area(two) == 0:
        return 1.0
    return float(coco_mask.iou([one], [two], [0])[0][0])


def one_precision(args, model: str, precision: str) -> dict:
    engine = Sam3Engine(Settings(model=model, device=args.device, precision=precision))
    status = engine.wait_ready()
    if not status.ready:
        print(json.dumps({"model": model, "error": status.error}))
        sys.exit(1)
    slow = args.full and status.device == "cpu"
    count = args.frames or (4 if slow else 120)
    width, height = (int(v) for v in args.size.split("x"))
    frames = clip(count, height, width)
    backbone = backbone_seconds(engine, frames, 1 if slow else 5)
    counts = [int(c) for c in args.objects.split(",") if c]
    runs = asyncio.run(measure(engine, frames, counts, not args.no_text))
    for figures in runs.values():
        figures["per_frame_over_backbone"] = round(figures["per_frame_s"] / backbone, 3)
    report = {"model": "full-size random weights" if args.full else model, "device": status.device,
              "precision": status.precision, "precision_reason": status.precision_reason,
              "frame_size": [width, height], "backbone_s": round(backbone, 4), "runs": runs,
              "parameters": engine.runtime.parameter_count}
    engine.stop()
    del engine
    gc.collect()  # one full-size model at a time
    return report


if __name__ == "__main__":
    main()
