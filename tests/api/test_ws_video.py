"""WebSocket /ws/video over the real dev-tiny engine: every message, the tracking flow, corrections, cancel,
export as a job. Error events are in test_ws_video_errors.py, bounds and memory in test_ws_video_memory.py."""

from __future__ import annotations

import base64
import json

import pytest
from pycocotools import mask as coco_mask
from starlette.websockets import WebSocketDisconnect

from tests.api.conftest import client_over
from tests.api.ws_video_helpers import (  # noqa: F401 - fixtures
    FRAMES, HEIGHT, WIDTH, assert_still_open, click, client, clip24, clip_id, clip_server, long_clip_id, opened,
    propagate, receive_until, session)
from tests.videos import square_box

pytestmark = pytest.mark.timeout(180)


def centre(frame: int) -> tuple[float, float]:
    x1, y1, x2, y2 = square_box(frame)
    return (x1 + x2) / 2, (y1 + y2) / 2


def live_video(client, ws_session_id: str):
    """The engine's InteractiveVideo of a live session (to count its backbone runs)."""
    return client.app.state.services.ws_video_sessions.connections[ws_session_id].session.video


def test_session_created_announces_the_idle_ttl_and_the_frame_limit_and_metrics_count_the_session(client):
    with session(client) as (ws, created):
        assert len(created["session_id"]) == 32 and created["idle_ttl_s"] > 0 and created["max_frames"] == 1800
        assert "sam3_video_sessions 1.0" in client.get("/metrics").text
    assert "sam3_video_sessions 0.0" in client.get("/metrics").text


def test_open_by_upload_id_then_click_box_and_undo_answer_with_that_frames_masks(client, clip_id):
    with session(client) as (ws, _):
        video = opened(ws, clip_id)
        assert (video["width"], video["height"], video["frame_count"], video["object_id"]) == (WIDTH, HEIGHT, FRAMES, 1)
        assert video["frame_url"] == f"/video/sources/{clip_id}/frames/{{frame}}.jpg"
        first = click(ws, 3, *centre(3))
        assert (first["frame"], first["object_id"], first["points"], first["labels"]) == (3, 1, [list(centre(3))], [1])
        [mask] = first["objects"]
        assert mask["object_id"] == 1 and mask["mask"]["size"] == [HEIGHT, WIDTH] and 0 <= mask["score"] <= 1
        ws.send_json({"type": "box", "frame": 3, "x1": 10, "y1": 10, "x2": 60, "y2": 50, "object_id": 2})
        boxed = ws.receive_json()
        assert boxed["type"] == "prompt_result" and boxed["object_id"] == 2 and boxed["box"] == [10, 10, 60, 50]
        assert sorted(o["object_id"] for o in boxed["objects"]) == [1, 2], "every object's mask on that frame"
        ws.send_json({"type": "undo", "object_id": 2})
        undone = ws.receive_json()
        assert undone["type"] == "prompt_result" and undone["box"] is None and undone["points"] == []
        assert [o["object_id"] for o in undone["objects"]] == [1]
        assert ws.receive_json() == {"type": "object_removed", "object_id": 2, "current_object_id": 1}


def test_a_second_click_on_a_frame_runs_no_backbone(client, clip_id):
    with session(client) as (ws, created):
        opened(ws, clip_id)
        first = click(ws, 7, 30, 40)
        video = live_video(client, created["session_id"])
        runs = video.backbone_runs
        second = click(ws, 7, 100, 90, label=0)
        assert not first["cached"] and second["cached"] and video.backbone_runs == runs
        assert second["labels"] == [1, 0] and len(second["points"]) == 2


def test_propagation_streams_every_frame_with_progress_and_a_seen_frame_is_clicked_without_the_backbone(
        client, clip_id):
    with session(client) as (ws, created):
        opened(ws, clip_id)
        click(ws, 0, *centre(0))
        started, frames, done = propagate(ws, direction="both")
        assert started == {"type": "propagation_started", "direction": "both", "from_frame": 0, "frames_total": FRAMES}
        assert sorted(f["frame"] for f in frames) == list(range(FRAMES))
        assert [f["frames_done"] for f in frames] == list(range(1, FRAMES + 1))
        assert all(f["source"] == "propagation" and f["frames_total"] == FRAMES for f in frames)
        assert all([o["object_id"] for o in f["objects"]] == [1] for f in frames)
        assert done["status"] == "finished" and done["frames_done"] == FRAMES and done["fps"] > 0
        video = live_video(client, created["session_id"])
        runs = video.backbone_runs
        assert click(ws, FRAMES - 1, 20, 20)["cached"], "the last frames propagated keep their backbone output"
        assert video.backbone_runs == runs


def test_a_correction_retracks_forward_from_its_frame_and_leaves_earlier_frames_alone(client, clip_id):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        click(ws, 0, *centre(0))
        _, first_pass, _ = propagate(ws, direction="forward")
        before = {f["frame"]: f["objects"] for f in first_pass}
        click(ws, 15, 120, 100)  # the correction
        started, second_pass, done = propagate(ws, direction="forward")
        assert started["from_frame"] == 15 and started["frames_total"] == FRAMES - 15
        assert sorted(f["frame"] for f in second_pass) == list(range(15, FRAMES))
        for frame in (0, 7, 14):
            ws.send_json({"type": "get_frame", "frame": frame})
            stored = ws.receive_json()
            assert stored["source"] == "stored" and stored["objects"] == before[frame]
        assert any(f["objects"] != before[f["frame"]] for f in second_pass)


def test_cancel_stops_within_a_frame_step_while_other_messages_are_answered(client, long_clip_id):
    with session(client) as (ws, _):
        opened(ws, long_clip_id)
        click(ws, 0, 40, 40)
        ws.send_json({"type": "propagate", "direction": "forward"})
        ws.send_json({"type": "ping"})
        ws.send_json({"type": "cancel"})
        events = receive_until(ws, "propagation_done")
        kinds = [e["type"] for e in events]
        assert kinds[0] == "propagation_started" and kinds.index("pong") < kinds.index("propagation_done")
        done = events[-1]
        assert done["status"] == "cancelled" and done["frames_done"] < done["frames_total"] // 2
        assert done["frames_done"] == sum(1 for e in events if e["type"] == "frame_result")
        started, frames, again = propagate(ws, direction="forward")  # starts over from the prompted frame
        assert started["from_frame"] == 0 and again["status"] == "finished"


def test_a_text_concept_adds_every_instance_and_they_are_tracked(client, clip_id):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        click(ws, 2, *centre(2))
        ws.send_json({"type": "text", "frame": 2, "text": "  white   square ", "confidence_threshold": 0.5})
        found = ws.receive_json()
        assert found["type"] == "concept_result" and found["text"] == "white square"
        assert found["object_ids"] == [2, 3] and sorted(o["object_id"] for o in found["objects"]) == [1, 2, 3]
        _, frames, _ = propagate(ws, direction="forward")
        assert all(sorted(o["object_id"] for o in f["objects"]) == [1, 2, 3] for f in frames)


def test_undoing_a_click_on_a_concept_object_keeps_the_object(client, clip_id):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        ws.send_json({"type": "text", "frame": 2, "text": "square"})
        found = ws.receive_json()
        target = found["object_ids"][0]
        click(ws, 2, 5, 5, object_id=target)
        ws.send_json({"type": "undo", "object_id": target})
        undone = ws.receive_json()
        assert undone["type"] == "prompt_result" and target in [o["object_id"] for o in undone["objects"]]
        assert_still_open(ws)  # and no object_removed came before the pong


def test_new_object_rename_remove_and_reset(client, clip_id):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        click(ws, 0, 20, 20)
        ws.send_json({"type": "new_object"})
        assert ws.receive_json() == {"type": "object_created", "object_id": 2}
        assert click(ws, 4, 90, 60)["object_id"] == 2, "a click without object_id goes to the current object"
        ws.send_json({"type": "rename_object", "object_id": 2, "label": "  the   ball "})
        assert ws.receive_json() == {"type": "object_renamed", "object_id": 2, "label": "the ball"}
        ws.send_json({"type": "remove_object", "object_id": 1})
        assert ws.receive_json() == {"type": "object_removed", "object_id": 1, "current_object_id": 2}
        ws.send_json({"type": "get_frame", "frame": 0})
        assert ws.receive_json()["objects"] == []
        ws.send_json({"type": "reset"})
        assert ws.receive_json() == {"type": "session_reset", "object_id": 1}
        ws.send_json({"type": "get_frame", "frame": 4})
        assert ws.receive_json()["objects"] == []
        assert click(ws, 4, 90, 60)["objects"][0]["object_id"] == 1, "the video stays open"


def test_export_saves_a_succeeded_job_with_every_frame_in_order_that_survives_a_restart(client, clip_id):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        click(ws, 0, *centre(0))
        _, frames, _ = propagate(ws, direction="forward")
        ws.send_json({"type": "rename_object", "object_id": 1, "label": "square"})
        ws.receive_json()
        ws.send_json({"type": "export", "annotated_video": True})
        exported = ws.receive_json()
    assert exported["type"] == "exported" and exported["frames"] == FRAMES
    job_id = exported["job_id"]
    assert exported["links"]["video"] == f"/video/jobs/{job_id}/video.mp4"
    job = client.get(f"/video/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["progress"]["frames_done"] == FRAMES
    assert job["objects"] == [{"object_id": 1, "prompt": "square", "kind": "object", "frame_index": 0}]
    lines = [json.loads(line) for line in client.get(f"/video/jobs/{job_id}/frames").text.splitlines()]
    assert [line["frame_index"] for line in lines] == list(range(FRAMES))
    assert [line["objects"] for line in lines] == [f["objects"] for f in sorted(frames, key=lambda f: f["frame"])]
    video = client.get(f"/video/jobs/{job_id}/video.mp4")
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    restarted = client_over(client.app.state.services.engine, data_dir=client.app.state.services.settings.data_dir,
                            video_max_objects=4)  # what the engine was built with
    try:  # a new app over the same data directory: the job was found again on disk
        again = restarted.get(f"/video/jobs/{job_id}/frames").text.splitlines()
        assert [json.loads(line) for line in again] == lines
    finally:
        restarted.__exit__(None, None, None)


def test_a_video_sent_in_the_socket_is_a_private_copy_deleted_when_the_session_ends(client, clip24, clip_server):
    sent = {"binary": clip24, "base64": {"type": "open", "video_base64": base64.b64encode(clip24).decode()},
            "url": {"type": "open", "video_url": f"{clip_server}/clip24.mp4", "frame_stride": 2}}
    for how, message in sent.items():
        with session(client) as (ws, _):
            ws.send_bytes(message) if isinstance(message, bytes) else ws.send_json(message)
            video = ws.receive_json()
            assert video["type"] == "video_opened", (how, video)
            assert video["frame_count"] == (FRAMES // 2 if how == "url" else FRAMES)
            assert client.get(f"/video/sources/{video['video_id']}").json()["kind"] == "session"
            assert click(ws, 1, 30, 30)["type"] == "prompt_result"
        assert client.get(f"/video/sources/{video['video_id']}").status_code == 404
        assert not (client.app.state.services.video_sources.root / video["video_id"]).exists()


def test_a_video_jobs_frames_open_by_the_job_id(client, clip24):
    response = client.post("/video/jobs", files={"video": ("clip.mp4", clip24, "video/mp4")},
                           data={"objects": json.dumps([{"frame_index": 0, "box": [4, 4, 28, 28]}])})
    job_id = response.json()["job_id"]
    with session(client) as (ws, _):
        video = opened(ws, job_id)
        assert video["video_id"] == job_id and video["frame_count"] == FRAMES
        assert click(ws, 5, 40, 40)["objects"][0]["mask"]["size"] == [HEIGHT, WIDTH]
    frame = client.get(f"/video/sources/{job_id}/frames/5.jpg")
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"


def test_opening_another_video_starts_over_and_close_says_goodbye(client, clip_id, long_clip_id):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        click(ws, 0, 20, 20)
        second = opened(ws, long_clip_id)
        assert second["video_id"] == long_clip_id and second["object_id"] == 1
        ws.send_json({"type": "get_frame", "frame": 0})
        assert ws.receive_json()["objects"] == []
        assert_still_open(ws)
        ws.send_json({"type": "close"})
        assert ws.receive_json() == {"type": "session_closed", "reason": "closed by client"}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000
    assert client.app.state.services.video_sources.get(clip_id, None).users == 0, "the upload is released, not deleted"


def test_rle_masks_decode_to_the_frame_size(client, clip_id):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        result = click(ws, 0, *centre(0))
        rle = result["objects"][0]["mask"]
        mask = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert mask.shape == (HEIGHT, WIDTH) and mask.any()
        box = result["objects"][0]["box"]
        ys, xs = mask.nonzero()
        assert box == [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
