"""Click -> mask round trip over a real WebSocket (uvicorn on 127.0.0.1, in this process). Prints ONE JSON object.

    .venv/bin/python bench/ws_clicks.py                  # dev-tiny (random weights, tiny), CPU or GPU
    .venv/bin/python bench/ws_clicks.py --full           # full-size SAM 3 architecture, random weights
    .venv/bin/python bench/ws_clicks.py --model facebook/sam3 --image photo.jpg

It measures what a user of /app feels: init (upload + decode + backbone) once, then `--clicks` clicks at
random points, each timed from sending {"type": "click"} to receiving its segmentation_result. It also counts
backbone runs during the clicks, which must be 0 (every click runs only the prompt decoder).
--full builds the released architecture with random weights (~860M parameters; minutes of CPU and a few GB
of disk the first time) into <cache>/full-size-random and reuses it afterwards. Figures, never asserts.
On CPU, OpenMP's busy-waiting worker threads can starve the event loop (clicks of ~500 ms on a 2-core box);
the output records OMP_WAIT_POLICY and TORCH_NUM_THREADS so runs can be compared.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sam3_api.config import Settings  # noqa: E402
from sam3_api.engine.devmodel import ensure_full_size_checkpoint  # noqa: E402
from bench.inprocess import receive, start_server  # noqa: E402
from bench.args import model_arguments  # noqa: E402

DEFAULT_IMAGE = REPO / "static" / "samples" / "chelsea.png"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_arguments(parser, cache_dir=True)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3, help="clicks before the timed ones (not counted)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--load-timeout", type=float, default=1800.0)
    return parser.parse_args()


def timed_clicks(ws, count: int, width: int, height: int, rng: random.Random) -> tuple[list[float], list[float]]:
    """Round trips (client clock) and server latencies of `count` clicks at random points, in ms."""
    round_trips, server = [], []
    for i in range(count):
        if i % 8 == 0:  # keep prompts short like a real user: start over every few clicks
            ws.send(json.dumps({"type": "reset"}))
            receive(ws, "points_cleared")
        click = {"type": "click", "x": rng.uniform(0, width - 1), "y": rng.uniform(0, height - 1),
                 "label": 1 if i % 8 == 0 else rng.choice([0, 1])}
        started = time.perf_counter()
        ws.send(json.dumps(click))
        result = receive(ws, "segmentation_result")
        round_trips.append((time.perf_counter() - started) * 1000)
        server.append(result["latency_ms"])
    return round_trips, server


def stats(values: list[float]) -> dict:
    array = np.asarray(values)
    return {"p50": round(float(np.percentile(array, 50)), 2), "p95": round(float(np.percentile(array, 95)), 2),
            "mean": round(float(array.mean()), 2), "max": round(float(array.max()), 2)}


def measure(app, url: str, image_bytes: bytes, args: argparse.Namespace) -> dict:
    from websockets.sync.client import connect

    engine = app.state.services.engine
    data_url = "data:image/png;base64," + base64.b64encode(image_bytes).decode()
    with connect(url, max_size=None, open_timeout=30) as ws:
        receive(ws, "session_created")
        runs_before_init, started = engine.backbone_runs, time.perf_counter()
        ws.send(json.dumps({"type": "init", "image": data_url}))
        loaded = receive(ws, "image_loaded")
        init_ms = (time.perf_counter() - started) * 1000
        width, height, rng = loaded["width"], loaded["height"], random.Random(args.seed)
        warm, _ = timed_clicks(ws, args.warmup, width, height, rng)
        runs_before_clicks = engine.backbone_runs
        round_trips, server = timed_clicks(ws, args.clicks, width, height, rng)
        runs_during_clicks = engine.backbone_runs - runs_before_clicks
    return {
        "image_size": [width, height], "init_ms": round(init_ms, 2),
        "backbone_runs_during_init": runs_before_clicks - runs_before_init,
        "first_click_ms": round(warm[0], 2) if warm else None, "clicks": args.clicks,
        "click_round_trip_ms": stats(round_trips), "server_latency_ms": stats(server),
        "backbone_runs_during_clicks": runs_during_clicks,
    }


def main() -> None:
    args = parse_args()
    overrides = {"device": args.device, "ws_idle_ttl_s": 3600.0}
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir
    settings = Settings(model=args.model, **overrides)
    if args.full:
        settings = Settings(model=str(ensure_full_size_checkpoint(settings.cache_dir)), **overrides)
    app, server, thread, host = start_server(settings)
    url = f"ws://{host}/ws/realtime"
    try:
        status = app.state.services.engine.wait_ready(timeout=args.load_timeout)
        if not status.ready:
            raise SystemExit(f"model failed to load: {status.error}")
        figures = measure(app, url, args.image.read_bytes(), args)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    result = {"model": "full-size-random" if args.full else args.model, "device": status.device,
              "load_seconds": round(status.load_seconds or 0.0, 2), "transport": "websocket, uvicorn on 127.0.0.1",
              "cpu_count": os.cpu_count(), "torch_num_threads_env": os.environ.get("TORCH_NUM_THREADS"),
              "omp_wait_policy_env": os.environ.get("OMP_WAIT_POLICY"),
              **figures}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
