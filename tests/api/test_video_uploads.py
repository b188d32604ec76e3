"""POST /video/uploads and the frames of held videos (GET /video/sources/...): decoded once, served as JPEGs,
kept for a TTL, bounded in number, visible only to the API key that uploaded them."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.api.ws_video_helpers import (  # noqa: F401 - fixtures
    FRAMES, HEIGHT, WIDTH, app_client, click, client, clip24, clip_server, opened, session, upload)
from tests.conftest import ManualClock
from tests.videos import frame_pixels, write_png, write_truncated_mp4

pytestmark = pytest.mark.timeout(180)


def test_a_multipart_upload_is_decoded_once_and_described(client, clip24):
    response = client.post("/video/uploads", files={"video": ("clip.mp4", clip24, "video/mp4")})
    assert response.status_code == 201 and response.headers["location"].startswith("/video/sources/")
    body = response.json()
    assert body["kind"] == "upload" and (body["width"], body["height"], body["frame_count"]) == (WIDTH, HEIGHT, FRAMES)
    assert body["fps"] == 24 and 3500 < body["expires_in_s"] <= 3600
    assert body["links"]["frame"] == f"/video/sources/{body['video_id']}/frames/{{frame}}.jpg"
    assert client.get(body["links"]["self"]).json()["video_id"] == body["video_id"]


def test_json_uploads_take_base64_or_a_url_and_a_frame_selection(client, clip24, clip_server):
    by_base64 = client.post("/video/uploads", json={"video_base64": base64.b64encode(clip24).decode(),
                                                    "start_frame": 4, "end_frame": 13})
    assert by_base64.status_code == 201 and by_base64.json()["frame_count"] == 10
    assert by_base64.json()["start_frame"] == 4
    by_url = client.post("/video/uploads", json={"video_url": f"{clip_server}/clip24.mp4", "frame_stride": 3})
    assert by_url.status_code == 201 and by_url.json()["frame_count"] == 8 and by_url.json()["frame_stride"] == 3


def test_a_frame_is_served_as_a_jpeg_of_the_decoded_picture(client, clip24):
    video_id = upload(client, clip24)["video_id"]
    response = client.get(f"/video/sources/{video_id}/frames/10.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert "max-age" in response.headers["cache-control"]
    picture = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)
    assert picture.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(picture - frame_pixels(10)).mean() < 8, "the frame as decoded (H.264 + JPEG losses only)"


BAD_UPLOADS = {
    "a PNG": ("png", 400, "invalid_video"),
    "a truncated MP4": ("truncated", 400, "invalid_video"),
    "an empty file": ("empty", 400, "invalid_video"),
}


@pytest.mark.parametrize("kind, status, code", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_a_file_that_is_not_a_usable_video_gets_a_4xx(client, tmp_path, kind, status, code):
    data = {"png": lambda: write_png(tmp_path / "a.png").read_bytes(),
            "truncated": lambda: write_truncated_mp4(tmp_path / "t.mp4").read_bytes(), "empty": lambda: b""}[kind]()
    response = client.post("/video/uploads", files={"video": ("clip.mp4", data, "video/mp4")})
    assert response.status_code == status and response.json()["code"] == code, response.text
    assert {p.name for p in client.app.state.services.video_sources.root.iterdir()} <= set(client.app.state.services.video_sources._sources)


BAD_REQUESTS = {
    "no video field": ({"files": {"other": ("x", b"1")}}, 400, "invalid_video"),
    "neither base64 nor url": ({"json": {}}, 400, "invalid_video"),
    "both base64 and url": ({"json": {"video_base64": "aGk=", "video_url": "https://example.com/v.mp4"}}, 400,
                            "invalid_video"),
    "a private url": ({"json": {"video_url": "http://10.1.2.3/v.mp4"}}, 400, "url_not_allowed"),
    "an unknown field": ({"json": {"video_url": "https://example.com/v.mp4", "fps": 3}}, 422, "validation_error"),
    "a zero stride": ({"json": {"video_url": "https://example.com/v.mp4", "frame_stride": 0}}, 422,
                     "validation_error"),
}


@pytest.mark.parametrize("request_kwargs, status, code", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_malformed_upload_request_gets_a_clear_4xx(client, request_kwargs, status, code):
    response = client.post("/video/uploads", **request_kwargs)
    assert response.status_code == status and response.json()["code"] == code, response.text


def test_unknown_videos_and_frames_past_the_end_are_404(client, clip24):
    video_id = upload(client, clip24)["video_id"]
    assert client.get(f"/video/sources/{video_id}/frames/{FRAMES}.jpg").json()["code"] == "not_found"
    assert client.get(f"/video/sources/{'0' * 32}").status_code == 404
    assert client.get(f"/video/sources/{'0' * 32}/frames/0.jpg").status_code == 404
    assert client.get("/video/sources/../../etc/passwd/frames/0.jpg").status_code == 404


def test_an_upload_is_deleted_on_request_but_not_while_a_session_has_it_open(client, clip24):
    video_id = upload(client, clip24)["video_id"]
    with session(client) as (ws, _):
        opened(ws, video_id)
        response = client.delete(f"/video/uploads/{video_id}")
        assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert client.delete(f"/video/uploads/{video_id}").status_code == 204
    assert client.get(f"/video/sources/{video_id}").status_code == 404
    assert not (client.app.state.services.video_sources.root / video_id).exists()
    assert client.delete(f"/video/uploads/{video_id}").status_code == 404


def test_the_oldest_idle_upload_makes_room_and_one_open_in_a_session_is_kept(tmp_path_factory, clip24):
    client = app_client(tmp_path_factory, video_max_uploads=2)
    try:
        first, second = upload(client, clip24)["video_id"], upload(client, clip24)["video_id"]
        with session(client) as (ws, _):
            opened(ws, first)  # in use: the least recently used idle upload (second) goes
            third = upload(client, clip24)["video_id"]
            assert client.get(f"/video/sources/{second}").status_code == 404
            fourth = upload(client, clip24)["video_id"]  # the third was idle: it made room
            assert client.get(f"/video/sources/{third}").status_code == 404
            assert client.get(f"/video/sources/{first}").status_code == 200
            assert client.get(f"/video/sources/{fourth}").status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_an_idle_upload_expires_after_its_ttl_and_one_open_in_a_session_does_not(tmp_path_factory, clip24):
    client = app_client(tmp_path_factory, video_max_uploads=4, video_upload_ttl_s=60)
    clock = client.app.state.services.video_sources.clock = ManualClock()
    try:
        idle, in_use = upload(client, clip24)["video_id"], upload(client, clip24)["video_id"]
        with session(client) as (ws, _):
            opened(ws, in_use)
            clock.advance(59)
            assert client.get(f"/video/sources/{idle}").status_code == 200, "within the TTL"
            clock.advance(61)  # 61 s since the idle one was last read
            assert client.get(f"/video/sources/{idle}").status_code == 404, "expired after the TTL"
            assert client.get(f"/video/sources/{in_use}").status_code == 200, "open in a session: never expires"
        clock.advance(61)  # the session closed: from now on its TTL runs
        assert client.get(f"/video/sources/{in_use}").status_code == 404
    finally:
        client.__exit__(None, None, None)


def test_all_uploads_open_in_sessions_make_a_new_upload_wait_with_503(tmp_path_factory, clip24):
    client = app_client(tmp_path_factory, video_max_uploads=1)
    try:
        video_id = upload(client, clip24)["video_id"]
        with session(client) as (ws, _):
            opened(ws, video_id)
            response = client.post("/video/uploads", files={"video": ("clip.mp4", clip24, "video/mp4")})
            assert response.status_code == 503 and response.headers["retry-after"] == "30"
            assert "SAM3_VIDEO_MAX_UPLOADS" in response.json()["detail"]
    finally:
        client.__exit__(None, None, None)


def test_an_upload_longer_than_the_session_frame_limit_is_413_naming_the_setting(tmp_path_factory, clip24):
    client = app_client(tmp_path_factory, ws_video_max_frames=10)
    try:
        response = client.post("/video/uploads", files={"video": ("clip.mp4", clip24, "video/mp4")})
        assert response.status_code == 413 and "SAM3_WS_VIDEO_MAX_FRAMES" in response.json()["detail"]
        fits = client.post("/video/uploads", files={"video": ("clip.mp4", clip24, "video/mp4")},
                           data={"end_frame": "9"})
        assert fits.status_code == 201 and fits.json()["frame_count"] == 10
    finally:
        client.__exit__(None, None, None)


def test_uploads_and_jobs_are_visible_only_to_the_key_that_made_them(tmp_path_factory, clip24):
    client = app_client(tmp_path_factory, api_keys=["alice", "bob"])
    try:
        alice, bob = {"X-API-Key": "alice"}, {"X-API-Key": "bob"}
        response = client.post("/video/uploads", files={"video": ("c.mp4", clip24, "video/mp4")}, headers=alice)
        video_id = response.json()["video_id"]
        assert client.get(f"/video/sources/{video_id}/frames/0.jpg", headers=alice).status_code == 200
        assert client.get(f"/video/sources/{video_id}/frames/0.jpg", headers=bob).status_code == 404
        assert client.get(f"/video/sources/{video_id}").status_code == 401
        with session(client, "/ws/video?api_key=bob") as (ws, _):
            ws.send_json({"type": "open", "video_id": video_id})
            assert ws.receive_json()["code"] == "not_found"
        with session(client, "/ws/video?api_key=alice") as (ws, _):
            opened(ws, video_id)
            click(ws, 0, 10, 10)
            ws.send_json({"type": "export"})
            job_id = ws.receive_json()["job_id"]
        assert client.get(f"/video/jobs/{job_id}", headers=alice).json()["status"] == "succeeded"
        assert client.get(f"/video/jobs/{job_id}", headers=bob).status_code == 404
    finally:
        client.__exit__(None, None, None)


def test_behind_a_proxy_root_path_a_video_upload_gets_the_video_body_cap(engine, tmp_path, clip24):
    from fastapi.testclient import TestClient

    from sam3_api.main import create_app
    from tests.conftest import dev_settings

    settings = dev_settings(data_dir=tmp_path, max_upload_bytes=64 * 1024, video_max_bytes=8 * 1024**2)
    padded = clip24 + bytes(2 * 1024**2)  # over the image routes' body cap, well under the video one
    # As uvicorn --root-path does (ASGI): scope["path"] carries the prefix, scope["root_path"] names it.
    with TestClient(create_app(settings, engine=engine), root_path="/sam3-api") as client:
        response = client.post("/sam3-api/video/uploads", files={"video": ("clip.mp4", padded, "video/mp4")})
    assert response.status_code == 201, response.text
    assert response.json()["frame_count"] == FRAMES
