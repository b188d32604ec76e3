"""Every bad video input gets a clear 4xx in the native envelope, and the server keeps serving."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from sam3_api.main import create_app
from tests.conftest import dev_settings
from tests import videos

pytestmark = pytest.mark.timeout(180)
BOX = {"frame_index": 0, "box": [10, 10, 60, 60]}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(dev_settings(data_dir=tmp_path_factory.mktemp("jobs"), video_max_objects=3,
                                  video_max_frames=500))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.services.engine.wait_ready(120).ready
        yield client


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-videos")
    return {
        "truncated MP4": videos.write_truncated_mp4(videos.make_video(folder / "cut.mp4")).read_bytes(),
        "PNG": videos.write_png(folder / "picture.png").read_bytes(),
        "audio only": videos.write_audio_only(folder / "sound.mp4").read_bytes(),
        "0 frames": videos.write_zero_frame_avi(folder / "empty.avi").read_bytes(),
        "10^6 frames claimed": videos.write_lying_avi(folder / "liar.avi", claimed_frames=10**6).read_bytes(),
        "8K frames": videos.write_8k_avi(folder / "8k.avi").read_bytes(),
        "text": b"this is not a video at all\n" * 10,
        "empty": b"",
    }


def submit(client, video: bytes, **fields):
    form = {key: json.dumps(value) if isinstance(value, (list, dict)) else str(value) for key, value in fields.items()}
    return client.post("/video/jobs", files={"video": ("clip", video, "application/octet-stream")}, data=form)


def assert_envelope(response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status and body["code"] == code
    for word in words:
        assert word.lower() in body["detail"].lower(), body["detail"]


@pytest.mark.parametrize("name,status,code,words", [
    ("truncated MP4", 400, "invalid_video", ["truncated"]),
    ("PNG", 400, "invalid_video", ["png"]),
    ("audio only", 400, "invalid_video", ["no video"]),
    ("0 frames", 400, "invalid_video", ["no decodable frames"]),
    ("10^6 frames claimed", 413, "video_too_large", ["1000000", "SAM3_VIDEO_MAX_FRAMES"]),
    ("8K frames", 413, "video_too_large", ["7680", "SAM3_VIDEO_MAX_PIXELS"]),
    ("text", 400, "invalid_video", []),
    ("empty", 400, "invalid_video", ["empty"]),
])
def test_a_file_that_is_not_a_usable_video_is_refused(client, files, name, status, code, words):
    assert_envelope(submit(client, files[name], objects=[BOX]), status, code, *words)


@pytest.fixture(scope="module")
def clip() -> bytes:
    return videos.video_bytes(frames=12)


@pytest.mark.parametrize("fields,field_words", [
    ({"objects": [{"frame_index": 0, "box": [10, 10, 500, 60]}]}, ["outside the 160x120"]),
    ({"objects": [{"frame_index": 12, "box": [10, 10, 60, 60]}]}, ["frame_index 12", "0-11"]),
    ({"objects": [{"frame_index": 0, "points": [[5, 900]]}]}, ["outside"]),
    ({"objects": [BOX] * 4}, ["limit is 3", "SAM3_VIDEO_MAX_OBJECTS"]),
    ({"objects": [{**BOX, "object_id": 2}, {**BOX, "object_id": 2}]}, ["unique"]),
    ({"objects": []}, ["nothing to track"]),
    ({"objects": [{"frame_index": 0}]}, ["box", "points"]),
    ({"objects": [BOX], "frame_stride": 2, "end_frame": 8, "start_frame": 1,
      **{"objects": [{"frame_index": 2, "box": [10, 10, 60, 60]}]}}, ["not a processed frame"]),
    ({"texts": ["   "]}, ["texts[0]"]),
])
def test_prompts_that_do_not_fit_the_clip_get_422_naming_the_problem(client, clip, fields, field_words):
    assert_envelope(submit(client, clip, **fields), 422, "invalid_prompt", *field_words)


@pytest.mark.parametrize("fields,words", [
    ({"objects": "[not json"}, ["objects", "json"]),
    ({"objects": json.dumps([{"frame": 0, "box": [1, 2, 3, 4]}])}, ["frame"]),
    ({"objects": [BOX], "direction": "sideways"}, ["direction"]),
    ({"objects": [BOX], "frame_stride": 0}, ["frame_stride"]),
    ({"objects": [BOX], "mask_threshold": 2}, ["mask_threshold"]),
])
def test_malformed_fields_get_a_clear_4xx(client, clip, fields, words):
    response = submit(client, clip, **fields)
    assert response.status_code == 422, response.text
    assert all(w.lower() in response.json()["detail"].lower() for w in words), response.text


def test_json_bodies_need_exactly_one_video_source_and_valid_base64(client):
    assert_envelope(client.post("/video/jobs", json={"objects": [BOX]}), 400, "invalid_video", "video_base64")
    assert_envelope(client.post("/video/jobs", json={"objects": [BOX], "video_base64": "%%%not base64"}), 400,
                    "invalid_video", "base64")
    assert_envelope(client.post("/video/jobs", json={"objects": [BOX], "video_url": "file:///etc/passwd"}), 400,
                    "url_not_allowed", "scheme")
    assert_envelope(client.post("/video/jobs", json={"objects": [BOX], "video_url": "http://127.0.0.1:1/x.mp4"}),
                    400, "url_not_allowed", "loopback")


def test_a_multipart_request_without_a_video_file_is_refused(client):
    response = client.post("/video/jobs", data={"objects": json.dumps([BOX])},
                           files={"other": ("x.txt", b"x", "text/plain")})
    assert_envelope(response, 400, "invalid_video", "`video`")


def test_unknown_job_ids_get_404_everywhere(client):
    for method, path in (("get", ""), ("get", "/frames"), ("get", "/events"), ("post", "/cancel"),
                         ("delete", ""), ("get", "/video.mp4")):
        response = getattr(client, method)(f"/video/jobs/nope{path}")
        assert_envelope(response, 404, "not_found", "no video job")


def test_the_server_still_serves_after_every_bad_input(client, clip):
    assert client.get("/health").json()["model_loaded"]
    response = client.post("/video/jobs", json={"video_base64": base64.b64encode(clip).decode(),
                                                "objects": [BOX]})
    assert response.status_code == 202
