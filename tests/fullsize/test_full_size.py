"""The released architecture (about 860M parameters, random weights) through the real server on CPU.

A checkpoint directory laid out like the hub's facebook/sam3 (sam3_video config.json, model.safetensors,
processor_config.json, tokenizer files) is written once, then loaded through the same from_pretrained
path as the real weights; every prompt kind runs once. Slow (a few minutes on 2 cores): `-m fullsize`.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sam3_api.engine.devmodel import ensure_full_size_checkpoint
from sam3_api.main import create_app
from tests.conftest import CACHE_DIR, dev_settings, png_bytes, random_image

pytestmark = pytest.mark.fullsize
HEIGHT, WIDTH = 360, 640


@pytest.fixture(scope="module")
def full_size_dir():
    return ensure_full_size_checkpoint(CACHE_DIR)


@pytest.fixture(scope="module")
def client(full_size_dir):
    app = create_app(dev_settings(model=str(full_size_dir)))
    with TestClient(app) as client:
        status = app.state.engine.wait_ready(timeout=900)
        assert status.ready, status.error
        yield client


def test_checkpoint_is_laid_out_like_the_hub_repository(full_size_dir):
    config = json.loads((full_size_dir / "config.json").read_text())
    assert config["model_type"] == "sam3_video"
    assert {"model.safetensors", "processor_config.json", "tokenizer.json"} <= {p.name for p in full_size_dir.iterdir()}


def test_full_size_model_serves_every_prompt_kind_in_original_coordinates(client):
    engine = client.app.state.engine
    assert 800_000_000 < engine.runtime.parameter_count < 900_000_000
    health = client.get("/health").json()
    assert health["model_loaded"] and health["trained_weights"] is False
    image = {"image": ("photo.png", png_bytes(random_image(HEIGHT, WIDTH, seed=1)), "image/png")}
    requests = {
        "text": {"text": "cat", "confidence_threshold": 0.0, "max_masks": 5},
        "box": {"x1": 100, "y1": 50, "x2": 400, "y2": 300},
        "points": {"points_x": "320,100", "points_y": "180,40", "labels": "1,0"},
        "auto": {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
    }
    for kind, form in requests.items():
        response = client.post(f"/segment/{kind}", files=image, data=form)
        assert response.status_code == 200, (kind, response.text)
        body = response.json()
        assert body["num_masks"] >= 1 and body["image_size"] == [WIDTH, HEIGHT], kind
        mask = np.array(Image.open(io.BytesIO(base64.b64decode(body["masks"][0]))))
        assert mask.shape == (HEIGHT, WIDTH), kind
        boxes = np.array(body["boxes"])
        assert boxes[:, [0, 2]].max() <= WIDTH + 1e-3 and boxes[:, [1, 3]].max() <= HEIGHT + 1e-3, kind
        assert body["scores"] == sorted(body["scores"], reverse=True), kind
    assert engine.backbone_runs == 1, "four prompt kinds on one image must run the backbone once"
