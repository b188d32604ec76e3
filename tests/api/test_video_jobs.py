"""The video job API over the real dev-tiny engine: submit, follow, read frames, cancel, delete, restart."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pycocotools import mask as coco_mask

from sam3_api.main import create_app
from tests.conftest import dev_settings
from tests.polling import settled
from tests.videos import square_box, video_bytes

pytestmark = pytest.mark.timeout(180)
WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope="module")
def clip48() -> bytes:
    return video_bytes(frames=48)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(dev_settings(data_dir=tmp_path_factory.mktemp("jobs"), video_max_objects=4))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.services.engine.wait_ready(120).ready
        yield client


def submit(client, video: bytes, **fields):
    form = {key: json.dumps(value) if isinstance(value, (list, dict)) else str(value) for key, value in fields.items()}
    return client.post("/video/jobs", files={"video": ("clip.mp4", video, "video/mp4")}, data=form)


def wait_until_finished(client, job_id: str, timeout: float = 90) -> dict:
    return settled(client, f"/video/jobs/{job_id}", timeout=timeout, interval=0.1)


def frame_lines(client, job_id: str) -> list[dict]:
    response = client.get(f"/video/jobs/{job_id}/frames")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line]


def test_a_box_on_frame_10_tracked_both_ways_gives_48_frames_with_one_stable_object(client, clip48):
    box = list(square_box(10))
    response = submit(client, clip48, objects=[{"frame_index": 10, "box": box}], annotated_video="true")
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "queued" and created["links"]["frames"].endswith("/frames")
    assert created["video"] == {"width": WIDTH, "height": HEIGHT, "fps": 24.0, "frame_count": 48,
                                "start_frame": 0, "frame_stride": 1}
    job = wait_until_finished(client, created["job_id"])
    assert job["status"] == "succeeded", job
    assert job["progress"]["frames_done"] == job["progress"]["frames_total"] == 48 and job["progress"]["fps"] > 0
    assert job["objects"] == [{"object_id": 1, "prompt": "box", "kind": "box", "frame_index": 10}]
    lines = frame_lines(client, created["job_id"])
    assert [line["frame_index"] for line in lines] == list(range(48))
    for line in lines:
        assert [obj["object_id"] for obj in line["objects"]] == [1]
        mask = coco_mask.decode({**line["objects"][0]["mask"],
                                 "counts": line["objects"][0]["mask"]["counts"].encode()})
        assert mask.shape == (HEIGHT, WIDTH)
    video = client.get(f"/video/jobs/{created['job_id']}/video.mp4")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp" and video.content.find(b"moov") < video.content.find(b"mdat")


def test_text_job_in_base64_json_finds_objects_and_streams_polygons(client):
    body = {"video_base64": base64.b64encode(video_bytes(frames=12)).decode(), "texts": ["cat"],
            "mask_format": "polygon"}
    created = client.post("/video/jobs", json=body)
    assert created.status_code == 202, created.text
    job = wait_until_finished(client, created.json()["job_id"])
    assert job["status"] == "succeeded" and job["objects"] and all(o["prompt"] == "cat" for o in job["objects"])
    lines = frame_lines(client, job["job_id"])
    assert len(lines) == 12 and lines[0]["objects"]
    ring = lines[0]["objects"][0]["mask"][0]
    assert all(0 <= x <= WIDTH and 0 <= y <= HEIGHT for x, y in ring), "polygon rings in pixel coordinates"


def test_part_of_a_clip_with_a_stride_reports_original_frame_indices(client, clip48):
    created = submit(client, clip48, objects=[{"frame_index": 20, "points": [[60, 50]]}], start_frame=10,
                     end_frame=30, frame_stride=5, direction="forward").json()
    assert created["video"]["frame_count"] == 5
    job = wait_until_finished(client, created["job_id"])
    lines = frame_lines(client, job["job_id"])
    assert [line["frame_index"] for line in lines] == [10, 15, 20, 25, 30]
    assert [bool(line["objects"]) for line in lines] == [False, False, True, True, True]


def test_events_stream_progress_frames_and_the_end(client):
    created = submit(client, video_bytes(frames=8), objects=[{"frame_index": 0, "box": [10, 10, 60, 60]}]).json()
    response = client.get(f"/video/jobs/{created['job_id']}/events")
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if block.strip()]
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert kinds[0] == "progress" and kinds[-1] == "end" and kinds.count("frame") == 8
    end = json.loads(events[-1].split("data: ", 1)[1])
    assert end == {"status": "succeeded", "error": None}


def test_a_long_job_is_cancelled_within_a_frame_step_and_keeps_its_frames(client):
    created = submit(client, video_bytes(frames=400, size=(64, 48)),
                     objects=[{"frame_index": 0, "box": [5, 5, 30, 30]}], direction="forward").json()
    job_id = created["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/video/jobs/{job_id}").json()["progress"]["frames_done"] < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled_at = time.monotonic()
    assert client.post(f"/video/jobs/{job_id}/cancel").status_code == 200
    job = wait_until_finished(client, job_id, timeout=30)
    assert job["status"] == "cancelled" and time.monotonic() - cancelled_at < 5
    done = job["progress"]["frames_done"]
    assert 5 <= done < 400
    assert len(frame_lines(client, job_id)) == done, "the finished frames stay readable"
    again = client.post(f"/video/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "conflict" and "cancelled" in again.json()["detail"]


def test_delete_removes_a_job(client):
    created = submit(client, video_bytes(frames=4), objects=[{"frame_index": 0, "box": [10, 10, 60, 60]}]).json()
    wait_until_finished(client, created["job_id"])
    assert client.delete(f"/video/jobs/{created['job_id']}").status_code == 204
    assert client.get(f"/video/jobs/{created['job_id']}").status_code == 404


def test_finished_jobs_survive_a_restart_with_the_same_data_dir(tmp_path, clip48):
    settings = dev_settings(data_dir=tmp_path)
    with TestClient(create_app(settings)) as first:
        assert first.app.state.services.engine.wait_ready(120).ready
        job_id = submit(first, clip48, objects=[{"frame_index": 10, "box": list(square_box(10))}]).json()["job_id"]
        wait_until_finished(first, job_id)
        before = frame_lines(first, job_id)
    with TestClient(create_app(settings)) as second:
        assert second.get(f"/video/jobs/{job_id}").json()["status"] == "succeeded"
        assert [job["job_id"] for job in second.get("/video/jobs").json()["jobs"]] == [job_id]
        assert frame_lines(second, job_id) == before and len(before) == 48


def test_a_running_job_is_reported_interrupted_after_a_restart_with_its_frames(tmp_path):
    settings = dev_settings(data_dir=tmp_path)
    with TestClient(create_app(settings)) as first:
        assert first.app.state.services.engine.wait_ready(120).ready
        job_id = submit(first, video_bytes(frames=300, size=(64, 48)),
                        objects=[{"frame_index": 0, "box": [5, 5, 30, 30]}], direction="forward").json()["job_id"]
        while first.get(f"/video/jobs/{job_id}").json()["progress"]["frames_done"] < 3:
            time.sleep(0.05)
    with TestClient(create_app(settings)) as second:
        job = second.get(f"/video/jobs/{job_id}").json()
        assert job["status"] == "interrupted" and "frames it finished are kept" in job["error"]
        assert len(frame_lines(second, job_id)) >= 3


def test_queued_jobs_beyond_the_limit_answer_503_with_retry_after(tmp_path):
    with TestClient(create_app(dev_settings(data_dir=tmp_path, video_max_queued_jobs=1))) as client:
        assert client.app.state.services.engine.wait_ready(120).ready
        clip = video_bytes(frames=200, size=(64, 48))
        statuses = [submit(client, clip, objects=[{"frame_index": 0, "box": [5, 5, 30, 30]}]).status_code
                    for _ in range(3)]
        assert statuses[0] == 202 and 503 in statuses
        refused = submit(client, clip, objects=[{"frame_index": 0, "box": [5, 5, 30, 30]}])
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
        for job in client.get("/video/jobs").json()["jobs"]:
            client.post(f"/video/jobs/{job['job_id']}/cancel")


def test_a_websocket_click_is_answered_while_a_video_job_runs(client):
    created = submit(client, video_bytes(frames=200, size=(64, 48)),
                     objects=[{"frame_index": 0, "box": [5, 5, 30, 30]}], direction="forward").json()
    image = "data:image/png;base64," + base64.b64encode(
        __import__("tests.conftest", fromlist=["png_bytes"]).png_bytes(np.full((40, 50, 3), 90, np.uint8))).decode()
    with client.websocket_connect("/ws/realtime") as ws:
        ws.receive_json()
        ws.send_json({"type": "init", "image": image})
        assert ws.receive_json()["type"] == "image_loaded"
        ws.send_json({"type": "click", "x": 20, "y": 20, "label": 1})
        assert ws.receive_json()["type"] == "point_added"
        assert ws.receive_json()["type"] == "segmentation_result"
    job = client.get(f"/video/jobs/{created['job_id']}").json()
    assert job["status"] == "running", "the click was answered while the job was still tracking"
    client.post(f"/video/jobs/{created['job_id']}/cancel")
    wait_until_finished(client, created["job_id"])


def test_a_second_lifespan_of_the_same_app_runs_video_jobs(engine, tmp_path):
    app = create_app(dev_settings(data_dir=tmp_path), engine=engine)
    with TestClient(app):
        pass  # the first lifespan starts and stops the job runner (as a test client or a reload does)
    with TestClient(app, raise_server_exceptions=False) as client:
        created = submit(client, video_bytes(frames=4), objects=[{"frame_index": 0, "box": [10, 10, 60, 60]}])
        assert created.status_code == 202, created.text
        job = wait_until_finished(client, created.json()["job_id"], timeout=60)
        assert job["status"] == "succeeded" and job["progress"]["frames_done"] == 4
