"""Probes, /metrics, request ids, per-key rate limits and shutdown hooks, in-process over the real dev-tiny engine."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from sam3_api.engine.engine import Sam3Engine
from sam3_api.errors import EngineBusy
from sam3_api.main import create_app
from tests.conftest import dev_settings, png_bytes, random_image

IMAGE = {"image": ("a.png", png_bytes(random_image(64, 96, seed=5)), "image/png")}
BOX = {"x1": 1, "y1": 1, "x2": 50, "y2": 50}


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(metrics, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def keyed_client(**overrides) -> TestClient:
    app = create_app(dev_settings(**overrides))
    client = TestClient(app, raise_server_exceptions=False).__enter__()
    assert app.state.services.engine.wait_ready(300).ready
    return client


def test_liveness_and_readiness_answer_200_when_the_model_is_loaded(client):
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["state"] == "ready"


def test_readiness_answers_503_with_the_reason_while_loading_and_when_the_queue_is_full():
    engine = Sam3Engine(dev_settings(max_queue=2))
    gate = threading.Event()
    engine.worker.submit(gate.wait)  # holds the model thread: the load waits behind it
    try:
        with TestClient(create_app(dev_settings(max_queue=2), engine=engine)) as client:
            loading = client.get("/health/ready")
            assert loading.status_code == 503 and "still loading" in loading.json()["detail"]
            assert client.get("/health/live").status_code == 200  # alive all the same
            gate.set()
            assert engine.wait_ready(120).ready
            gate.clear()
            engine.worker.submit(gate.wait)
            engine.worker.submit(gate.wait)
            full = client.get("/health/ready")
            assert full.status_code == 503 and full.json()["code"] == "not_ready"
            assert "queue is full" in full.json()["detail"] and full.json()["queue_depth"] == 2
    finally:
        gate.set()
        engine.stop(timeout=10)


def test_readiness_answers_503_after_a_failed_load(tmp_path):
    app = create_app(dev_settings(model=str(tmp_path / "missing")))
    with TestClient(app) as client:
        assert app.state.services.engine.wait_ready(120).state == "failed"
        failed = client.get("/health/ready")
        assert failed.status_code == 503 and "failed to load" in failed.json()["detail"]


def test_metrics_parse_with_prometheus_and_move_with_traffic(client):
    before = scrape(client)
    for _ in range(2):
        assert client.post("/segment/box", files=IMAGE, data=BOX).status_code == 200
    assert client.post("/segment/box", files=IMAGE, data={"x1": 50, "y1": 1, "x2": 10, "y2": 50}).status_code == 422
    with client.websocket_connect("/ws/realtime") as socket:
        socket.receive_json()
        during = scrape(client)
    after = scrape(client)
    box_ok = dict(handler="/segment/box", method="POST", status="200")
    assert value(after, "http_requests_total", **box_ok) - value(before, "http_requests_total", **box_ok) == 2
    assert value(after, "http_request_duration_seconds_count", **box_ok) >= 2
    assert value(after, "http_requests_total", handler="/segment/box", method="POST", status="422") >= 1
    model_runs = [value(m, "sam3_model_seconds_count", kind="box") for m in (before, after)]
    assert model_runs[1] - model_runs[0] == 2
    hits = value(after, "sam3_embedding_cache_hits_total") - value(before, "sam3_embedding_cache_hits_total")
    misses = value(after, "sam3_embedding_cache_misses_total") - value(before, "sam3_embedding_cache_misses_total")
    assert hits + misses == 2 and hits >= 1
    assert value(after, "sam3_embedding_cache_entries") >= 1 and value(after, "sam3_embedding_cache_bytes") > 0
    assert value(during, "sam3_websocket_sessions") == 1 and value(after, "sam3_websocket_sessions") == 0
    assert value(after, "sam3_queue_depth") == 0 and value(after, "sam3_queue_capacity") == 16
    assert value(after, "sam3_model_state", state="ready") == 1 and value(after, "sam3_model_loaded") == 1
    assert ("sam3_video_jobs", (("status", "running"),)) in after  # the job runner's gauges exist from the start
    statuses = {dict(labels)["status"] for name, labels in after if name == "sam3_video_jobs"}
    assert statuses == {"queued", "running", "succeeded", "failed", "cancelled", "interrupted"}, \
        "one series per status a job can have (jobs/store.py), none that it never has"


def test_metrics_need_a_key_when_metrics_require_key_is_set():
    client = keyed_client(api_keys=["key-a"], metrics_require_key=True)
    try:
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        assert client.get("/metrics", headers={"X-API-Key": "key-a"}).status_code == 200
    finally:
        client.__exit__(None, None, None)
    no_keys = keyed_client(metrics_require_key=True)
    try:
        refused = no_keys.get("/metrics")
        assert refused.status_code == 401 and "SAM3_METRICS_REQUIRE_KEY" in refused.json()["detail"]
    finally:
        no_keys.__exit__(None, None, None)


def test_metrics_stay_open_with_api_keys_unless_required():
    client = keyed_client(api_keys=["key-a"])
    try:
        assert client.get("/metrics").status_code == 200
        assert client.post("/segment/box", files=IMAGE, data=BOX).status_code == 401
    finally:
        client.__exit__(None, None, None)


def test_each_api_key_gets_its_own_rate_limit_with_429_and_retry_after():
    client = keyed_client(api_keys=["key-a", "key-b"], rate_limit="3/minute")
    try:
        key_a, key_b = {"X-API-Key": "key-a"}, {"X-API-Key": "key-b"}
        assert [client.get("/health", headers=key_a).status_code for _ in range(3)] == [200] * 3
        refused = client.post("/segment/box", files=IMAGE, data=BOX, headers=key_a)
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60 and "SAM3_RATE_LIMIT" in refused.json()["detail"]
        assert client.post("/segment/box", files=IMAGE, data=BOX, headers=key_b).status_code == 200
        assert all(client.get("/health").status_code == 200 for _ in range(5))  # an open route without a key
        assert value(scrape(client), "sam3_rate_limited_requests_total") == 1
    finally:
        client.__exit__(None, None, None)


def test_request_ids_are_echoed_generated_and_replaced_when_malformed(client):
    assert client.get("/health", headers={"X-Request-ID": "trace-42.a"}).headers["X-Request-ID"] == "trace-42.a"
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    forged = client.get("/health", headers={"X-Request-ID": "x\" level=ERROR fake"}).headers["X-Request-ID"]
    assert forged != "x\" level=ERROR fake" and len(forged) == 32
    error = client.post("/segment/box", files=IMAGE, data={"x1": "a"}, headers={"X-Request-ID": "bad-input-1"})
    assert error.status_code == 422 and error.headers["X-Request-ID"] == "bad-input-1"


def test_shutdown_hooks_run_after_the_last_request_and_before_the_model_stops():
    app = create_app(dev_settings())
    seen = {}

    async def video_jobs_shutdown():
        seen["draining"] = app.state.services.draining
        seen["worker_accepts"] = app.state.services.engine.worker.submit(lambda: "still serving").result(timeout=10)

    async def broken_hook():
        raise RuntimeError("one hook failing must not stop the others")

    app.state.services.on_shutdown(broken_hook)
    app.state.services.on_shutdown(video_jobs_shutdown)
    with TestClient(app) as client:
        assert app.state.services.engine.wait_ready(120).ready
        assert client.get("/health/ready").status_code == 200
    assert seen == {"draining": True, "worker_accepts": "still serving"}
    with pytest.raises(EngineBusy, match="shutting down"):  # and the model thread was stopped after the hooks
        app.state.services.engine.worker.submit(lambda: None)
