"""Video jobs through the real server under uvicorn: streaming, a crash and a restart, bounded memory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import LiveServer
from tests.videos import make_video, square_box

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def submit(base: str, path: Path, **fields) -> dict:
    form = {key: json.dumps(value) if isinstance(value, (list, dict)) else str(value) for key, value in fields.items()}
    with open(path, "rb") as video:
        response = requests.post(f"{base}/video/jobs", files={"video": (path.name, video, "video/mp4")}, data=form,
                                 timeout=120)
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(base: str, job_id: str, done=lambda job: job["status"] not in ("queued", "running"), timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{base}/video/jobs/{job_id}", timeout=10).json()
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id}: {job}")


def lines(base: str, job_id: str) -> list[dict]:
    response = requests.get(f"{base}/video/jobs/{job_id}/frames", timeout=120)
    return [json.loads(line) for line in response.text.splitlines() if line]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def test_frames_stream_while_running_and_survive_a_crash_and_a_restart(tmp_path_factory, tmp_path):
    env = {"SAM3_DATA_DIR": str(tmp_path / "data")}
    finished_clip = make_video(tmp_path / "clip48.mp4", frames=48)
    long_clip = make_video(tmp_path / "clip400.mp4", frames=400, size=(64, 48))
    server = LiveServer(tmp_path_factory, env)
    try:
        finished = submit(server.url, finished_clip, objects=[{"frame_index": 10, "box": list(square_box(10))}])
        wait_for(server.url, finished["job_id"])
        running = submit(server.url, long_clip, objects=[{"frame_index": 0, "box": [5, 5, 30, 30]}],
                         direction="forward")
        with requests.get(f"{server.url}/video/jobs/{running['job_id']}/frames", stream=True, timeout=60) as stream:
            first = json.loads(next(stream.iter_lines()))
        assert first["frame_index"] == 0 and first["objects"], "the first frame arrives while the job runs"
        wait_for(server.url, running["job_id"], done=lambda job: job["progress"]["frames_done"] >= 20)
    finally:
        server.kill()  # a crash: no shutdown code runs
    restarted = LiveServer(tmp_path_factory, env)
    try:
        assert len(lines(restarted.url, finished["job_id"])) == 48, "the finished job's frames are still served"
        job = requests.get(f"{restarted.url}/video/jobs/{running['job_id']}", timeout=5).json()
        assert job["status"] == "interrupted" and "frames it finished are kept" in job["error"]
        kept = lines(restarted.url, running["job_id"])
        assert len(kept) >= 20 and [line["frame_index"] for line in kept] == list(range(len(kept)))
    finally:
        restarted.stop()


def test_memory_at_frame_600_stays_within_10_percent_of_frame_100_with_4_objects(tmp_path_factory, tmp_path):
    clip = make_video(tmp_path / "clip600.mp4", frames=600, size=(160, 120))
    server = LiveServer(tmp_path_factory)
    try:
        boxes = [[4, 4, 40, 40], [60, 4, 100, 40], [4, 60, 40, 100], [100, 60, 150, 110]]
        job = submit(server.url, clip, objects=[{"frame_index": 0, "box": box} for box in boxes], direction="forward")
        wait_for(server.url, job["job_id"], done=lambda j: j["progress"]["frames_done"] >= 100)
        at_100 = rss_bytes(server.process.pid)
        final = wait_for(server.url, job["job_id"])
        at_600 = rss_bytes(server.process.pid)
        assert final["status"] == "succeeded" and final["progress"]["frames_done"] == 600
        assert at_600 <= 1.10 * at_100, f"RSS grew from {at_100 / 2**20:.0f} MiB to {at_600 / 2**20:.0f} MiB"
    finally:
        server.stop()
