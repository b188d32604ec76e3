"""/health tells the truth: ready, loading, or failed and why; segmentation answers 503 until ready."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from sam3_api.engine.engine import Sam3Engine
from sam3_api.main import create_app
from tests.conftest import dev_settings, png_bytes, random_image

IMAGE = {"image": ("a.png", png_bytes(random_image(64, 96)), "image/png")}


def test_health_reports_the_loaded_dev_model(client):
    for path in ("/", "/health"):
        body = client.get(path).json()
        assert body["status"] == "running" and body["model_loaded"] is True
        assert body["model"] == "dev-tiny" and body["device"] == "cpu" and body["version"]
        assert body["trained_weights"] is False and "meaningless" in body["message"]


def test_failed_load_is_reported_and_segmentation_answers_503_with_the_reason(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    app = create_app(dev_settings(model=str(missing)))
    with TestClient(app) as client:
        status = app.state.services.engine.wait_ready(timeout=120)
        assert status.state == "failed"
        body = client.get("/health").json()
        assert body["model_loaded"] is False and body["status"] == "error"
        assert str(missing) in body["message"]
        response = client.post("/segment/text", files=IMAGE, data={"text": "cat"})
        assert response.status_code == 503
        assert response.json()["code"] == "model_not_ready" and "failed to load" in response.json()["detail"]


def test_segmentation_answers_503_while_the_model_is_loading():
    engine = Sam3Engine(dev_settings())
    gate = threading.Event()
    engine.worker.submit(gate.wait)  # hold the model thread so the load stays queued
    app = create_app(dev_settings(), engine=engine)
    try:
        with TestClient(app) as client:
            assert client.get("/health").json()["status"] == "loading"
            response = client.post("/segment/points", files=IMAGE, data={"points_x": "5", "points_y": "5"})
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
            assert "still loading" in response.json()["detail"]
            gate.set()
            assert engine.wait_ready(120).ready
            assert client.get("/health").json()["model_loaded"] is True
    finally:
        gate.set()


def test_a_full_queue_answers_503_with_retry_after_and_recovers():
    app = create_app(dev_settings(max_queue=1))
    with TestClient(app) as client:
        engine = app.state.services.engine
        assert engine.wait_ready(120).ready
        gate = threading.Event()
        blocker = engine.worker.submit(gate.wait)
        try:
            response = client.post("/segment/box", files=IMAGE, data={"x1": 1, "y1": 1, "x2": 50, "y2": 50})
            assert response.status_code == 503
            assert response.json()["code"] == "engine_busy" and "SAM3_MAX_QUEUE" in response.json()["detail"]
            assert int(response.headers["retry-after"]) >= 1
        finally:
            gate.set()
            blocker.result(timeout=10)
        ok = client.post("/segment/box", files=IMAGE, data={"x1": 1, "y1": 1, "x2": 50, "y2": 50})
        assert ok.status_code == 200 and ok.json()["num_masks"] == 1
