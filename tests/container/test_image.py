"""The repository's Dockerfile, built and run for real (podman or Docker) on dev-tiny.

One container serves the module: /data is a bind mount of a host directory given to uid 10001 (the documented
fix), so the run proves the bind-mount form too. It answers every prompt kind, a video job and /app, runs as
uid 10001, writes /data, passes its own HEALTHCHECK, and `stop -t 40` ends it cleanly well within the grace.
A root-owned bind mount makes the container exit at once with the message that names the directory and the fix.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import requests

from tests.conftest import SAMPLES
from tests.container.engine import UID, free_port
from tests.videos import make_video, square_box

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
STOP_GRACE_S = 40  # docker stop -t 40 / compose stop_grace_period: the app drains for SAM3_SHUTDOWN_GRACE_S=30


@pytest.fixture(scope="module")
def server(engine, image, tmp_path_factory):
    data = tmp_path_factory.mktemp("bind-data")
    os.chown(data, UID, UID)  # what the README tells bind-mount users: sudo chown -R 10001:10001 ./data
    port = free_port()
    name = engine.start(f"sam3-api-ci-{os.getpid()}", image, port, {"SAM3_MODEL": "dev-tiny"},
                        "-v", f"{data}:/data")
    base = f"http://127.0.0.1:{port}"
    try:
        engine.wait_ready(name, base)
        yield {"name": name, "url": base, "data": data}
    finally:
        engine.remove(name)


def segment(base: str, kind: str, **fields) -> dict:
    with open(SAMPLES / "astronaut.png", "rb") as photo:
        response = requests.post(f"{base}/segment/{kind}", files={"image": ("astronaut.png", photo, "image/png")},
                                 data={key: str(value) for key, value in fields.items()}, timeout=120)
    assert response.status_code == 200, f"/segment/{kind}: {response.status_code} {response.text[:500]}"
    body = response.json()
    assert body["success"] is True and body["num_masks"] == len(body["masks"]) == len(body["scores"])
    return body


def test_every_prompt_kind_answers(server):
    base = server["url"]
    assert requests.get(f"{base}/health/ready", timeout=10).json()["ready"] is True
    assert segment(base, "box", x1=100, y1=40, x2=400, y2=300)["num_masks"] == 1
    assert segment(base, "points", points_x="230,60", points_y="150,40", labels="1,0")["num_masks"] == 1
    segment(base, "text", text="person")  # random weights: any number of masks, but a well-formed answer
    segment(base, "auto")


def test_video_job_runs_and_writes_its_results_under_data(server):
    clip = make_video(server["data"].parent / f"clip-{os.getpid()}.mp4", frames=12)
    with open(clip, "rb") as video:
        response = requests.post(f"{server['url']}/video/jobs", files={"video": ("clip.mp4", video, "video/mp4")},
                                 data={"objects": json.dumps([{"frame_index": 0, "box": list(square_box(0))}])},
                                 timeout=120)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 180
    while (job := requests.get(f"{server['url']}/video/jobs/{job_id}", timeout=10).json())["status"] in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    frames = requests.get(f"{server['url']}/video/jobs/{job_id}/frames", timeout=60).text.splitlines()
    assert len(frames) == 12
    # The job lives on the bind mount, written by the container's uid.
    manifest = server["data"] / "jobs" / "jobs" / job_id / "manifest.json"
    assert manifest.exists() and manifest.stat().st_uid == UID


def test_web_app_is_served(server):
    response = requests.get(f"{server['url']}/app", timeout=10)
    assert response.status_code == 200 and "<title>SAM 3" in response.text
    assert requests.get(f"{server['url']}/app/app.js", timeout=10).status_code == 200


def test_runs_as_uid_10001_and_can_write_data(engine, server):
    assert engine("exec", server["name"], "id", "-u").stdout.strip() == str(UID)
    assert engine("exec", server["name"], "pwd").stdout.strip() == "/app"
    engine("exec", server["name"], "sh", "-c", "echo ok > /data/jobs/probe && rm /data/jobs/probe")


def test_image_healthcheck_passes(engine, server):
    config = engine.inspect(server["name"])["Config"]
    assert "/health/ready" in " ".join(config["Healthcheck"]["Test"]), "the image lost its HEALTHCHECK"
    done = engine.run_healthcheck(server["name"])
    assert done.returncode == 0, done.stdout + done.stderr
    if engine.is_podman:
        assert engine.inspect(server["name"])["State"]["Health"]["Status"] == "healthy"


def test_stop_ends_the_server_cleanly_within_the_grace_period(engine, server):
    started = time.monotonic()
    engine("stop", "-t", str(STOP_GRACE_S), server["name"], timeout=STOP_GRACE_S + 30)
    seconds = time.monotonic() - started
    state = engine.inspect(server["name"])["State"]
    logs = engine.logs(server["name"])
    assert state["ExitCode"] == 0, logs[-3000:]  # SIGKILL after the grace would be 137
    assert seconds < STOP_GRACE_S and "Application shutdown complete" in logs, f"{seconds:.1f} s\n{logs[-3000:]}"


def test_root_owned_bind_mount_exits_at_once_with_the_fix(engine, image, cleanup, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    assert data.stat().st_uid == 0 and not (data.stat().st_mode & 0o002)
    name = engine.start(f"sam3-api-ci-rootdata-{os.getpid()}", image, free_port(), {"SAM3_MODEL": "dev-tiny"},
                        "-v", f"{data}:/data")
    assert engine.wait_exit(name, timeout=120) == 1
    logs = engine.logs(name)
    assert "Traceback" not in logs, logs
    assert "cannot write /data/jobs (SAM3_DATA_DIR)" in logs and "runs as uid 10001" in logs, logs
    assert "sudo chown -R 10001:10001" in logs, logs
