"""The released architecture (about 860M parameters, random weights) through the real server on CPU.

A checkpoint directory laid out like the hub's facebook/sam3 (sam3_video config.json, model.safetensors,
processor_config.json, tokenizer files) is written once, then loaded through the same from_pretrained
path as the real weights; every prompt kind runs once, and box tracking through two frames is compared with
transformers' standalone tracker on the same directory. Slow (a few minutes on 2 cores): `-m fullsize`.
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
from tests.conftest import CACHE_DIR, dev_settings, png_bytes, random_image, video_request

pytestmark = pytest.mark.fullsize
HEIGHT, WIDTH = 360, 640


@pytest.fixture(scope="module")
def full_size_dir():
    return ensure_full_size_checkpoint(CACHE_DIR)


@pytest.fixture(scope="module")
def client(full_size_dir):
    app = create_app(dev_settings(model=str(full_size_dir)))
    with TestClient(app) as client:
        status = app.state.services.engine.wait_ready(timeout=900)
        assert status.ready, status.error
        yield client


def test_checkpoint_is_laid_out_like_the_hub_repository(full_size_dir):
    config = json.loads((full_size_dir / "config.json").read_text())
    assert config["model_type"] == "sam3_video"
    assert {"model.safetensors", "processor_config.json", "tokenizer.json"} <= {p.name for p in full_size_dir.iterdir()}


def test_full_size_model_serves_every_prompt_kind_in_original_coordinates(client):
    engine = client.app.state.services.engine
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


def test_full_size_box_tracking_matches_the_standalone_tracker_on_every_frame(client, full_size_dir):
    """Picked-object tracking on the shared backbone gives the masks of a standalone
    Sam3TrackerVideoModel.from_pretrained(<the same directory>) run the documented way (IoU >= 0.99).
    Two frames (four ViT passes in all) keep it to a few minutes on CPU; directions are covered on dev-tiny."""
    import asyncio
    import gc

    from sam3_api.engine.video import ArrayFrames, ObjectPrompt
    from tests.video_reference import decoded, iou, moving_square_frames, reference_objects

    engine = client.app.state.services.engine
    frames = moving_square_frames(2, height=240, width=320)
    prompt = ObjectPrompt(1, 0, box=[30, 70, 110, 150])

    async def track():
        run = engine.video_run(ArrayFrames(frames), video_request(objects=[prompt], direction="forward"))
        results = []
        while not run.done:
            results += await engine.video_step(run)
        return results

    ours = decoded(asyncio.run(track()))
    gc.collect()
    reference = reference_objects(full_size_dir, frames, [prompt], "forward")
    scores = [iou(ours[f][1], reference[f][1]) for f in range(2)]
    assert sorted(ours) == [0, 1] and min(scores) >= 0.99, scores
