"""Interactive video over a real WebSocket (/ws/video, uvicorn on 127.0.0.1 in this process). Prints ONE JSON object.

    .venv/bin/python bench/ws_video.py                   # dev-tiny, 120 frames at 640x480
    .venv/bin/python bench/ws_video.py --full            # full-size SAM 3 architecture, random weights, 16 frames
    .venv/bin/python bench/ws_video.py --model facebook/sam3 --frames 300 --device cuda

What a user of /app's video mode feels, timed on the client from sending a message to its answer:
upload (POST /video/uploads: the isolated decode), open, the first click on frame 0 until its mask arrives (the
frame's backbone runs), more clicks on that frame (cached: no backbone), a click on a frame not seen yet,
then Track (propagate forward over the whole clip: frames/s and the time to the first tracked frame), and a
correction halfway followed by a re-track from there. --full builds the released architecture with random
weights (~860M parameters; minutes of CPU and a few GB of disk the first time) and reuses it afterwards.
Figures, never asserts.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sam3_api.config import Settings  # noqa: E402
from sam3_api.engine.devmodel import ensure_full_size_checkpoint  # noqa: E402
from bench.inprocess import start_server  # noqa: E402
from sam3_api.media.video import AnnotatedVideoWriter  # noqa: E402
from bench.args import model_arguments  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_arguments(parser, cache_dir=True)
    parser.add_argument("--frames", type=int, default=None, help="clip length (default 120; --full: 16)")
    parser.add_argument("--size", default="640x480", help="clip size WxH")
    parser.add_argument("--clicks", type=int, default=20, help="cached clicks timed on frame 0")
    parser.add_argument("--load-timeout", type=float, default=1800.0)
    return parser.parse_args()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def write_clip(path: Path, frames: int, width: int, height: int) -> Path:
    """Sixteen squares drifting over a textured background, as an H.264 MP4."""
    background = (np.random.default_rng(0).random((height, width, 3)) * 90).astype(np.uint8)
    with AnnotatedVideoWriter(path, width, height, 24.0, labels=False) as writer:
        for index in range(frames):
            frame = background.copy()
            for k in range(16):
                x = (40 + (width // 4) * (k % 4) + 2 * index) % max(1, width - 60)
                y = (30 + (height // 4) * (k // 4)) % max(1, height - 60)
                frame[y:y + 50, x:x + 50] = (60 + 12 * k, 255 - 10 * k, 120)
            writer.write(frame)
    return path


def upload(host: str, clip: Path) -> tuple[dict, float]:
    body = json.dumps({"video_base64": base64.b64encode(clip.read_bytes()).decode()}).encode()
    request = urllib.request.Request(f"http://{host}/video/uploads", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read()), ms_since(started)


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def ask(ws, message: dict, answer: str) -> tuple[dict, float]:
    """Send a message, wait for the event `answer` (an error event aborts); (event, client ms)."""
    started = time.perf_counter()
    ws.send(json.dumps(message))
    while True:
        event = json.loads(ws.recv())
        if event["type"] == answer:
            return event, ms_since(started)
        if event["type"] == "error":
            raise RuntimeError(f"server error: {event}")


def track(ws, **options) -> dict:
    """Propagate; frames/s on the client clock, the time to the first tracked frame, the server's fps."""
    started = time.perf_counter()
    ws.send(json.dumps({"type": "propagate", **options}))
    first = None
    while True:
        event = json.loads(ws.recv())
        if event["type"] == "frame_result" and first is None:
            first = ms_since(started)
        elif event["type"] == "propagation_done":
            seconds = time.perf_counter() - started
            return {"frames": event["frames_done"], "seconds": round(seconds, 3),
                    "frames_per_second": round(event["frames_done"] / seconds, 2), "first_frame_ms": first,
                    "server_frames_per_second": event["fps"]}
        elif event["type"] == "error":
            raise RuntimeError(f"server error: {event}")


def measure(host: str, clip: Path, clicks: int) -> dict:
    from websockets.sync.client import connect

    uploaded, upload_ms = upload(host, clip)
    width, height, count = uploaded["width"], uploaded["height"], uploaded["frame_count"]
    with connect(f"ws://{host}/ws/video", max_size=None, open_timeout=30) as ws:
        json.loads(ws.recv())  # session_created
        _, open_ms = ask(ws, {"type": "open", "video_id": uploaded["video_id"]}, "video_opened")
        point = {"type": "click", "frame": 0, "x": 65, "y": 55}
        first, first_ms = ask(ws, point, "prompt_result")
        cached = [ask(ws, {**point, "x": 65 + i % 5, "label": i % 2}, "prompt_result") for i in range(clicks)]
        _, new_frame_ms = ask(ws, {**point, "frame": count // 2, "object_id": 2}, "prompt_result")
        ask(ws, {"type": "remove_object", "object_id": 2}, "object_removed")
        tracked = track(ws, direction="forward")
        _, correction_ms = ask(ws, {**point, "frame": count // 2, "x": 80}, "prompt_result")
        retracked = track(ws, direction="forward")
    return {
        "clip": {"frames": count, "size": [width, height]}, "upload_and_decode_ms": upload_ms, "open_ms": open_ms,
        "first_click_to_mask_ms": first_ms, "first_click_ran_backbone": not first["cached"],
        "cached_click_ms": {"p50": round(statistics.median(ms for _, ms in cached), 2),
                            "max": round(max(ms for _, ms in cached), 2),
                            "all_cached": all(event["cached"] for event, _ in cached)} if cached else None,
        "click_on_a_new_frame_ms": new_frame_ms, "propagation": tracked,
        "correction_click_ms": correction_ms, "retrack_from_correction": retracked,
    }


def main() -> None:
    args = parse_args()
    overrides = {"device": args.device, "ws_idle_ttl_s": 3600.0}
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir
    with tempfile.TemporaryDirectory() as scratch:
        overrides["data_dir"] = Path(scratch) / "data"
        settings = Settings(model=args.model, **overrides)
        if args.full:
            settings = Settings(model=str(ensure_full_size_checkpoint(settings.cache_dir)), **overrides)
        width, height = (int(v) for v in args.size.lower().split("x"))
        frames = args.frames or (16 if args.full else 120)
        clip = write_clip(Path(scratch) / "clip.mp4", frames, width, height)
        app, server, thread, host = start_server(settings)
        try:
            status = app.state.services.engine.wait_ready(timeout=args.load_timeout)
            if not status.ready:
                raise SystemExit(f"model failed to load: {status.error}")
            figures = measure(host, clip, args.clicks)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    print(json.dumps({"model": "full-size-random" if args.full else args.model, "device": status.device,
                      "transport": "websocket /ws/video, uvicorn on 127.0.0.1", "cpu_count": os.cpu_count(),
                      "torch_num_threads_env": os.environ.get("TORCH_NUM_THREADS"), **figures,
                      "rss_bytes_end": rss_bytes()}))


if __name__ == "__main__":
    main()
