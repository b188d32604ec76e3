"""Output formats round-trip, visualisation, several texts/boxes, and original-image coordinates."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from sam3_api.media.masks import polygons_to_mask
from tests.conftest import png_bytes, random_image

IMAGE = random_image(240, 320, seed=21)
PNG = png_bytes(IMAGE)
BOX = {"x1": 40, "y1": 30, "x2": 280, "y2": 200}


def _decode_png(b64: str) -> np.ndarray:
    pixels = np.array(Image.open(io.BytesIO(base64.b64decode(b64))))
    assert pixels.ndim == 2 and set(np.unique(pixels)) <= {0, 255}, "masks are grayscale 0/255 PNGs"
    return pixels == 255


def _segment(client, output_format: str, **extra):
    response = client.post("/segment/box", files={"image": ("a.png", PNG)},
                           data={**BOX, "output_format": output_format, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_png_rle_and_polygon_of_one_mask_decode_to_the_same_pixels(client):
    png_mask = _decode_png(_segment(client, "png")["masks"][0])
    rle = _segment(client, "rle")["masks"][0]
    assert rle["size"] == [240, 320] and isinstance(rle["counts"], str)
    rle_mask = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)
    polygon_mask = polygons_to_mask(_segment(client, "polygon")["masks"][0], 240, 320)
    assert png_mask.any() and np.array_equal(png_mask, rle_mask)
    # Polygons trace pixel centres: they may differ from the raster only on a 1-pixel border.
    kernel = np.ones((3, 3), np.uint8)
    border = cv2.dilate(png_mask.astype(np.uint8), kernel).astype(bool) & ~cv2.erode(
        png_mask.astype(np.uint8), kernel).astype(bool)
    assert not np.any((polygon_mask != png_mask) & ~border)


def test_response_has_seed_000_fields_and_consistent_additions(client):
    body = _segment(client, "png", return_contours=True)
    assert list(body)[:7] == ["success", "num_masks", "masks", "boxes", "scores", "prompt", "message"]
    assert body["success"] is True and body["num_masks"] == len(body["masks"]) == len(body["boxes"]) == 1
    mask = _decode_png(body["masks"][0])
    assert body["areas"] == [int(mask.sum())] and body["image_size"] == [320, 240]
    ys, xs = np.nonzero(mask)
    assert body["boxes"][0] == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    assert len(body["contours"]) == 1 and body["timing"]["total_ms"] > 0


def test_several_boxes_report_which_box_each_mask_answers(client):
    response = client.post("/segment/box/base64", json={
        "image_base64": base64.b64encode(PNG).decode(), "boxes": [[0, 0, 100, 100], [150, 100, 320, 240]]})
    body = response.json()
    assert body["num_masks"] == 2 and sorted(body["prompt_indices"]) == [0, 1]


def test_several_texts_are_labelled_per_mask(client):
    response = client.post("/segment/text/base64", json={
        "image_base64": base64.b64encode(PNG).decode(), "texts": ["cat", "dog"], "confidence_threshold": 0,
        "max_masks": 2})
    body = response.json()
    assert body["num_masks"] == 4 and sorted(body["mask_prompts"]) == ["cat", "cat", "dog", "dog"]
    assert body["scores"] == sorted(body["scores"], reverse=True)


def test_nothing_found_is_a_200_with_zero_masks(client):
    response = client.post("/segment/text", files={"image": ("a.png", PNG)},
                           data={"text": "cat", "confidence_threshold": 1.0})
    assert response.status_code == 200
    assert response.json()["num_masks"] == 0 and response.json()["masks"] == [] and response.json()["message"]


def test_visualization_is_a_png_of_the_image_with_masks_drawn(client):
    response = client.post("/segment/box", files={"image": ("a.png", PNG)}, data={**BOX, "return_visualization": True})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    overlay = np.array(Image.open(io.BytesIO(response.content)).convert("RGB"))
    assert overlay.shape == IMAGE.shape and not np.array_equal(overlay, IMAGE)


@pytest.mark.parametrize("width,height", [(4000, 3000), (300, 900)])
def test_masks_and_boxes_are_in_original_coordinates_for_large_and_tall_images(client, width, height):
    y, x = np.mgrid[0:height, 0:width]
    gradient = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gradient).save(buffer, format="JPEG", quality=80)
    box = [width * 0.1, height * 0.2, width * 0.6, height * 0.9]
    engine = client.app.state.services.engine
    sent = []
    hook = engine.runtime.model.tracker_model.prompt_encoder.register_forward_pre_hook(
        lambda module, args, kwargs: sent.append(kwargs["input_boxes"].clone()), with_kwargs=True)
    try:
        response = client.post("/segment/box", files={"image": ("big.jpg", buffer.getvalue())},
                               data=dict(zip(["x1", "y1", "x2", "y2"], box)))
    finally:
        hook.remove()
    body = response.json()
    assert response.status_code == 200 and body["image_size"] == [width, height]
    mask = _decode_png(body["masks"][0])
    assert mask.shape == (height, width)
    size = engine.runtime.model.config.tracker_config.image_size
    expected = [box[0] * size / width, box[1] * size / height, box[2] * size / width, box[3] * size / height]
    assert sent[-1][0, 0].tolist() == pytest.approx(expected, abs=1e-3)
    x1, y1, x2, y2 = body["boxes"][0]
    assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
