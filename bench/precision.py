"""fp32 against the default precision, the server started the newcomer's way, twice in one run. ONE JSON object.

    .venv/bin/python bench/precision.py            # dev-tiny
    .venv/bin/python bench/precision.py --full     # full-size architecture, random weights (built once)

Starts `./start_server.sh` on 127.0.0.1 with SAM3_PRECISION=fp32, then again with SAM3_PRECISION unset (the
default, auto), one at a time. Each time: a box, points and a text prompt, each on a NEW image (cold: the
backbone runs), the client's round trip and the server's own timing (with --rounds N, N samples of each in
turn and their medians: one cold sample on a shared machine swings by a second or more); WebSocket clicks on
a cached image (p50); bytes per cached image from /metrics (sam3_embedding_cache_bytes / entries); what
/health says about the precision. Then the ratios default / fp32 and the box, points and text masks' IoU
between the two runs (text: each of the fp32 run's masks against its best match in the default run, averaged).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from pycocotools import mask as coco_mask

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.server import DEFAULT_IMAGE, clicks  # noqa: E402
from sam3_api.config import Settings  # noqa: E402
from sam3_api.engine.devmodel import ensure_full_size_checkpoint  # noqa: E402

PROMPTS = {
    "box": {"x1": 60, "y1": 20, "x2": 400, "y2": 290},
    "points": {"points_x": "230,60", "points_y": "150,40", "labels": "1,0"},
    "text": {"text": "cat", "confidence_threshold": 0.0, "max_masks": 8},
}


def start(model: str, precision: str | None, load_timeout: float) -> tuple[subprocess.Popen, str]:
    """./start_server.sh as a newcomer runs it, with only the model, the loopback address and the precision set."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key != "SAM3_PRECISION"}
    env.update({"SAM3_MODEL": model, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING"})
    if precision:
        env["SAM3_PRECISION"] = precision
    process = subprocess.Popen(["./start_server.sh"], cwd=REPO, env=env, start_new_session=True, stdout=sys.stderr)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + load_timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            health = requests.get(f"{base_url}/health", timeout=2).json()
            if health["state"] == "failed":
                raise SystemExit(f"model failed to load: {health['message']}")
            if health["model_loaded"]:
                return process, base_url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    stop(process)
    raise SystemExit("the server did not become ready")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=120)


def variant(image: bytes, seed: int) -> bytes:
    """The photo with a few pixels changed: a new embedding-cache key, the same content."""
    pixels = np.array(Image.open(io.BytesIO(image)).convert("RGB"))
    pixels[0, :8] = np.random.default_rng(seed).integers(0, 255, (8, 3))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def masks_of(answer: dict) -> list[np.ndarray]:
    return [coco_mask.decode({"size": m["size"], "counts": m["counts"].encode()}).astype(bool) for m in answer["masks"]]


def cache_bytes_per_image(base_url: str) -> float:
    values = {sample.name: sample.value for family in text_string_to_metric_families(
        requests.get(f"{base_url}/metrics", timeout=30).text) for sample in family.samples}
    return values["sam3_embedding_cache_bytes"] / max(values["sam3_embedding_cache_entries"], 1)


def cold_prompts(base_url: str, image: bytes, rounds: int) -> tuple[dict, dict]:
    """Each prompt kind on a NEW image variant, `rounds` times in turn (box, points, text, box, ...): the median
    round trip and model time (the samples too when there are several), and the first round's masks."""
    samples: dict[str, list[tuple[float, float]]] = {kind: [] for kind in PROMPTS}
    masks = {}
    for round_index in range(rounds):
        for offset, (kind, params) in enumerate(PROMPTS.items(), start=1):
            began = time.perf_counter()
            response = requests.post(f"{base_url}/segment/{kind}",
                                     files={"image": ("i.png", variant(image, round_index * len(PROMPTS) + offset))},
                                     data={**params, "output_format": "rle"}, timeout=1800)
            response.raise_for_status()
            answer = response.json()
            samples[kind].append(((time.perf_counter() - began) * 1000, answer["timing"].get("total_ms")))
            masks.setdefault(kind, masks_of(answer))
    figures = {}
    for kind, pairs in samples.items():
        figures[f"{kind}_cold_ms"] = round(float(np.median([trip for trip, _ in pairs])), 1)
        figures[f"{kind}_cold_model_ms"] = round(float(np.median([model for _, model in pairs])), 1)
        if rounds > 1:
            figures[f"{kind}_cold_model_ms_samples"] = [round(model, 1) for _, model in pairs]
    return figures, masks


def one_server(model: str, precision: str | None, image: bytes, click_count: int, load_timeout: float,
               rounds: int) -> tuple[dict, dict]:
    started = time.perf_counter()
    process, base_url = start(model, precision, load_timeout)
    figures: dict = {"start_to_ready_s": round(time.perf_counter() - started, 1)}
    try:
        health = requests.get(f"{base_url}/health", timeout=30).json()
        figures["health"] = {key: health.get(key) for key in ("precision", "precision_reason", "device")}
        cold, masks = cold_prompts(base_url, image, rounds)
        figures.update(cold)
        timings = clicks(base_url.replace("http", "ws") + "/ws/realtime", image, click_count, random.Random(0))
        figures["click_p50_ms"] = round(float(np.percentile(timings, 50)), 1)
        figures["click_p95_ms"] = round(float(np.percentile(timings, 95)), 1)
        figures["cache_bytes_per_image"] = cache_bytes_per_image(base_url)
    finally:
        stop(process)
    return figures, masks


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else round(float(np.logical_and(a, b).sum() / union), 4)


def compare(fp32: dict, default: dict, masks32: dict, masks_default: dict) -> dict:
    ratios = {f"{key}_default_over_fp32": round(default[key] / fp32[key], 3)
              for key in ("box_cold_ms", "points_cold_ms", "text_cold_ms", "click_p50_ms", "cache_bytes_per_image")}
    ious = {f"{kind}_mask_iou": iou(masks32[kind][0], masks_default[kind][0]) for kind in ("box", "points")}
    text = [max((iou(a, b) for b in masks_default["text"]), default=0.0) for a in masks32["text"]]
    ious["text_mask_iou_mean_best_match"] = round(float(np.mean(text)), 4) if text else None
    return {**ratios, **ious}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dev-tiny")
    parser.add_argument("--full", action="store_true", help="full-size random-weight checkpoint (built once)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--load-timeout", type=float, default=1800.0)
    parser.add_argument("--rounds", type=int, default=1, help="cold samples per prompt kind (medians are compared)")
    args = parser.parse_args()
    model = str(ensure_full_size_checkpoint(Settings().cache_dir)) if args.full else args.model
    image = args.image.read_bytes()
    fp32, masks32 = one_server(model, "fp32", image, args.clicks, args.load_timeout, args.rounds)
    default, masks_default = one_server(model, None, image, args.clicks, args.load_timeout, args.rounds)
    print(json.dumps({"model": "full-size random weights" if args.full else model, "fp32": fp32,
                      "default": default, "comparison": compare(fp32, default, masks32, masks_default)}, indent=2))


if __name__ == "__main__":
    main()
