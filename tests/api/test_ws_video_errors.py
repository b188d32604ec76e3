"""Every error event of /ws/video: the socket stays open after each, and the session goes on."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sam3_api.errors import EngineBusy
from sam3_api.main import create_app
from tests.api.ws_video_helpers import (  # noqa: F401 - fixtures
    FRAMES, HEIGHT, WIDTH, app_client, assert_still_open, click, client, clip24, clip_id, error_of, long_clip_id,
    opened, propagate, session, upload)
from tests.conftest import ManualClock, dev_settings
from tests.videos import video_bytes, write_png

pytestmark = pytest.mark.timeout(180)

BEFORE_OPEN = {
    "not JSON": ("{oops", "invalid_json"),
    "unknown type": ({"type": "teleport"}, "unknown_type"),
    "missing type": ({"frame": 1}, "unknown_type"),
    "missing field": ({"type": "click", "frame": 0, "x": 10}, "invalid_message"),
    "invalid label": ({"type": "click", "frame": 0, "x": 1, "y": 1, "label": 3}, "invalid_message"),
    "negative frame": ({"type": "get_frame", "frame": -1}, "invalid_message"),
    "bad direction": ({"type": "propagate", "direction": "sideways"}, "invalid_message"),
    "two video sources": ({"type": "open", "video_id": "a", "video_url": "https://example.com/v.mp4"},
                          "invalid_message"),
    "no video source": ({"type": "open"}, "invalid_message"),
    "frame selection with a video_id": ({"type": "open", "video_id": "a", "frame_stride": 2}, "invalid_message"),
    "click before open": ({"type": "click", "frame": 0, "x": 1, "y": 1}, "no_video"),
    "box before open": ({"type": "box", "frame": 0, "x1": 1, "y1": 1, "x2": 5, "y2": 5}, "no_video"),
    "text before open": ({"type": "text", "frame": 0, "text": "cat"}, "no_video"),
    "undo before open": ({"type": "undo"}, "no_video"),
    "new_object before open": ({"type": "new_object"}, "no_video"),
    "remove before open": ({"type": "remove_object", "object_id": 1}, "no_video"),
    "rename before open": ({"type": "rename_object", "object_id": 1, "label": "x"}, "no_video"),
    "propagate before open": ({"type": "propagate"}, "no_video"),
    "get_frame before open": ({"type": "get_frame", "frame": 0}, "no_video"),
    "reset before open": ({"type": "reset"}, "no_video"),
    "export before open": ({"type": "export"}, "no_video"),
    "cancel with nothing running": ({"type": "cancel"}, "not_propagating"),
    "unknown video_id": ({"type": "open", "video_id": "0" * 32}, "not_found"),
    "base64 that is not base64": ({"type": "open", "video_base64": "@@@ not base64 @@@"}, "invalid_video"),
    "private video_url": ({"type": "open", "video_url": "http://10.0.0.1/clip.mp4"}, "url_not_allowed"),
    "file video_url": ({"type": "open", "video_url": "file:///etc/passwd"}, "url_not_allowed"),
    "unreachable video_url": ({"type": "open", "video_url": "http://127.0.0.1:9/clip.mp4"}, "url_fetch_failed"),
}


@pytest.mark.parametrize("message, code", BEFORE_OPEN.values(), ids=BEFORE_OPEN.keys())
def test_a_bad_message_gets_an_error_event_and_the_socket_stays_open(client, message, code):
    with session(client) as (ws, _):
        event = error_of(ws, message)
        assert event["code"] == code and event["message"], event
        assert_still_open(ws)


def test_a_picture_sent_as_the_video_is_an_invalid_video(client, tmp_path):
    png = write_png(tmp_path / "frame.png").read_bytes()
    with session(client) as (ws, _):
        ws.send_bytes(png)
        event = ws.receive_json()
        assert event["type"] == "error" and event["code"] == "invalid_video" and "PNG" in event["message"]
        event = error_of(ws, {"type": "open", "video_base64": base64.b64encode(png).decode()})
        assert event["code"] == "invalid_video"
        assert_still_open(ws)
    sources = client.app.state.services.video_sources
    assert {p.name for p in sources.root.iterdir()} <= set(sources._sources), "failed decodes leave no files"


AFTER_OPEN = {
    "click on a frame past the end": ({"type": "click", "frame": FRAMES, "x": 1, "y": 1}, "invalid_prompt", "frame"),
    "click outside the frame": ({"type": "click", "frame": 0, "x": WIDTH + 1, "y": 1}, "invalid_prompt", "click"),
    "inverted box": ({"type": "box", "frame": 0, "x1": 50, "y1": 5, "x2": 10, "y2": 40}, "invalid_prompt", "box"),
    "box outside the frame": ({"type": "box", "frame": 0, "x1": 0, "y1": 0, "x2": 10, "y2": HEIGHT + 5},
                              "invalid_prompt", "box"),
    "empty text": ({"type": "text", "frame": 0, "text": "   "}, "invalid_prompt", "text"),
    "text on a frame past the end": ({"type": "text", "frame": 999, "text": "cat"}, "invalid_prompt", "frame"),
    "get_frame past the end": ({"type": "get_frame", "frame": FRAMES}, "invalid_prompt", "frame"),
    "remove an unknown object": ({"type": "remove_object", "object_id": 9}, "unknown_object", None),
    "rename an unknown object": ({"type": "rename_object", "object_id": 9, "label": "x"}, "unknown_object", None),
    "undo an unknown object": ({"type": "undo", "object_id": 9}, "unknown_object", None),
    "undo with nothing to undo": ({"type": "undo"}, "nothing_to_undo", None),
    "propagate without objects": ({"type": "propagate"}, "no_objects", None),
    "export without results": ({"type": "export"}, "nothing_to_export", None),
}


@pytest.mark.parametrize("message, code, field", AFTER_OPEN.values(), ids=AFTER_OPEN.keys())
def test_a_bad_prompt_after_open_gets_an_error_event_and_the_session_goes_on(client, clip_id, message, code, field):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        if message.get("object_id") is None and message["type"] == "undo":
            ws.send_json({"type": "new_object"})  # object 2 exists (current) but has no prompt yet
            ws.receive_json()
        event = error_of(ws, message)
        assert event["code"] == code and event["field"] == field, event
        assert click(ws, 0, 5, 5)["type"] == "prompt_result"


def test_propagate_from_a_frame_past_the_end_is_an_invalid_prompt(client, clip_id):
    with session(client) as (ws, _):
        opened(ws, clip_id)
        click(ws, 0, 5, 5)
        event = error_of(ws, {"type": "propagate", "from_frame": FRAMES})
        assert event["code"] == "invalid_prompt" and event["field"] == "from_frame"


def test_changes_during_a_propagation_are_refused_until_it_is_cancelled(client, long_clip_id):
    with session(client) as (ws, _):
        opened(ws, long_clip_id)
        click(ws, 0, 30, 30)
        ws.send_json({"type": "propagate", "direction": "forward"})
        refused = [{"type": "click", "frame": 3, "x": 5, "y": 5}, {"type": "propagate"}, {"type": "export"},
                   {"type": "reset"}, {"type": "remove_object", "object_id": 1}, {"type": "open", "video_id": "x"}]
        for message in refused:
            ws.send_json(message)
        ws.send_json({"type": "cancel"})
        events = []
        while not events or events[-1]["type"] != "propagation_done":
            events.append(ws.receive_json())
        errors = [e["code"] for e in events if e["type"] == "error"]
        assert errors == ["propagation_running"] * len(refused)
        assert events[-1]["status"] == "cancelled"
        assert click(ws, 3, 5, 5)["type"] == "prompt_result", "after the cancel, changes are accepted again"


def test_too_many_objects_is_an_error_and_a_concept_keeps_only_what_fits(client, clip_id):
    with session(client) as (ws, _):  # this app allows 4 objects (SAM3_VIDEO_MAX_OBJECTS)
        opened(ws, clip_id)
        for object_id in (1, 2, 3):
            click(ws, 0, 10 * object_id, 10, object_id=object_id)
        ws.send_json({"type": "text", "frame": 0, "text": "square"})  # the dev detector finds 2: one fits
        found = ws.receive_json()
        assert found["type"] == "concept_result" and found["object_ids"] == [4]
        assert sorted(o["object_id"] for o in found["objects"]) == [1, 2, 3, 4]
        for message in ({"type": "click", "frame": 0, "x": 5, "y": 5, "object_id": 9}, {"type": "new_object"},
                        {"type": "text", "frame": 1, "text": "cat"}):
            assert error_of(ws, message)["code"] == "too_many_objects"
        assert click(ws, 0, 50, 50, object_id=2)["object_id"] == 2, "the existing objects can still be refined"


def test_an_engine_error_during_a_click_keeps_the_prompts_as_they_were(client, clip_id, monkeypatch):
    async def busy(*args, **kwargs):
        raise EngineBusy("The model is busy: retry in 1 s.")

    with session(client) as (ws, _):
        opened(ws, clip_id)
        click(ws, 0, 20, 20)
        monkeypatch.setattr(client.app.state.services.engine, "video_prompt", busy)
        assert error_of(ws, {"type": "click", "frame": 0, "x": 60, "y": 60})["code"] == "engine_busy"
        monkeypatch.undo()
        assert click(ws, 0, 90, 90)["points"] == [[20, 20], [90, 90]], "the refused click left no trace"


def test_a_propagation_that_fails_says_so_and_the_session_goes_on(client, clip_id, monkeypatch):
    async def busy(run):
        raise EngineBusy("The model is busy: retry in 1 s.")

    with session(client) as (ws, _):
        opened(ws, clip_id)
        click(ws, 0, 20, 20)
        monkeypatch.setattr(client.app.state.services.engine, "video_step", busy)
        _, frames, done = propagate(ws)
        assert frames == [] and done["status"] == "failed" and "busy" in done["error"]
        monkeypatch.undo()
        assert propagate(ws)[2]["status"] == "finished"


def test_opening_while_the_model_failed_to_load_is_an_error_event(tmp_path, clip24):
    app = create_app(dev_settings(model=str(tmp_path / "missing-checkpoint"), data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        assert app.state.services.engine.wait_ready(timeout=120).state == "failed"
        video_id = upload(client, clip24)["video_id"]  # decoding needs no model
        with session(client) as (ws, _):
            assert error_of(ws, {"type": "open", "video_id": video_id})["code"] == "model_not_ready"
            assert_still_open(ws)
        assert client.app.state.services.video_sources.get(video_id, None).users == 0


IDLE_TTL_S = 1.5
IDLE_CLOCK = ManualClock()  # what the `limited` app's sockets wait out their idle TTL on


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    client = app_client(tmp_path_factory, ws_video_max_sessions=1, ws_idle_ttl_s=IDLE_TTL_S, ws_video_max_frames=10)
    client.app.state.services.idle_sleep = IDLE_CLOCK.sleep
    yield client
    client.__exit__(None, None, None)


def test_a_socket_beyond_the_session_limit_gets_an_error_and_close_1013(limited):
    with session(limited) as (first, _):
        with limited.websocket_connect("/ws/video") as second:
            event = second.receive_json()
            assert event["type"] == "error" and event["code"] == "too_many_sessions"
            assert "SAM3_WS_VIDEO_MAX_SESSIONS" in event["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                second.receive_json()
            assert closed.value.code == 1013
        assert_still_open(first)
    with session(limited) as (third, _):  # the first session was freed when its socket closed
        assert_still_open(third)


def test_an_idle_session_is_closed(limited):
    sleeps = IDLE_CLOCK.started
    with session(limited) as (ws, _):
        IDLE_CLOCK.wait_for_sleep(after=sleeps)
        IDLE_CLOCK.advance(IDLE_TTL_S - 0.1)
        sleeps = IDLE_CLOCK.started
        assert_still_open(ws)  # not idle yet; the ping starts the TTL again
        IDLE_CLOCK.wait_for_sleep(after=sleeps)
        IDLE_CLOCK.advance(IDLE_TTL_S - 0.1)
        assert_still_open(ws)
        IDLE_CLOCK.wait_for_sleep(after=sleeps + 1)
        IDLE_CLOCK.advance(IDLE_TTL_S)
        assert ws.receive_json() == {"type": "session_closed", "reason": "idle"}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000


def test_a_video_longer_than_the_session_frame_limit_is_refused(limited, clip24):
    with session(limited) as (ws, _):
        ws.send_bytes(clip24)
        event = ws.receive_json()
        assert event["code"] == "video_too_large" and "SAM3_WS_VIDEO_MAX_FRAMES" in event["message"]
        job = limited.post("/video/jobs", files={"video": ("clip.mp4", clip24, "video/mp4")},
                           data={"objects": '[{"frame_index": 0, "box": [4, 4, 28, 28]}]'}).json()
        event = error_of(ws, {"type": "open", "video_id": job["job_id"]})
        assert event["code"] == "video_too_large" and "SAM3_WS_VIDEO_MAX_FRAMES" in event["message"]
        ws.send_json({"type": "open", "video_base64": base64.b64encode(clip24).decode(), "frame_stride": 3})
        assert ws.receive_json()["frame_count"] == 8, "part of the clip fits"


def test_exporting_a_job_video_whose_job_was_deleted_meanwhile_is_a_conflict(client, clip24):
    job = client.post("/video/jobs", files={"video": ("clip.mp4", clip24, "video/mp4")},
                      data={"objects": '[{"frame_index": 0, "box": [4, 4, 28, 28]}]'}).json()
    deadline = time.monotonic() + 60
    while client.get(f"/video/jobs/{job['job_id']}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    jobs_before = len(client.get("/video/jobs").json()["jobs"])
    with session(client) as (ws, _):
        opened(ws, job["job_id"])
        assert client.delete(f"/video/jobs/{job['job_id']}").status_code == 204
        assert click(ws, 3, 20, 20)["type"] == "prompt_result", "the open frames stay readable"
        event = error_of(ws, {"type": "export"})
        assert event["code"] == "conflict" and "open the video again" in event["message"]
    assert len(client.get("/video/jobs").json()["jobs"]) == jobs_before - 1, "no half-written job is left"


def test_an_unexpected_server_error_is_an_internal_error_event_and_the_session_goes_on(client, clip_id, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    with session(client) as (ws, _):
        opened(ws, clip_id)
        monkeypatch.setattr(client.app.state.services.engine, "video_prompt", broken)
        event = error_of(ws, {"type": "click", "frame": 0, "x": 5, "y": 5})
        assert event["code"] == "internal_error" and "a bug" not in event["message"], "no internals leak"
        monkeypatch.undo()
        assert click(ws, 0, 5, 5)["points"] == [[5, 5]]


def test_a_session_tracking_longer_than_the_idle_ttl_is_not_closed_as_idle(limited, monkeypatch):
    engine = limited.app.state.services.engine
    real_step = engine.video_step
    idle_while_tracking = []

    async def slow_step(stepper):
        """Each frame step outlasts the idle TTL (the client is silent): the socket's idle wait ends meanwhile."""
        slept, deadline = IDLE_CLOCK.slept, time.monotonic() + 30
        while IDLE_CLOCK.slept == slept:  # the clock moves on until the socket's idle wait has ended
            assert time.monotonic() < deadline, "the socket never waited on its idle TTL"
            IDLE_CLOCK.advance(IDLE_TTL_S)
            await asyncio.sleep(0.001)
        idle_while_tracking.append(True)
        return await real_step(stepper)

    video_id = upload(limited, video_bytes(frames=8))["video_id"]
    monkeypatch.setattr(engine, "video_step", slow_step)
    with session(limited) as (ws, _):
        opened(ws, video_id)
        click(ws, 0, 20, 20)
        started, frames, done = propagate(ws, direction="forward")
        assert done["status"] == "finished" and len(frames) == 8 and len(idle_while_tracking) >= 8
        sleeps = IDLE_CLOCK.started
        assert_still_open(ws)
        IDLE_CLOCK.wait_for_sleep(after=sleeps)
        IDLE_CLOCK.advance(IDLE_TTL_S)
        assert ws.receive_json() == {"type": "session_closed", "reason": "idle"}, "idle once the tracking ended"
