"""Seed 003's Runpod job protocol over the real app and dev-tiny engine; images come from the loopback server.

The native /segment/text route on the same pixels is the reference for what a job finds. Runpod's own SDK
drives the same routes end to end in tests/e2e/test_runpod_sdk.py.
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from sam3_api.jobs.store import JobStore
from tests.api.conftest import client_over
from tests.conftest import SAMPLES, ManualClock
from tests.polling import RUNPOD_PENDING, settled

pytestmark = pytest.mark.timeout(120)
PHOTO_B64 = base64.b64encode((SAMPLES / "chelsea.png").read_bytes()).decode()
WIDTH, HEIGHT = 451, 300


@pytest.fixture(scope="module")
def client(engine, tmp_path_factory):
    client = client_over(engine, url_allow_hosts=["127.0.0.1"], url_timeout_s=5,
                         data_dir=tmp_path_factory.mktemp("runpod-jobs"))
    yield client
    client.__exit__(None, None, None)


def job_input(server, *concepts, image="/chelsea.png", **extra) -> dict:
    return {"input": {"image_url": server + image, "concepts": list(concepts), **extra}}


def wait_for(client, job_id: str, prefix: str = "", timeout_s: float = 60) -> dict:
    return settled(client, f"{prefix}/status/{job_id}", RUNPOD_PENDING, timeout=timeout_s)


def wait_until_running(client, job_id: str) -> None:
    for _ in range(200):
        if client.get(f"/status/{job_id}").json()["status"] == "IN_PROGRESS":
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never started")


def l_mode_mask(b64: str) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert image.format == "PNG" and image.mode == "L" and image.size == (WIDTH, HEIGHT)
    pixels = np.asarray(image)
    assert set(np.unique(pixels)) <= {0, 255}
    return pixels == 255


def native_masks(client, text: str, threshold: float) -> list[np.ndarray]:
    answer = client.post("/segment/text/base64", json={"image_base64": PHOTO_B64, "text": text,
                                                       "confidence_threshold": threshold, "output_format": "png"})
    return [l_mode_mask(b64) for b64 in answer.json()["masks"]]


def test_runsync_answers_each_concept_in_input_order_with_the_native_routes_masks(client, server):
    response = client.post("/v2/ool22vjm24rkma/runsync", json=job_input(server, "wall", "cat", "door"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "COMPLETED" and set(answer) == {"id", "status", "delayTime", "executionTime",
                                                               "output"}
    assert isinstance(answer["delayTime"], int) and isinstance(answer["executionTime"], int)
    output = answer["output"]["output"]
    assert output["image_size"] == [WIDTH, HEIGHT]
    assert list(output["results"]) == ["wall", "cat", "door"]
    for concept, result in output["results"].items():
        masks = [l_mode_mask(b64) for b64 in result["masks_base64"]]
        assert result["instance_count"] == len(masks) == len(result["scores"]) > 0
        assert all(score > 0.5 for score in result["scores"]) and result["scores"] == sorted(result["scores"])[::-1]
        reference = native_masks(client, concept, 0.5)
        assert len(reference) == len(masks) and all((a == b).all() for a, b in zip(masks, reference))


def test_the_threshold_applies_to_its_own_job_only(client, server):
    strict = client.post("/runsync", json=job_input(server, "cat", confidence_threshold=0.999)).json()
    assert strict["output"]["output"]["results"]["cat"] == {"instance_count": 0, "masks_base64": [], "scores": []}
    default = client.post("/runsync", json=job_input(server, "cat")).json()  # the original leaked 0.999 here
    assert default["output"]["output"]["results"]["cat"]["instance_count"] > 0


def test_a_repeated_concept_is_one_entry_like_the_originals_dict(client, server):
    answer = client.post("/runsync", json=job_input(server, "cat", "cat")).json()
    assert list(answer["output"]["output"]["results"]) == ["cat"]


def test_run_answers_in_queue_and_status_later_answers_the_same_output_bare_or_under_v2(client, server):
    created = client.post("/v2/any-endpoint/run", json=job_input(server, "cat"))
    assert created.status_code == 200 and created.json() == {"id": created.json()["id"], "status": "IN_QUEUE"}
    done = wait_for(client, created.json()["id"], "/v2/any-endpoint")
    assert done["status"] == "COMPLETED" and done["output"]["output"]["results"]["cat"]["instance_count"] > 0
    assert client.post(f"/status/{done['id']}").json() == done  # bare path, and POST as Runpod's docs show


def test_runsync_with_wait_0_answers_the_id_and_a_status_to_poll(client, server):
    answer = client.post("/runsync?wait=0", json=job_input(server, "cat")).json()
    assert answer["status"] in ("IN_QUEUE", "IN_PROGRESS") and "output" not in answer
    assert wait_for(client, answer["id"])["status"] == "COMPLETED"


@pytest.mark.parametrize("body, error", [
    ({"input": {"concepts": ["cat"]}}, "Missing required field: image_url"),
    ({"input": {"image_url": "http://127.0.0.1/x.png"}}, "Missing required field: concepts"),
    ({"input": {"image_url": "http://127.0.0.1/x.png", "concepts": "cat"}}, "Invalid input: concepts"),
    ({"input": {"image_url": "x", "concepts": ["cat"], "confidence_threshold": 2}},
     "Invalid input: confidence_threshold"),
])
def test_bad_input_fails_the_job_with_the_originals_message(client, body, error):
    answer = client.post("/runsync", json=body).json()
    assert answer["status"] == "FAILED" and answer["error"].startswith(error) and "output" not in answer


@pytest.mark.parametrize("image, says", [("/missing.jpg", "404"), ("/document.pdf", "image")])
def test_an_image_that_cannot_be_had_fails_the_job_as_failed_to_download(client, server, image, says):
    answer = client.post("/runsync", json=job_input(server, "cat", image=image)).json()
    assert answer["status"] == "FAILED"
    assert answer["error"].startswith("Failed to download image: ") and says in answer["error"]


def test_a_private_image_url_is_refused_unless_the_operator_allows_its_host(engine, server, tmp_path):
    strict = client_over(engine, data_dir=tmp_path)  # no SAM3_URL_ALLOW_HOSTS
    try:
        for url in (server + "/chelsea.png", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
            answer = strict.post("/runsync", json={"input": {"image_url": url, "concepts": ["cat"]}}).json()
            assert answer["status"] == "FAILED" and answer["error"].startswith("Failed to download image"), answer
    finally:
        strict.__exit__(None, None, None)


def test_protocol_errors_come_in_runpods_error_envelope(client):
    unknown = client.get("/v2/e/status/no-such-job")
    assert unknown.status_code == 404 and set(unknown.json()) == {"error"}
    assert "request does not exist" in unknown.json()["error"]
    no_input = client.post("/v2/e/run", json={"image_url": "x"})
    assert no_input.status_code == 422 and "input" in no_input.json()["error"]
    not_json = client.post("/runsync", content=b"{oops", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422 and set(not_json.json()) == {"error"}


def test_cancel_stops_a_running_job_and_a_queued_one_never_runs(client, server):
    slow = client.post("/run", json=job_input(server, "cat", image="/slow-drip")).json()
    queued = client.post("/run", json=job_input(server, "cat")).json()
    wait_until_running(client, slow["id"])  # downloading, one byte every 50 ms
    assert client.post(f"/v2/e/cancel/{queued['id']}").json() == {"id": queued["id"], "status": "CANCELLED"}
    assert client.post(f"/cancel/{slow['id']}").json() == {"id": slow["id"], "status": "CANCELLED"}
    started = time.monotonic()
    after = client.post("/runsync", json=job_input(server, "cat")).json()
    assert after["status"] == "COMPLETED" and time.monotonic() - started < 4  # not stuck behind the drip
    never_ran = client.get(f"/status/{queued['id']}").json()
    assert never_ran == {"id": queued["id"], "status": "CANCELLED"}  # no delayTime: it never started
    assert client.post(f"/cancel/{after['id']}").json()["status"] == "COMPLETED"  # finished jobs stay so


def test_purge_queue_cancels_only_queued_jobs(client, server):
    slow = client.post("/run", json=job_input(server, "cat", image="/slow-drip")).json()
    wait_until_running(client, slow["id"])
    waiting = [client.post("/run", json=job_input(server, "cat")).json()["id"] for _ in range(2)]
    assert client.post("/v2/e/purge-queue").json() == {"removed": 2, "status": "completed"}
    assert [client.get(f"/status/{i}").json()["status"] for i in waiting] == ["CANCELLED"] * 2
    client.post(f"/cancel/{slow['id']}")


def test_health_counts_jobs_by_state_and_shows_the_worker(engine, server, tmp_path):
    fresh = client_over(engine, url_allow_hosts=["127.0.0.1"], data_dir=tmp_path)
    try:
        empty = fresh.get("/v2/e/health").json()
        assert empty == {"jobs": {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0},
                         "workers": {"idle": 1, "running": 0, "initializing": 0, "unhealthy": 0}}
        fresh.post("/runsync", json=job_input(server, "cat"))
        fresh.post("/runsync", json={"input": {"concepts": ["cat"]}})
        assert fresh.get("/v2/e/health").json()["jobs"] == {"completed": 1, "failed": 1, "inProgress": 0,
                                                            "inQueue": 0, "retried": 0}
        assert fresh.get("/health").json()["model_loaded"] is True  # bare /health stays the native probe
    finally:
        fresh.__exit__(None, None, None)


def test_jobs_belong_to_the_api_key_that_made_them(engine, server, tmp_path):
    keyed = client_over(engine, api_keys=["key-a", "key-b"], url_allow_hosts=["127.0.0.1"], data_dir=tmp_path)
    try:
        as_a, as_b = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
        job = keyed.post("/v2/e/runsync", json=job_input(server, "cat"), headers=as_a).json()
        assert keyed.get(f"/v2/e/status/{job['id']}", headers=as_a).json()["status"] == "COMPLETED"
        assert keyed.get(f"/v2/e/status/{job['id']}", headers=as_b).status_code == 404
        assert keyed.post(f"/v2/e/cancel/{job['id']}", headers=as_b).status_code == 404
        assert keyed.get("/v2/e/health", headers=as_b).json()["jobs"]["completed"] == 0
        refused = keyed.post("/v2/e/runsync", json=job_input(server, "cat"), headers={"Authorization": "Bearer x"})
        assert refused.status_code == 401 and set(refused.json()) == {"error"}
        assert keyed.get("/v2/e/health").status_code == 401
    finally:
        keyed.__exit__(None, None, None)


def test_jobs_survive_a_restart_and_expire_after_their_ttl(engine, server, tmp_path):
    first = client_over(engine, url_allow_hosts=["127.0.0.1"], data_dir=tmp_path, runpod_job_ttl_s=60)
    done = first.post("/runsync", json=job_input(server, "cat")).json()
    first.__exit__(None, None, None)
    store = JobStore(tmp_path, ttl_s=3600)  # a crash left one job queued and one running
    queued = store.create("runpod", job_input(server, "dog"))
    running = store.create("runpod", job_input(server, "cat"))
    running.status, running.started_at = "running", time.time()
    store.save(running)
    second = client_over(engine, url_allow_hosts=["127.0.0.1"], data_dir=tmp_path, runpod_job_ttl_s=60)
    store = second.app.state.services.runpod_jobs.store
    clock = store.clock = ManualClock(now=store.get(done["id"]).finished_at)  # the TTL counts from the job's end
    try:
        assert second.get(f"/status/{done['id']}").json() == done
        assert list(wait_for(second, queued.job_id)["output"]["output"]["results"]) == ["dog"]
        interrupted = second.get(f"/status/{running.job_id}").json()
        assert interrupted["status"] == "FAILED" and "restarted" in interrupted["error"]
        clock.advance(59)
        assert second.get(f"/status/{done['id']}").json() == done, "within the TTL"
        clock.advance(2)
        assert second.get(f"/status/{done['id']}").status_code == 404
    finally:
        second.__exit__(None, None, None)


def test_out_of_memory_inside_a_job_fails_it_as_out_of_memory_not_as_an_internal_error(client, server, engine,
                                                                                      monkeypatch):
    from sam3_api.errors import ModelOutOfMemory

    async def out_of_memory(*args, **kwargs):
        raise ModelOutOfMemory("the model ran out of memory on this image; caches were cleared, retry")

    monkeypatch.setattr(engine, "segment_text", out_of_memory)
    answer = client.post("/runsync", json=job_input(server, "cat")).json()
    assert answer["status"] == "FAILED", answer
    assert answer["error"] == "Segmentation failed: the model ran out of memory on this image; caches were " \
                              "cleared, retry"
