"""Seed 002's POST /predict over the real app and dev-tiny engine, including image_path's confinement.

Native routes on the same pixels are the reference for which instances come back; `confidence_threshold`
(an additive field) lowers the service's fixed 0.5, which dev-tiny's random instances (~0.25) never reach.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.api.conftest import client_over
from tests.conftest import SAMPLES

PHOTO = (SAMPLES / "chelsea.png").read_bytes()
PHOTO_B64 = base64.b64encode(PHOTO).decode()
HEIGHT, WIDTH = 300, 451


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("image-root")
    (base / "photos").mkdir()
    (base / "photos" / "cat.png").write_bytes(PHOTO)
    (base.parent / "outside.png").write_bytes(PHOTO)
    (base / "escape.png").symlink_to(base.parent / "outside.png")
    return base


@pytest.fixture(scope="module")
def client(engine, image_root):
    client = client_over(engine, image_root=str(image_root))
    yield client
    client.__exit__(None, None, None)


def predict(client, **body):
    return client.post("/predict", json={"confidence_threshold": 0, **body})


def native(client, **body) -> dict:
    return client.post("/segment/text/base64", json={"image_base64": PHOTO_B64, "confidence_threshold": 0,
                                                     "output_format": "png", **body}).json()


def decode_rgba(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):])))
    assert image.mode == "RGBA" and image.size == (WIDTH, HEIGHT)
    return np.asarray(image)


def png_mask(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)))) > 0


def test_text_alone_answers_every_instance_labelled_text_index_as_cyan_rgba_masks(client):
    response = predict(client, image_base64=PHOTO_B64, texts=[{"text": "cat"}])
    assert response.status_code == 200 and response.json()["message"] == "Success"
    masks = response.json()["masks"]
    reference = native(client, text="cat")
    assert [m["label"] for m in masks] == [f"cat_{i}" for i in range(reference["num_masks"])] and masks
    for mine, theirs in zip(masks, reference["masks"]):
        pixels = decode_rgba(mine["mask_base64"])
        expected = png_mask(theirs)
        assert ((pixels[..., 3] == 255) == expected).all() and (pixels[..., 3][~expected] == 0).all()
        assert (pixels[expected][:, :3] == (0, 255, 255)).all()


def test_boxes_alone_are_exemplars_of_one_concept_labelled_box_index(client):
    boxes = [[40, 30, 160, 120], [200, 100, 300, 220]]
    response = predict(client, image_base64=PHOTO_B64, boxes=[{"box": b} for b in boxes])
    reference = native(client, exemplar_boxes=boxes)
    assert [m["label"] for m in response.json()["masks"]] == [f"box_{i}" for i in range(reference["num_masks"])]
    assert reference["num_masks"] > 0


def test_text_and_boxes_keep_the_texts_instances_centred_in_a_box(client):
    reference = native(client, text="cat")
    centres = [((x1 + x2) / 2, (y1 + y2) / 2) for x1, y1, x2, y2 in reference["boxes"]]
    region = [0.0, 0.0, float(np.median([x for x, _ in centres])), float(HEIGHT)]  # splits the instances
    response = predict(client, image_base64=PHOTO_B64, texts=[{"text": "cat"}], boxes=[{"box": region}])
    inside = [m for m, (x, y) in zip(reference["masks"], centres) if x <= region[2]]
    masks = response.json()["masks"]
    assert 0 < len(inside) < reference["num_masks"], "the region must split dev-tiny's instances for a real test"
    assert [m["label"] for m in masks] == [f"cat_{i}" for i in range(len(inside))]
    for mine, theirs in zip(masks, inside):
        assert ((decode_rgba(mine["mask_base64"])[..., 3] > 0) == png_mask(theirs)).all()


def test_only_the_first_text_is_used_like_the_original(client):
    response = predict(client, image_base64=PHOTO_B64, texts=[{"text": "dog"}, {"text": "cat"}])
    assert {m["label"].rsplit("_", 1)[0] for m in response.json()["masks"]} == {"dog"}


def test_a_data_url_and_the_default_threshold_are_accepted(client):
    response = client.post("/predict", json={"image_base64": "data:image/png;base64," + PHOTO_B64,
                                             "texts": [{"text": "cat"}]})
    assert response.status_code == 200 and response.json()["message"] == "Success"
    assert len(response.json()["masks"]) < native(client, text="cat")["num_masks"]  # the 0.5 cut applies


def test_an_image_path_below_the_root_is_read(client, image_root):
    for name in ("photos/cat.png", str(image_root / "photos" / "cat.png")):
        by_path = predict(client, image_path=name, texts=[{"text": "cat"}])
        assert by_path.status_code == 200
        assert by_path.json() == predict(client, image_base64=PHOTO_B64, texts=[{"text": "cat"}]).json()


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.png", "photos/../../outside.png", "escape.png"])
def test_image_path_cannot_leave_the_root(client, name):
    response = predict(client, image_path=name, texts=[{"text": "cat"}])
    assert response.status_code == 403
    assert set(response.json()) == {"detail"} and "SAM3_IMAGE_ROOT" in response.json()["detail"]


def test_image_path_is_refused_when_no_root_is_set(engine):
    client = client_over(engine)
    try:
        response = client.post("/predict", json={"image_path": "/etc/passwd", "texts": [{"text": "x"}]})
        assert response.status_code == 403 and "SAM3_IMAGE_ROOT" in response.json()["detail"]
    finally:
        client.__exit__(None, None, None)


@pytest.mark.parametrize("body, status, says", [
    ({"image_path": "photos/missing.png", "texts": [{"text": "cat"}]}, 404, "does not exist"),
    ({"texts": [{"text": "cat"}]}, 400, "Either image_base64 or image_path"),
    ({"image_base64": "not base64!!", "texts": [{"text": "cat"}]}, 400, "base64"),
    ({"image_base64": PHOTO_B64}, 422, "give texts"),
    ({"image_base64": PHOTO_B64, "texts": [{"text": "cat"}], "boxes": [{"box": [0, 0, 900, 50]}]}, 422, "outside"),
    ({"image_base64": PHOTO_B64, "boxes": [{"box": [1, 2, 3]}]}, 422, "box"),
    ({"image_base64": PHOTO_B64, "texts": [{"text": "  "}]}, 422, "empty"),
])
def test_bad_requests_get_a_4xx_detail_that_says_what_is_wrong(client, body, status, says):
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail"} and says in response.json()["detail"]
