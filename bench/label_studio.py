"""Label Studio /predict: how long one "Retrieve predictions" call takes, and tasks/s. ONE JSON object.

    .venv/bin/python bench/label_studio.py                          # dev-tiny, 20 tasks, 2 labels
    .venv/bin/python bench/label_studio.py --full --tasks 3         # full-size architecture, random weights

The server is `python app.py` in its own process on 127.0.0.1 (the default precision: bf16 autocast on a CPU
with AMX / AVX-512 BF16) with the embedding cache off, so neither way reuses the other's backbone runs. The
tasks carry distinct generated images as data: URIs and the config has --labels BrushLabels labels (each a
text prompt). `one_call`: all tasks in one POST /label-studio/predict, as Label Studio sends a selection (the
next tasks' images are read while the model works); `one_per_call`: the same tasks, one per call. Label
Studio waits ML_TIMEOUT_PREDICT (100 s by default) for one call. Figures, never asserts.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.batch import write_images  # noqa: E402
from bench.server import start_server  # noqa: E402
from sam3_api.config import Settings  # noqa: E402
from sam3_api.engine.devmodel import ensure_full_size_checkpoint  # noqa: E402
from bench.args import model_arguments  # noqa: E402

LABELS = ["cat", "dog", "car", "person", "tree", "cup", "chair", "bird"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_arguments(parser)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--labels", type=int, default=2, help=f"labels in the config (at most {len(LABELS)})")
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the generated images")
    parser.add_argument("--no-compare", action="store_true", help="skip one_per_call (halves a --full run)")
    parser.add_argument("--load-timeout", type=float, default=1800.0)
    return parser.parse_args()


def label_config(labels: int) -> str:
    names = "".join(f'<Label value="{name}"/>' for name in LABELS[:labels])
    return (f'<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image">{names}'
            '</BrushLabels></View>')


def predict(session: requests.Session, base_url: str, tasks: list[dict], config: str) -> list[dict]:
    response = session.post(f"{base_url}/label-studio/predict", timeout=36000,
                            json={"tasks": tasks, "label_config": config, "project": "1", "params": {}})
    response.raise_for_status()
    return response.json()["results"]


def timed(calls) -> dict:
    started = time.perf_counter()
    predictions = [prediction for call in calls for prediction in call()]
    elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 2), "tasks_per_s": float(f"{len(predictions) / elapsed:.4g}"),
            "seconds_per_task": round(elapsed / len(predictions), 2),
            "regions": sum(len(p["result"]) for p in predictions)}


def main() -> None:
    args = parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    model = str(ensure_full_size_checkpoint(Settings().cache_dir)) if args.full else args.model
    os.environ.update(SAM3_EMBEDDING_CACHE_ENTRIES="0", SAM3_EMBEDDING_CACHE_BYTES="0",
                      SAM3_LABEL_STUDIO_THRESHOLD="0.3")
    config = label_config(args.labels)
    with tempfile.TemporaryDirectory() as folder:
        tasks = [{"id": index, "data": {"image": "data:image/png;base64," + base64.b64encode(path.read_bytes())
                                        .decode()}}
                 for index, path in enumerate(write_images(Path(folder), args.tasks, width, height))]
    process, base_url = start_server(model, args.device, args.load_timeout)
    try:
        with requests.Session() as session:
            predict(session, base_url, tasks[:1], config)  # warm-up (first-call allocations, text features)
            one_call = timed([lambda: predict(session, base_url, tasks, config)])
            one_per_call = None if args.no_compare else timed(
                [lambda task=task: predict(session, base_url, [task], config) for task in tasks])
            health = session.get(f"{base_url}/health").json()
    finally:
        process.terminate()
        process.wait(timeout=60)
    print(json.dumps({"model": "full-size-random" if args.full else args.model, "device": health["device"],
                      "precision": health.get("precision"), "tasks": args.tasks, "labels": args.labels,
                      "image_size": [width, height], "cpu_count": os.cpu_count(), "one_call": one_call,
                      "one_per_call": one_per_call,
                      "speedup": round(one_per_call["seconds"] / one_call["seconds"], 3) if one_per_call else None}))


if __name__ == "__main__":
    main()
