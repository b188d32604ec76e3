"""Server overhead per prompt kind and output format, and WebSocket clicks idle vs under heavy load. ONE JSON object.

    .venv/bin/python bench/server.py                  # dev-tiny, CPU or GPU
    .venv/bin/python bench/server.py --full           # full-size SAM 3 architecture, random weights (built once)
    .venv/bin/python bench/server.py --model facebook/sam3 --image photo.jpg

The server is `python app.py` in its own process on 127.0.0.1 (so client and server do not share a GIL).

overhead: for each prompt kind (text, box, points, auto) and output format (png, rle, polygon), requests on an
image whose embedding is cached. model_ms is the model thread's time (the response's timing.total_ms);
overhead_ms = client round trip - model_ms: HTTP, multipart parsing, image decode and hash, mask encoding
and JSON. share = overhead_ms / model_ms (medians).

clicks: WebSocket click round trips idle, then while heavy work runs beside them (automatic requests in a
loop, new-image encodes in another, one-box video jobs back to back in a third). The scheduler promises that a
click waits for at most one heavy step: bound_ms = 2 x idle p95 + the longest heavy step measured (a
new-image encode, one automatic decoder batch, or one video frame step: the mean of the server's own
sam3_model_seconds{kind="video"}). Figures, never asserts.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sam3_api.config import Settings  # noqa: E402
from bench.inprocess import receive  # noqa: E402
from sam3_api.engine.devmodel import ensure_full_size_checkpoint  # noqa: E402
from sam3_api.media.video import AnnotatedVideoWriter  # noqa: E402
from bench.args import model_arguments  # noqa: E402

DEFAULT_IMAGE = REPO / "static" / "samples" / "chelsea.png"
KINDS = {
    "text": {"text": "cat", "confidence_threshold": 0.0, "max_masks": 8},
    "box": {"x1": 60, "y1": 20, "x2": 400, "y2": 290},
    "points": {"points_x": "230,60", "points_y": "150,40", "labels": "1,0"},
    "auto": {"points_per_side": 8, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "max_masks": 16},
}
FORMATS = ("png", "rle", "polygon")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_arguments(parser)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--repeats", type=int, default=7, help="requests per kind and format")
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--load-timeout", type=float, default=1800.0)
    return parser.parse_args()


def start_server(model: str, device: str, load_timeout: float) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SAM3_MODEL": model, "SAM3_DEVICE": device, "HOST": "127.0.0.1", "PORT": str(port),
           "LOG_LEVEL": "WARNING", "SAM3_WS_IDLE_TTL_S": "3600", "SAM3_REQUEST_TIMEOUT_S": "0"}
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + load_timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            health = requests.get(f"{base_url}/health", timeout=2).json()
            if health["model_loaded"] or health["state"] == "failed":
                if health["state"] == "failed":
                    raise SystemExit(f"model failed to load: {health['message']}")
                return process, base_url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("the server did not become ready")


def stats(values: list[float]) -> dict:
    array = np.asarray(values)
    return {"p50": round(float(np.percentile(array, 50)), 2), "p95": round(float(np.percentile(array, 95)), 2),
            "max": round(float(array.max()), 2)}


def overhead(base_url: str, image: bytes, repeats: int) -> dict:
    """Median client round trip, model time and their difference per prompt kind and output format."""
    session, figures = requests.Session(), {}
    for kind, params in KINDS.items():
        for output_format in FORMATS:
            round_trips, model = [], []
            for attempt in range(repeats + 1):  # the first one is a warm-up (and may encode the image)
                started = time.perf_counter()
                response = session.post(f"{base_url}/segment/{kind}", files={"image": ("i.png", image)},
                                        data={**params, "output_format": output_format}, timeout=600)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if attempt:
                    round_trips.append(elapsed)
                    model.append(response.json()["timing"]["total_ms"])
            round_trip, model_ms = float(np.median(round_trips)), float(np.median(model))
            figures[f"{kind}/{output_format}"] = {
                "round_trip_ms": round(round_trip, 2), "model_ms": round(model_ms, 2),
                "overhead_ms": round(round_trip - model_ms, 2), "share": round((round_trip - model_ms) / model_ms, 3),
                "masks": response.json()["num_masks"]}
    return figures


def clicks(ws_url: str, image: bytes, count: int, rng: random.Random) -> list[float]:
    from websockets.sync.client import connect

    with connect(ws_url, max_size=None, open_timeout=60) as ws:
        receive(ws, "session_created")
        ws.send(json.dumps({"type": "init", "image": base64.b64encode(image).decode()}))
        loaded = receive(ws, "image_loaded")
        timings = []
        for i in range(count + 3):
            if i % 8 == 0:
                ws.send(json.dumps({"type": "reset"}))
                receive(ws, "points_cleared")
            click = {"type": "click", "x": rng.uniform(0, loaded["width"] - 1),
                     "y": rng.uniform(0, loaded["height"] - 1), "label": 1}
            started = time.perf_counter()
            ws.send(json.dumps(click))
            receive(ws, "segmentation_result")
            if i >= 3:  # three warm-up clicks
                timings.append((time.perf_counter() - started) * 1000)
        return timings


class HeavyLoad:
    """Automatic requests (32 x 32 grid), new-image encodes and video jobs, each in its own thread, until stopped."""

    def __init__(self, base_url: str, image: bytes, video: bytes):
        self.base_url, self.image, self.video = base_url, image, video
        self.stop = threading.Event()
        self.encode_ms: list[float] = []
        self.auto_batch_ms: list[float] = []
        self.video_running = threading.Event()  # clicks are timed once a video job is tracking, not decoding
        self.new_images = _new_images(image, 32)  # made up front: generating load must not compete with the server
        self.threads = [threading.Thread(target=target, daemon=True)
                        for target in (self._auto, self._encodes, self._videos)]

    def __enter__(self) -> "HeavyLoad":
        for thread in self.threads:
            thread.start()
        self.video_running.wait(timeout=300)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=600)

    def _auto(self) -> None:
        params = {"points_per_side": 32}  # SAM's default filters: what a client of "segment everything" sends
        with requests.Session() as session:
            while not self.stop.is_set():
                response = session.post(f"{self.base_url}/segment/auto", files={"image": ("i.png", self.image)},
                                        data=params, timeout=600)
                if response.ok:  # 32 x 32 points in batches: the batch count follows the server's default size
                    self.auto_batch_ms.append(response.json()["timing"]["total_ms"])

    def _encodes(self) -> None:
        with requests.Session() as session:
            for n in range(10**9):
                if self.stop.is_set():
                    return
                image = self.new_images[n % len(self.new_images)]
                response = session.post(f"{self.base_url}/segment/box", files={"image": ("n.png", image)},
                                        data=KINDS["box"], timeout=600)
                if response.ok:
                    self.encode_ms.append(response.json()["timing"]["encode_ms"])


    def _videos(self) -> None:
        """One boxed object tracked through the clip, job after job; a job still running when stopped is cancelled."""
        body = {"video_base64": base64.b64encode(self.video).decode(), "direction": "forward",
                "objects": [{"frame_index": 0, "box": [40, 30, 90, 80]}]}
        with requests.Session() as session:
            while not self.stop.is_set():
                job = session.post(f"{self.base_url}/video/jobs", json=body, timeout=600).json()
                url = f"{self.base_url}/video/jobs/{job['job_id']}"
                while (status := session.get(url, timeout=60).json()["status"]) in ("queued", "running"):
                    if status == "running":
                        self.video_running.set()
                    if self.stop.wait(0.2):
                        session.post(f"{url}/cancel", timeout=60)
                        break


def video_step_seconds(base_url: str) -> tuple[float, float]:
    """(sum, count) of the server's sam3_model_seconds{kind="video"}: its video frame steps so far."""
    text = requests.get(f"{base_url}/metrics", timeout=30).text
    found = {"sum": 0.0, "count": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("sam3_model_seconds_") and sample.labels.get("kind") == "video":
                found[sample.name.rsplit("_", 1)[1]] = sample.value
    return found["sum"], found["count"]


def clip_mp4(frames: int = 48) -> bytes:
    """A 320x240 H.264 clip with a moving square (the bench's video jobs track it)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "clip.mp4"
        with AnnotatedVideoWriter(path, 320, 240, 24.0, labels=False) as writer:
            for index in range(frames):
                frame = np.full((240, 320, 3), 40, dtype=np.uint8)
                frame[30:80, 40 + 2 * index:90 + 2 * index] = (230, 200, 60)
                writer.write(frame)
        return path.read_bytes()


def _new_images(image: bytes, count: int) -> list[bytes]:
    """`count` variants of the sample image (one pixel changed each): every one is a new encode for the server."""
    pixels = np.asarray(Image.open(io.BytesIO(image)).convert("RGB")).copy()
    variants = []
    for n in range(count):
        pixels[0, 0] = [n, 255 - n, n // 2]
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        variants.append(buffer.getvalue())
    return variants


def click_figures(base_url: str, image: bytes, count: int, seed: int, auto_batches: int) -> dict:
    ws_url = base_url.replace("http://", "ws://") + "/ws/realtime"
    idle = clicks(ws_url, image, count, random.Random(seed))
    steps_before = video_step_seconds(base_url)
    with HeavyLoad(base_url, image, clip_mp4()) as load:
        loaded = clicks(ws_url, image, count, random.Random(seed + 1))
    steps_after = video_step_seconds(base_url)
    video_steps = steps_after[1] - steps_before[1]
    video_step_ms = 1000 * (steps_after[0] - steps_before[0]) / video_steps if video_steps else 0.0
    heavy_step = max(max(load.encode_ms, default=0.0),
                     max(load.auto_batch_ms, default=0.0) / max(1, auto_batches), video_step_ms)
    idle_stats, loaded_stats = stats(idle), stats(loaded)
    bound = 2 * idle_stats["p95"] + heavy_step
    return {"idle_ms": idle_stats, "under_load_ms": loaded_stats,
            "heavy_work_done": {"automatic_requests": len(load.auto_batch_ms), "new_image_encodes": len(load.encode_ms),
                                "video_frame_steps": int(video_steps)},
            "video_step_ms": round(video_step_ms, 2),
            "heavy_step_ms": round(heavy_step, 2), "bound_ms": round(bound, 2),
            "p95_within_bound": loaded_stats["p95"] <= bound,
            "p95_ratio_loaded_to_idle": round(loaded_stats["p95"] / idle_stats["p95"], 2)}


def main() -> None:
    args = parse_args()
    model = str(ensure_full_size_checkpoint(Settings().cache_dir)) if args.full else args.model
    image = args.image.read_bytes()
    process, base_url = start_server(model, args.device, args.load_timeout)
    try:
        health = requests.get(f"{base_url}/health", timeout=10).json()
        figures = overhead(base_url, image, args.repeats)
        width, height = Image.open(io.BytesIO(image)).size
        auto_batches = _auto_batches(health["device"], args.full)
        click = click_figures(base_url, image, args.clicks, args.seed, auto_batches)
    finally:
        process.terminate()
        process.wait(timeout=60)
    print(json.dumps({"model": "full-size-random" if args.full else args.model, "device": health["device"],
                      "image_size": [width, height], "cpu_count": os.cpu_count(), "overhead": figures,
                      "clicks": click}))


def _auto_batches(device: str, full: bool) -> int:
    """Decoder batches of a 32 x 32 automatic run with the server's default batch size (automatic.py)."""
    batch = 64 if device == "cuda" or not full else 4
    return -(-32 * 32 // batch)


if __name__ == "__main__":
    main()
