"""Seed 001's POST /segment and GET /healthz over the real app and dev-tiny engine.

dev-tiny's random instances score about 0.25, below the service's fixed 0.5, so tests that need instances
use the additive `confidence_threshold` field; native routes on the same image are the reference, which
also proves the adapter runs the native engine path and mask encoders.
"""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from sam3_api.media.masks import polygons_to_mask
from tests.api.conftest import client_over
from tests.conftest import SAMPLES

PHOTO = (SAMPLES / "chelsea.png").read_bytes()
HEIGHT, WIDTH = 300, 451


@pytest.fixture(scope="module")
def client(engine):
    client = client_over(engine)
    yield client
    client.__exit__(None, None, None)


def segment(client, prompts, **fields):
    return client.post("/segment", files={"image": ("photo.png", PHOTO)}, data={"prompts": prompts, **fields})


def native_rle(client, text: str) -> list[dict]:
    response = client.post("/segment/text", files={"image": ("photo.png", PHOTO)},
                           data={"text": text, "confidence_threshold": 0, "output_format": "rle"})
    return response.json()["masks"]


def test_one_result_per_prompt_in_request_order_labelled_with_the_prompt(client):
    response = segment(client, ["dog", " cat ", "mug cup"], confidence_threshold=0)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["label"] for r in results] == ["dog", "cat", "mug cup"]
    for result in results:
        count = len(result["scores"])
        assert count > 0 and result["mask_shape"] == [count, 1, HEIGHT, WIDTH]
        assert all(isinstance(v, float) for box in result["boxes"] for v in box) and len(result["boxes"]) == count
        assert all(0 <= x1 < x2 <= WIDTH and 0 <= y1 < y2 <= HEIGHT for x1, y1, x2, y2 in result["boxes"])
        assert result["scores"] == sorted(result["scores"], reverse=True)
        assert "masks_rle" not in result and "contours" not in result


def test_instances_below_the_services_fixed_threshold_are_dropped(client):
    [result] = segment(client, ["cat"]).json()["results"]
    assert all(score >= 0.5 for score in result["scores"])
    assert result["mask_shape"] == [len(result["scores"]), 1, HEIGHT, WIDTH]
    [everything] = segment(client, ["cat"], confidence_threshold=0).json()["results"]
    assert len(everything["scores"]) > len(result["scores"])  # dev-tiny scores ~0.25: the 0.5 cut shows


def test_return_masks_adds_the_same_coco_rle_masks_as_the_native_route(client):
    [result] = segment(client, ["cat"], return_masks="true", confidence_threshold=0).json()["results"]
    assert result["masks_rle"] == native_rle(client, "cat")
    decoded = coco_mask.decode({**result["masks_rle"][0], "counts": result["masks_rle"][0]["counts"].encode()})
    assert decoded.shape == (HEIGHT, WIDTH)


def test_return_contours_gives_each_masks_outer_contours_as_int_points(client):
    [result] = segment(client, ["cat"], return_masks="true", return_contours="true",
                       confidence_threshold=0).json()["results"]
    assert len(result["contours"]) == len(result["masks_rle"])
    for contours, rle in zip(result["contours"], result["masks_rle"]):
        assert all(isinstance(v, int) for contour in contours for point in contour for v in point)
        mask = coco_mask.decode({**rle, "counts": rle["counts"].encode()}).astype(bool)
        filled = np.zeros_like(mask)
        for contour in contours:  # outer contours filled one by one cover the whole mask (holes filled too)
            filled |= polygons_to_mask([contour], HEIGHT, WIDTH)
        assert (filled | ~mask).all()


@pytest.mark.parametrize("prompts", [["cat", ""], ["   "]])
def test_a_blank_prompt_is_a_400_in_the_services_envelope(client, prompts):
    response = segment(client, prompts)
    assert response.status_code == 400
    assert set(response.json()) == {"detail"} and "Prompts must not be empty" in response.json()["detail"]


def test_missing_fields_and_unreadable_images_are_4xx_with_a_detail_string(client):
    no_image = client.post("/segment", data={"prompts": "cat"})
    no_prompts = client.post("/segment", files={"image": ("p.png", PHOTO)})
    not_an_image = client.post("/segment", files={"image": ("p.png", b"%PDF-1.4 nope")}, data={"prompts": "cat"})
    for response, status in ((no_image, 422), (no_prompts, 422), (not_an_image, 400)):
        assert response.status_code == status
        assert set(response.json()) == {"detail"} and isinstance(response.json()["detail"], str)
    assert "image" in no_image.json()["detail"] and "prompts" in no_prompts.json()["detail"]


def test_healthz_answers_ok_and_the_device_once_ready(client):
    assert client.get("/healthz").json() == {"status": "ok", "device": "cpu"}


def test_a_wrong_method_gets_the_services_envelope_and_native_routes_keep_theirs(client):
    wrong = client.get("/segment")
    assert wrong.status_code == 405 and set(wrong.json()) == {"detail"}
    native = client.get("/segment/text")
    assert native.status_code == 405 and native.json()["status_code"] == 405
