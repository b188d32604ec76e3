"""Scale-out on Ray Serve (deploy/ray/run_local.sh on 127.0.0.1). Prints ONE JSON object.

    .venv/bin/python bench/scaleout.py                          # dev-tiny, 1 vs 2 replicas
    .venv/bin/python bench/scaleout.py --images 48 --concurrency 8 --size 480x640
    .venv/bin/python bench/scaleout.py --model /path/to/checkpoint   # any SAM3_MODEL (each replica loads it)

Two figures, each measured in this one run:
* throughput: `--images` distinct images (every request a miss: one backbone pass each), sent
  `--concurrency` at a time, to 1 replica and then to 2; images/s and the ratio 2 / 1;
* hit rate on 2 replicas: `--images` images x `--rounds` requests each, once with X-Sam3-Image-Key (the
  sha256 of the file) and once without it; hits / requests, and hits / follow-ups (every request but an
  image's first, which must miss).
Replicas share this machine's cores (TORCH_NUM_THREADS = cores / replicas), so on a small CPU box 2 replicas
cannot do twice the work of 1; on one GPU per replica the ratio approaches the replica count.
Figures, never asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import png_bytes, random_image  # noqa: E402
from tests.e2e import ray_cluster  # noqa: E402
from tests.e2e.conftest import _free_port  # noqa: E402

POINT = {"points_x": "10", "points_y": "12", "labels": "1"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dev-tiny", help="SAM3_MODEL for the replicas")
    parser.add_argument("--images", type=int, default=32, help="distinct images per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="requests per image in the hit-rate runs")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--size", default="240x320", help="image HEIGHTxWIDTH")
    return parser.parse_args()


def make_images(count: int, size: str, seed: int) -> list[bytes]:
    height, width = (int(v) for v in size.lower().split("x"))
    return [png_bytes(random_image(height, width, seed=seed + i)) for i in range(count)]


def post(client: httpx.Client, image: bytes, keyed: bool) -> httpx.Response:
    headers = {"X-Sam3-Image-Key": hashlib.sha256(image).hexdigest()} if keyed else {}
    response = client.post("/segment/points", files={"image": ("i.png", image, "image/png")}, data=POINT,
                           headers=headers)
    response.raise_for_status()
    return response


def throughput(client: httpx.Client, images: list[bytes], concurrency: int) -> dict:
    """Distinct images, each once (a miss), `concurrency` in flight."""
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        responses = list(pool.map(lambda image: post(client, image, keyed=True), images))
    seconds = time.perf_counter() - started
    return {"images": len(images), "seconds": round(seconds, 3), "images_per_s": round(len(images) / seconds, 2),
            "replicas_seen": len({r.headers["X-Sam3-Replica"] for r in responses}),
            "misses": sum(r.headers.get("X-Sam3-Cache") == "miss" for r in responses)}


def hit_rate(client: httpx.Client, images: list[bytes], rounds: int, keyed: bool) -> dict:
    """Every image `rounds` times, round after round (the follow-ups of an image are not back to back)."""
    caches = [post(client, image, keyed).headers.get("X-Sam3-Cache") for _ in range(rounds) for image in images]
    follow_ups = caches[len(images):]
    return {"requests": len(caches), "hit_rate": round(caches.count("hit") / len(caches), 3),
            "follow_up_hit_rate": round(follow_ups.count("hit") / max(1, len(follow_ups)), 3)}


def run_cluster(replicas: int, args: argparse.Namespace, logs: Path, measure) -> dict:
    # Room for every image of a run in each replica's cache: misses then come from routing alone.
    env = {"SAM3_MODEL": args.model, "SAM3_EMBEDDING_CACHE_ENTRIES": str(args.images * 2),
           "SAM3_MAX_QUEUE": str(max(16, args.concurrency * 2))}
    server = ray_cluster.start(logs / f"run_local-{replicas}.log", _free_port(), replicas=replicas, env=env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            post(client, make_images(1, args.size, seed=99_999)[0], keyed=False)  # warm-up: first request paths
            return measure(client)
    finally:
        server.stop()
        server.cleanup()


def main() -> None:
    args = parse_args()
    logs = Path(tempfile.mkdtemp(prefix="sam3-scaleout-"))
    one = run_cluster(1, args, logs, lambda c: throughput(c, make_images(args.images, args.size, 0), args.concurrency))

    def two_replicas(client: httpx.Client) -> dict:
        return {"throughput": throughput(client, make_images(args.images, args.size, 1000), args.concurrency),
                "with_key": hit_rate(client, make_images(args.images, args.size, 2000), args.rounds, keyed=True),
                "without_key": hit_rate(client, make_images(args.images, args.size, 3000), args.rounds, keyed=False)}

    two = run_cluster(2, args, logs, two_replicas)
    print(json.dumps({
        "model": args.model, "image_size": args.size, "concurrency": args.concurrency, "cpu_cores": os.cpu_count(),
        "throughput_1_replica": one, "throughput_2_replicas": two["throughput"],
        "throughput_ratio_2_vs_1": round(two["throughput"]["images_per_s"] / one["images_per_s"], 3),
        "hit_rate_with_key": two["with_key"], "hit_rate_without_key": two["without_key"],
        "logs": str(logs),
    }, indent=2))


if __name__ == "__main__":
    main()
