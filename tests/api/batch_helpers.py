"""What the batch job tests share: the images, a server over a folder of them, and the job helpers."""

from __future__ import annotations

import json

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from pycocotools import mask as coco_mask

from tests.api.conftest import ready_client
from tests.conftest import png_bytes, random_image
from tests.polling import settled

IMAGES = {f"img_{i}.png": png_bytes(random_image(64 + 8 * i, 80, seed=i)) for i in range(3)}
TEXTS = ["cat", "dog"]
OPTIONS = {"confidence_threshold": 0.0, "max_masks": 3}


def start_client(tmp_path_factory):
    """An entered client whose SAM3_IMAGE_ROOT holds IMAGES in set/sub/ (and a text file in set/)."""
    root = tmp_path_factory.mktemp("image_root")
    (root / "set" / "sub").mkdir(parents=True)
    for name, data in IMAGES.items():
        (root / "set" / "sub" / name).write_bytes(data)
    (root / "set" / "notes.txt").write_text("not an image")
    # Two images per backbone step: the masks compared with the single-image routes come from batched steps.
    return ready_client(data_dir=tmp_path_factory.mktemp("data"), image_root=root, batch_backbone_images=2)

def submit(client, files=None, **fields):
    form = {key: json.dumps(value) if isinstance(value, (list, dict)) else str(value) for key, value in fields.items()}
    return client.post("/batch/jobs", files=files, data=form)


def upload(client, **fields):
    files = [("images", (name, data, "image/png")) for name, data in IMAGES.items()]
    response = submit(client, files, **fields)
    assert response.status_code == 202, response.text
    return response.json()


def wait_finished(client, job_id: str, timeout: float = 120) -> dict:
    return settled(client, f"/batch/jobs/{job_id}", timeout=timeout)


def records(client, job_id: str) -> dict[str, dict]:
    lines = client.get(f"/batch/jobs/{job_id}/results").text.splitlines()
    return {record["file_name"]: record for record in map(json.loads, lines)}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def decode(rle: dict) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


def batch_images_counted(client) -> dict[str, float]:
    """sam3_batch_images_total by outcome, from /metrics."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    return {sample.labels["outcome"]: sample.value for family in families if family.name == "sam3_batch_images"
            for sample in family.samples if sample.name == "sam3_batch_images_total"}


def many_images(count: int, first_seed: int = 0) -> list:
    return [("images", (f"{index:03d}.png", png_bytes(random_image(64, 64, seed=first_seed + index)), "image/png"))
            for index in range(count)]
