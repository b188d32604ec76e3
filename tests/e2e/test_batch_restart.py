"""A 200-image batch job on a real uvicorn server is SIGKILLed halfway; the server restarted on the same
SAM3_DATA_DIR finishes the job by itself, and its export holds the 200 images, each exactly once."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
import requests
from pycocotools.coco import COCO

from tests.conftest import png_bytes, random_image
from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
IMAGES = 200


def archive_of_tiny_images() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(IMAGES):
            archive.writestr(f"frames/{index:03d}.png", png_bytes(random_image(64, 64, seed=index)))
    return buffer.getvalue()


def progress(url: str, job_id: str) -> dict:
    return requests.get(f"{url}/batch/jobs/{job_id}", timeout=10).json()


def wait_for(url: str, job_id: str, done, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = progress(url, job_id)
        if done(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {body}")


def test_a_job_killed_halfway_finishes_after_a_restart_with_every_image_once(tmp_path_factory, tmp_path):
    env = {"SAM3_DATA_DIR": str(tmp_path_factory.mktemp("batch-data"))}
    server = LiveServer(tmp_path_factory, env)
    try:
        response = requests.post(f"{server.url}/batch/jobs", files={"archive": ("frames.zip", archive_of_tiny_images())},
                                 data={"texts": json.dumps(["cat"]), "confidence_threshold": "0", "max_masks": "2"},
                                 timeout=60)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        halfway = wait_for(server.url, job_id, lambda body: body["progress"]["images_done"] >= IMAGES // 2, 300)
        assert halfway["status"] == "running"
    finally:
        server.kill()
    restarted = LiveServer(tmp_path_factory, env)
    try:
        done = wait_for(restarted.url, job_id, lambda body: body["status"] not in ("queued", "running"), 300)
        assert done["status"] == "succeeded", done
        assert done["progress"]["images_done"] == IMAGES and done["progress"]["images_failed"] == 0
        lines = requests.get(f"{restarted.url}/batch/jobs/{job_id}/results", timeout=60).text.splitlines()
        names = [json.loads(line)["file_name"] for line in lines]
        assert len(names) == IMAGES and len(set(names)) == IMAGES
        export = requests.get(f"{restarted.url}/batch/jobs/{job_id}/export", params={"format": "coco"}, timeout=60)
        (tmp_path / "coco.json").write_bytes(export.content)
        dataset = COCO(str(tmp_path / "coco.json"))
        exported = [image["file_name"] for image in dataset.dataset["images"]]
        assert sorted(exported) == sorted(f"frames/{index:03d}.png" for index in range(IMAGES))
        assert len(dataset.getAnnIds()) == sum(len(json.loads(line)["annotations"]) for line in lines) > 0
    finally:
        restarted.stop()
