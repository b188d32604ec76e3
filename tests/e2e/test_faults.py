"""Faults injected into the real server (uvicorn, dev-tiny, tests/faultapp.py): each ends as promised and the
next request succeeds. A raising model answers one generic 500 (traceback in the log only), an out-of-memory
answers 503 and empties the cache, a request past SAM3_REQUEST_TIMEOUT_S answers 504 without running, a
hanging client gets 408 while others are served, and abandoned requests are dropped before they run.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from tests.e2e.ops_server import BOX, image_upload, json_lines, raw_request, sample, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(autouse=True)
def healthy_again(fault_server):
    """Every test starts and ends with no fault and an empty queue."""
    fault_server.faults(mode="none")
    yield
    fault_server.faults(mode="none")
    wait_for(lambda: sample(fault_server.metrics(), "sam3_queue_depth") == 0)


def _box(server, seed: int, **headers) -> requests.Response:
    return requests.post(f"{server.base_url}/segment/box", files=image_upload(seed), data=BOX, headers=headers,
                         timeout=60)


def test_a_model_that_raises_answers_one_generic_500_and_logs_the_traceback(fault_server):
    assert _box(fault_server, 1).status_code == 200
    fault_server.faults(mode="raise", on="decode", times=1)
    failed = _box(fault_server, 1, **{"X-Request-ID": "fault-raise-1"})
    assert failed.status_code == 500 and failed.json()["code"] == "internal_error"
    assert "secret-internal-detail" not in failed.text and "Traceback" not in failed.text
    assert failed.headers["X-Request-ID"] == "fault-raise-1"
    assert _box(fault_server, 1).status_code == 200
    lines = json_lines(fault_server.log())  # LOG_FORMAT=json: every line of the log is one JSON object
    of_request = [line for line in lines if line.get("request_id") == "fault-raise-1"]
    errors = [line for line in of_request if line["level"] == "ERROR"]
    assert errors and all("secret-internal-detail" in line["exc_info"] for line in errors)
    assert any("/segment/box" in line["message"] and "500" in line["message"] for line in of_request)  # access log


def test_cuda_out_of_memory_answers_503_clears_the_cache_and_the_next_request_succeeds(fault_server):
    assert _box(fault_server, 2).status_code == 200
    assert fault_server.state()["cached_images"] >= 1
    fault_server.faults(mode="oom", on="decode", times=1)
    failed = _box(fault_server, 2)
    assert failed.status_code == 503 and failed.json()["code"] == "out_of_memory"
    assert int(failed.headers["Retry-After"]) >= 1
    assert fault_server.state()["cached_images"] == 0
    again = _box(fault_server, 2)
    assert again.status_code == 200 and again.json()["timing"]["cached"] is False  # re-encoded from scratch
    assert sample(fault_server.metrics(), "sam3_model_jobs_total", kind="box", outcome="out_of_memory") >= 1


def test_a_host_memory_error_answers_503_and_the_next_request_succeeds(fault_server):
    fault_server.faults(mode="memory", on="encode", times=1)
    failed = _box(fault_server, 3)
    assert failed.status_code == 503 and failed.json()["code"] == "out_of_memory"
    assert _box(fault_server, 3).status_code == 200


def test_a_request_that_waits_past_its_deadline_answers_504_and_never_runs(fault_server):
    # SAM3_REQUEST_TIMEOUT_S=3 on this server; the first request holds the model thread for 3.5 s.
    fault_server.faults(mode="slow", on="encode", seconds=3.5, times=1)
    encodes = fault_server.state()["calls"].get("encode", 0)
    first: list[requests.Response] = []
    runner = threading.Thread(target=lambda: first.append(_box(fault_server, 10)))
    runner.start()
    wait_for(lambda: fault_server.state()["calls"].get("encode", 0) == encodes + 1)
    late = _box(fault_server, 11)
    runner.join(30)
    assert late.status_code == 504 and late.json()["code"] == "queue_timeout"
    assert "SAM3_REQUEST_TIMEOUT_S" in late.json()["detail"]
    assert first[0].status_code == 200
    assert fault_server.state()["calls"]["encode"] == encodes + 1  # the late one never reached the model
    assert _box(fault_server, 11).status_code == 200


def test_a_hanging_client_gets_408_while_other_requests_are_served(fault_server):
    hanging = socket.create_connection(("127.0.0.1", fault_server.port), timeout=10)
    hanging.sendall(b"POST /segment/box HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                    b"Content-Length: 100000\r\n\r\n--b\r\n")  # ...and then nothing more
    started = time.monotonic()
    assert _box(fault_server, 4).status_code == 200  # served while the other client hangs
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = hanging.recv(65536)
        if not chunk:
            break
        answer += chunk
    hanging.close()
    assert answer.startswith(b"HTTP/1.1 408") and b'"code":"body_timeout"' in answer.replace(b" ", b"")
    assert time.monotonic() - started < 10  # SAM3_BODY_TIMEOUT_S=1
    assert _box(fault_server, 4).status_code == 200


def test_a_hanging_client_of_a_drop_in_api_gets_its_408_in_that_apis_envelope(fault_server):
    hanging = socket.create_connection(("127.0.0.1", fault_server.port), timeout=10)
    hanging.sendall(b"POST /sam3/embed_image HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n{\"image\": ")  # ...and then nothing more
    answer = b""
    while not answer.rstrip().endswith(b"}"):
        chunk = hanging.recv(65536)
        if not chunk:
            break
        answer += chunk
    hanging.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert set(json.loads(body)) == {"message"} and "SAM3_BODY_TIMEOUT_S" in json.loads(body)["message"]


def test_after_twelve_abandoned_heavy_requests_the_next_one_waits_for_at_most_two(fault_server):
    heavy_s = 0.4  # every new-image encode (a heavy job) takes this long
    fault_server.faults(mode="slow", on="encode", seconds=heavy_s)
    before = fault_server.metrics()
    sockets = [raw_request(fault_server, "/segment/box", image_upload(100 + i), BOX) for i in range(12)]
    ok = lambda m: sample(m, "sam3_model_jobs_total", kind="box", outcome="ok")  # noqa: E731
    wait_for(lambda: (m := fault_server.metrics()) and sample(m, "sam3_queue_depth") + ok(m) - ok(before) >= 12)
    encodes_at_abandon = fault_server.state()["calls"]["encode"]
    for sock in sockets:
        sock.close()
    started = time.monotonic()
    response = _box(fault_server, 200)  # a heavy request too: same priority, so it queues behind what is left
    waited = time.monotonic() - started
    assert response.status_code == 200
    started_after_abandon = fault_server.state()["calls"]["encode"] - encodes_at_abandon - 1  # less its own
    assert started_after_abandon + 1 <= 2  # plus the one that was running when the clients left
    assert waited < 4 * heavy_s  # at most two heavy jobs and its own; all twelve would take 4.8 s
    after = fault_server.metrics()
    cancelled = sample(after, "sam3_model_jobs_total", kind="box", outcome="cancelled") - sample(
        before, "sam3_model_jobs_total", kind="box", outcome="cancelled")
    assert cancelled >= 10
    assert sample(after, "sam3_client_disconnects_total") - sample(before, "sam3_client_disconnects_total") >= 11


def test_an_abandoned_automatic_request_stops_between_decoder_batches(fault_server):
    assert _box(fault_server, 5).status_code == 200  # cached: only the decoder batches remain
    fault_server.faults(mode="slow", on="decode", seconds=0.15)  # 16 batches of 4 points: 2.4 s in all
    decodes = fault_server.state()["calls"].get("decode", 0)
    params = {"points_per_side": 8, "points_per_batch": 4, "pred_iou_thresh": 0, "stability_score_thresh": 0}
    sock = raw_request(fault_server, "/segment/auto", image_upload(5), params)
    wait_for(lambda: fault_server.state()["calls"].get("decode", 0) >= decodes + 2)
    sock.close()
    wait_for(lambda: sample(fault_server.metrics(), "sam3_model_jobs_total", kind="auto", outcome="stopped") >= 1)
    settled = fault_server.state()["calls"]["decode"]
    time.sleep(0.5)
    assert fault_server.state()["calls"]["decode"] == settled < decodes + 16
    fault_server.faults(mode="none")
    finished = requests.post(f"{fault_server.base_url}/segment/auto", files=image_upload(5), data=params, timeout=60)
    assert finished.status_code == 200 and fault_server.state()["calls"]["decode"] == settled + 16
