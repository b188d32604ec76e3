"""Batch labeling throughput: batch jobs (B images per backbone step) vs the same images one by one to
/segment/text. ONE JSON object.

    .venv/bin/python bench/batch.py                   # dev-tiny, 40 images of 640x480, B = 1, 2, 4
    .venv/bin/python bench/batch.py --full --images 4 # full-size SAM 3 architecture, random weights

The server is `python app.py` in its own process on 127.0.0.1 with the embedding cache off, so neither way
reuses the other's backbone runs; it is started once per B (SAM3_BATCH_BACKBONE_IMAGES). Both ways send the
same distinct images with the same text and thresholds from one client: `one_by_one` (on the first server)
posts each image to /segment/text and waits for its answer before the next; `batch_jobs[B]` uploads them all
in one POST /batch/jobs and polls until the job ends (upload included). `speedup` is one_by_one's time over
the job's; `masks_equal` compares the masks found.

`backbone` times the vision backbone alone in this process (Sam3Runtime.encode_many over the same images in
steps of B), the B values interleaved round after round so a load that changes during the run (a shared
machine) touches every B alike: seconds per image for each B and its ratio to B = 1. The server figures
include the heads, decoding and HTTP; this one says whether batching the ViT pays on this device, which is how
SAM3_BATCH_BACKBONE_IMAGES=0 picks its per-device default. Figures, never asserts; compare ratios in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.server import start_server  # noqa: E402
from sam3_api.client import Sam3Client  # noqa: E402
from sam3_api.config import Settings  # noqa: E402
from sam3_api.engine.devmodel import ensure_full_size_checkpoint  # noqa: E402
from sam3_api.engine.loading import load_runtime  # noqa: E402
from bench.args import model_arguments  # noqa: E402

TEXT = "cat"
OPTIONS = {"confidence_threshold": 0.0, "max_masks": 8}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_arguments(parser)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the generated images")
    parser.add_argument("--steps", default="1,2,4", help="images per backbone step (B) to measure, comma-separated")
    parser.add_argument("--backbone-rounds", type=int, default=2, help="rounds of the in-process backbone timing "
                                                                         "(0: skip it)")
    parser.add_argument("--no-server", action="store_true", help="only the in-process backbone timing")
    parser.add_argument("--load-timeout", type=float, default=1800.0)
    return parser.parse_args()


def write_images(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """Distinct noisy images with a few bright squares (PNG)."""
    rng, paths = np.random.default_rng(0), []
    for index in range(count):
        pixels = (rng.random((height, width, 3)) * 120).astype(np.uint8)
        for _ in range(4):
            x, y = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
            pixels[y:y + 60, x:x + 60] = rng.integers(120, 255, 3)
        path = folder / f"{index:04d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def one_by_one(client: Sam3Client, paths: list[Path]) -> dict:
    started = time.perf_counter()
    masks = sum(client.segment_text(path, [TEXT], **OPTIONS)["num_masks"] for path in paths)
    elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 3), "images_per_s": float(f"{len(paths) / elapsed:.4g}"), "masks": masks}


def batch_job(client: Sam3Client, paths: list[Path]) -> dict:
    started = time.perf_counter()
    job = client.submit_batch(files=paths, texts=[TEXT], **OPTIONS)
    job = client.wait(job.job_id, poll_s=0.1)
    elapsed = time.perf_counter() - started
    masks = sum(len(record["annotations"]) for record in client.results(job.job_id))
    return {"seconds": round(elapsed, 3), "images_per_s": float(f"{len(paths) / elapsed:.4g}"), "masks": masks,
            "server_images_per_s": job.progress["images_per_s"], "status": job.status}


def measure(model: str, args: argparse.Namespace, paths: list[Path], step: int, single: bool) -> dict:
    """One server with B = `step`: a batch job over `paths` (and, when `single`, the one-by-one run first)."""
    os.environ["SAM3_BATCH_BACKBONE_IMAGES"] = str(step)
    process, base_url = start_server(model, args.device, args.load_timeout)
    try:
        with Sam3Client(base_url, timeout_s=3600) as client:
            client.segment_text(paths[0], [TEXT], **OPTIONS)  # warm-up (first-call allocations)
            figures = {"one_by_one": one_by_one(client, paths)} if single else {}
            figures["batch_job"] = batch_job(client, paths)
            figures["device"] = client.http.get("/health").json()["device"]
    finally:
        process.terminate()
        process.wait(timeout=60)
    return figures


def backbone(model: str, device: str, paths: list[Path], steps: list[int], rounds: int) -> dict:
    """Seconds per image of the backbone alone, for each B, on a runtime loaded in this process."""
    runtime = load_runtime(Settings(model=model, device=device))[0]
    return backbone_timing(runtime, [np.asarray(Image.open(path).convert("RGB")) for path in paths], steps, rounds)


def backbone_timing(runtime, images: list[np.ndarray], steps: list[int], rounds: int) -> dict:
    """Sam3Runtime.encode_many over `images` in steps of B, the B values interleaved in every round (also run by
    bench/gpu_report.py on a lent GPU)."""
    for step in steps:  # warm-up: a GPU picks its kernels per batch shape on that shape's first call
        runtime.encode_many(images[:step])
    seconds = {step: 0.0 for step in steps}
    for _ in range(rounds):
        for step in steps:
            started = time.perf_counter()
            for start in range(0, len(images), step):
                runtime.encode_many(images[start:start + step])
            if runtime.device.type == "cuda":
                torch.cuda.synchronize()
            seconds[step] += time.perf_counter() - started
    per_image = {step: total / (rounds * len(images)) for step, total in seconds.items()}
    return {"precision": runtime.precision.name, "images": len(images), "rounds": rounds,
            "seconds_per_image": {str(step): round(value, 4) for step, value in per_image.items()},
            "vs_b1": {str(step): round(per_image[steps[0]] / value, 3) for step, value in per_image.items()}}


def main() -> None:
    args = parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    model = str(ensure_full_size_checkpoint(Settings().cache_dir)) if args.full else args.model
    os.environ.update(SAM3_EMBEDDING_CACHE_ENTRIES="0", SAM3_EMBEDDING_CACHE_BYTES="0")
    steps = [int(step) for step in args.steps.split(",")]
    figures = {"model": "full-size-random" if args.full else args.model, "images": args.images,
               "image_size": [width, height], "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as folder:
        paths = write_images(Path(folder), args.images, width, height)
        if not args.no_server:
            figures.update(server_figures(model, args, paths, steps))
        if args.backbone_rounds:  # after the servers have stopped: the two never share the CPU
            figures["backbone"] = backbone(model, args.device, paths, steps, args.backbone_rounds)
    print(json.dumps(figures))


def server_figures(model: str, args: argparse.Namespace, paths: list[Path], steps: list[int]) -> dict:
    runs = {step: measure(model, args, paths, step, single=index == 0) for index, step in enumerate(steps)}
    single = runs[steps[0]]["one_by_one"]
    jobs = {str(step): {**run["batch_job"], "speedup": round(single["seconds"] / run["batch_job"]["seconds"], 3),
                        "masks_equal": single["masks"] == run["batch_job"]["masks"]} for step, run in runs.items()}
    return {"device": runs[steps[0]]["device"], "one_by_one": single, "batch_jobs": jobs}


if __name__ == "__main__":
    main()
