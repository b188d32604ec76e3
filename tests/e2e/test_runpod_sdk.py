"""Runpod's own client, runpod 1.12.0, pointed at our server: the judge of seed 003's job protocol.

The SDK runs in its own venv (tests/e2e/sdk_venv.py) against two real uvicorn servers on dev-tiny that may
fetch images from the loopback test server (SAM3_URL_ALLOW_HOSTS=127.0.0.1), one without API keys and one
with SAM3_API_KEYS (and runsync answering at once, so that Endpoint.run_sync falls back to polling status).
One script per server drives what the SDK offers (Endpoint.run_sync; run, status and output; a failing job;
cancel; purge_queue; health; the asyncio client) and prints what came back; the tests below read that. A
third run with a wrong key must be refused.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.e2e.conftest import start_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
KEY = "runpod-key"
ROOM = (512, 512)  # /room.jpg of the loopback server (astronaut.png as a JPEG)

SCRIPT = r'''
import asyncio, json, os, time
import runpod

url, images = os.environ["SAM3_URL"], os.environ["SAM3_IMAGES"]
runpod.api_key = os.environ.get("SAM3_KEY") or "any-key: this server has keys off"
runpod.endpoint_url_base = url + "/v2"
endpoint = runpod.Endpoint("ool22vjm24rkma")
room = {"image_url": images + "/room.jpg", "concepts": ["wall", "door"], "confidence_threshold": 0.3}
out = {}

def call(name, operation):
    try:
        out[name] = operation()
    except Exception as error:
        out[name] = {"exception": type(error).__name__, "message": str(error)}

def run_then_poll():
    job = endpoint.run(room)  # a bare input: the SDK wraps it in {"input": ...}
    first = job.status()
    return {"first_status": first, "output": job.output(timeout=60), "final_status": job.status()}

def failing():
    job = endpoint.run({"input": {"image_url": images + "/missing.jpg", "concepts": ["wall"]}})
    output = job.output(timeout=60)
    raw = job.rp_client.get(f"{endpoint.endpoint_id}/status/{job.job_id}")  # the SDK's own transport
    return {"status": job.status(), "output": output, "raw": raw}

def cancel_and_purge():
    slow = endpoint.run({"image_url": images + "/slow-drip", "concepts": ["wall"]})
    deadline = time.monotonic() + 20
    while slow.status() != "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(0.1)
    queued = [endpoint.run(room) for _ in range(2)]
    purged = endpoint.purge_queue()
    cancelled = slow.cancel()
    return {"purge": purged, "cancel": cancelled, "slow": slow.status(), "queued": [j.status() for j in queued]}

async def with_asyncio():
    async with runpod.http_client.AsyncClientSession() as session:
        job = await runpod.AsyncioEndpoint("ool22vjm24rkma", session).run(room)
        output = await job.output(timeout=60)
        return {"status": await job.status(), "output": output}

call("run_sync", lambda: endpoint.run_sync({"input": room}, timeout=60))
call("run", run_then_poll)
call("failed", failing)
call("cancel", cancel_and_purge)
call("asyncio", lambda: asyncio.run(with_asyncio()))
call("health", lambda: endpoint.health())
print("RESULT:" + json.dumps(out))
'''

REFUSED_SCRIPT = r'''
import json, os
import runpod
runpod.api_key = os.environ["SAM3_KEY"]
runpod.endpoint_url_base = os.environ["SAM3_URL"] + "/v2"
out = {}
for name, call in (("run_sync", lambda e: e.run_sync({"image_url": "x", "concepts": ["wall"]}, timeout=30)),
                   ("health", lambda e: e.health())):
    try:
        out[name] = {"answer": call(runpod.Endpoint("ool22vjm24rkma"))}
    except Exception as error:
        out[name] = {"exception": type(error).__name__, "message": str(error)}
print("RESULT:" + json.dumps(out))
'''


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    yield from start_server(tmp_path_factory, {"SAM3_URL_ALLOW_HOSTS": "127.0.0.1"})


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    # SAM3_RUNPOD_MAX_WAIT_S=0: runsync answers IN_QUEUE at once, so run_sync takes its polling path here
    yield from start_server(tmp_path_factory, {"SAM3_URL_ALLOW_HOSTS": "127.0.0.1", "SAM3_API_KEYS": KEY,
                                               "SAM3_RUNPOD_MAX_WAIT_S": "0"})


@pytest.fixture(scope="module")
def script_runs(runpod_sdk, server, request):
    """What every SDK call returned, from one script run per server (run on first use, then remembered)."""
    runs: dict[str, dict] = {}

    def results(mode: str) -> dict:
        if mode not in runs:
            env = {"SAM3_IMAGES": server}
            if mode == "keys off":
                env["SAM3_URL"] = request.getfixturevalue("open_server")
            else:
                env.update(SAM3_URL=request.getfixturevalue("keyed_server"), SAM3_KEY=KEY)
            runs[mode] = runpod_sdk.run(SCRIPT, env=env, timeout=300)
        return runs[mode]

    return results


@pytest.fixture(params=["keys off", "keys on"])
def sdk_results(request, script_runs):
    return script_runs(request.param)


def assert_room_output(output: dict) -> None:
    """The handler's output as the seed documents it: {"output": {"image_size", "results"}} per concept."""
    assert set(output) == {"output"} and output["output"]["image_size"] == list(ROOM)
    results = output["output"]["results"]
    assert list(results) == ["wall", "door"]
    for result in results.values():
        assert result["instance_count"] == len(result["masks_base64"]) == len(result["scores"]) > 0
        assert all(0.3 < score <= 1 for score in result["scores"])
        mask = Image.open(io.BytesIO(base64.b64decode(result["masks_base64"][0])))
        assert mask.mode == "L" and mask.size == ROOM and set(np.unique(np.asarray(mask))) <= {0, 255}


def test_run_sync_returns_the_output_of_a_completed_job(sdk_results):
    assert "exception" not in sdk_results["run_sync"], sdk_results["run_sync"]
    assert_room_output(sdk_results["run_sync"])


def test_run_then_status_and_output_follow_the_job_to_completed(sdk_results):
    run = sdk_results["run"]
    assert run.get("first_status") in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED"), run
    assert run["final_status"] == "COMPLETED"
    assert_room_output(run["output"])


def test_a_failed_job_is_status_failed_with_the_handlers_error(sdk_results):
    failed = sdk_results["failed"]
    assert failed["status"] == "FAILED" and failed["output"] is None, failed
    assert failed["raw"]["status"] == "FAILED" and failed["raw"]["error"].startswith("Failed to download image")


def test_purge_queue_removes_queued_jobs_and_cancel_stops_the_running_one(sdk_results):
    done = sdk_results["cancel"]
    assert done["purge"] == {"removed": 2, "status": "completed"}, done
    assert done["cancel"]["status"] == "CANCELLED" and done["slow"] == "CANCELLED"
    assert done["queued"] == ["CANCELLED", "CANCELLED"]


def test_the_asyncio_client_runs_a_job_to_its_output(sdk_results):
    result = sdk_results["asyncio"]
    assert result.get("status") == "COMPLETED", result
    assert_room_output(result["output"])


def test_health_counts_the_jobs_of_this_key_and_shows_an_idle_worker(sdk_results):
    health = sdk_results["health"]
    assert health["jobs"] == {"completed": 3, "failed": 1, "inProgress": 0, "inQueue": 0, "retried": 0}
    assert health["workers"]["idle"] == 1 and health["workers"]["running"] == 0


def test_the_sdk_with_a_wrong_key_is_refused_as_unauthorized(runpod_sdk, keyed_server):
    refused = runpod_sdk.run(REFUSED_SCRIPT, env={"SAM3_URL": keyed_server, "SAM3_KEY": "not-the-key"})
    for call in ("run_sync", "health"):
        assert refused[call]["exception"] == "RuntimeError" and "401 Unauthorized" in refused[call]["message"]
