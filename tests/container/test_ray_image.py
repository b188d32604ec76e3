"""deploy/ray/Dockerfile built on the image of this session (BASE_IMAGE) and its Serve application run in it:
deploy/ray/run_local.py with one dev-tiny replica answers /health/ready and a segmentation through Serve's proxy.
"""

from __future__ import annotations

import os
import time

import pytest
import requests

from tests.conftest import SAMPLES
from tests.container.engine import RAY_IMAGE, free_port

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def ray_image(engine, image) -> str:
    seconds = engine.build(RAY_IMAGE, "deploy/ray/Dockerfile", {"BASE_IMAGE": image})
    print(f"\n[container] {RAY_IMAGE} built in {seconds:.0f} s, {engine.image_size(RAY_IMAGE) / 1e9:.2f} GB")
    return RAY_IMAGE


def test_serve_app_in_the_ray_image_answers(engine, ray_image, cleanup):
    port = free_port()
    env = {"SAM3_MODEL": "dev-tiny", "REPLICAS": "1", "HOST": "0.0.0.0", "PORT": "8000", "RAY_NUM_CPUS": "2"}
    name = engine.start(f"sam3-api-ci-ray-{os.getpid()}", ray_image, port, env, "--shm-size=1g",
                        command=("python", "deploy/ray/run_local.py"))
    base = f"http://127.0.0.1:{port}"
    engine.wait_ready(name, base, timeout=300)
    with open(SAMPLES / "astronaut.png", "rb") as photo:
        response = requests.post(f"{base}/segment/box", files={"image": ("a.png", photo, "image/png")},
                                 data={"x1": "100", "y1": "40", "x2": "400", "y2": "300"}, timeout=120)
    assert response.status_code == 200 and response.json()["num_masks"] == 1, response.text[:500]
    # A Serve replica names itself by Ray's replica id; the plain server would say hostname:pid.
    replica = response.headers.get("x-sam3-replica", "")
    assert replica and ":" not in replica, f"X-Sam3-Replica: {replica!r}"
    started = time.monotonic()
    engine("stop", "-t", "40", name, timeout=90)
    assert engine.inspect(name)["State"]["ExitCode"] == 0 and time.monotonic() - started < 40, engine.logs(name)[-3000:]
