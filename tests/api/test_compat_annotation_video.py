"""Seed 002's /predict_video and /predict_video_text over the real app, dev-tiny engine and video job runner.

A native video job with the same prompts is the reference: each JPEG frame must be exactly its masks
blended into the decoded frame (annotate_frame), encoded at quality 90.
"""

from __future__ import annotations

import base64
import io
import json
import time

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from sam3_api.compat.annotation_video import track_video
from sam3_api.media.masks import rle_to_mask
from sam3_api.media.video.annotate import annotate_frame
from tests.api.conftest import client_over
from tests.videos import square_box, video_bytes

pytestmark = pytest.mark.timeout(180)
WIDTH, HEIGHT, FRAMES = 160, 120, 24
CLIP = video_bytes(frames=FRAMES)
CLIP_B64 = base64.b64encode(CLIP).decode()


@pytest.fixture(scope="module")
def client(engine, tmp_path_factory):
    client = client_over(engine, data_dir=tmp_path_factory.mktemp("annotation-video"), compat_video_max_frames=60)
    yield client
    client.__exit__(None, None, None)


def native_masks(client, **params) -> list[list[tuple[int, np.ndarray]]]:
    """Per frame, the (object_id, mask) pairs a native video job with the same prompts finds."""
    job = client.post("/video/jobs", json={"video_base64": CLIP_B64, "direction": "forward", **params}).json()
    while (status := client.get(f"/video/jobs/{job['job_id']}").json())["status"] in ("queued", "running"):
        time.sleep(0.05)
    assert status["status"] == "succeeded", status
    lines = [json.loads(line) for line in client.get(f"/video/jobs/{job['job_id']}/frames").text.splitlines()]
    client.delete(f"/video/jobs/{job['job_id']}")
    return [[(o["object_id"], rle_to_mask(o["mask"])) for o in line["objects"]] for line in lines]


def jpeg_pixels(data_url: str) -> np.ndarray:
    prefix = "data:image/jpeg;base64,"
    assert data_url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):])))
    assert image.format == "JPEG" and image.size == (WIDTH, HEIGHT)
    return np.asarray(image.convert("RGB")).astype(np.int16)


def decoded_frames(clip: bytes) -> list[np.ndarray]:
    """The clip's frames as the server's decoder stores them (PyAV, rgb24)."""
    with av.open(io.BytesIO(clip)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def jpeg_q90(rgb: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.int16)


def assert_frames_show_the_masks(frames: dict, masks_per_frame: list[list[tuple[int, np.ndarray]]]) -> None:
    """Each frame is the decoded frame with the native job's masks blended in (annotate_frame), as a JPEG of
    quality 90: equal to encoding that reference ourselves, and the masked pixels really are tinted."""
    assert list(frames) == [str(i) for i in range(FRAMES)]
    tinted = 0
    for index, (frame, masks) in enumerate(zip(decoded_frames(CLIP), masks_per_frame)):
        got = jpeg_pixels(frames[str(index)])
        expected = jpeg_q90(annotate_frame(frame, masks, labels=False))
        assert np.abs(got - expected).mean() < 0.5, f"frame {index} is not the native masks blended in"
        covered = np.any([mask for _, mask in masks], axis=0) if masks else np.zeros((HEIGHT, WIDTH), bool)
        if covered.sum() > 100:
            tinted += 1
            assert np.abs(got - frame.astype(np.int16))[covered].mean() > 20, "the masked pixels are tinted"
    assert tinted > FRAMES // 2, "dev-tiny's masks must cover pixels in most frames for this test to mean much"


def test_predict_video_answers_every_frame_as_a_jpeg_with_the_tracked_boxes_blended_in(client):
    box = list(square_box(0))
    response = client.post("/predict_video", json={"video_base64": CLIP_B64, "boxes": [{"box": box}]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"frames", "debug_images"} and answer["debug_images"] is None
    assert_frames_show_the_masks(answer["frames"], native_masks(client, objects=[{"frame_index": 0, "box": box}]))
    assert client.get("/video/jobs").json() == {"jobs": []}, "the job is deleted once answered"


def test_predict_video_text_answers_every_frame_with_each_instance_blended_in(client):
    response = client.post("/predict_video_text", json={"video_base64": "data:video/mp4;base64," + CLIP_B64,
                                                        "text_prompt": "square"})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"frames"}
    assert_frames_show_the_masks(response.json()["frames"], native_masks(client, texts=["square"]))


def test_a_clip_over_the_frame_limit_is_a_413_naming_the_setting(engine, tmp_path):
    small = client_over(engine, data_dir=tmp_path, compat_video_max_frames=10)
    try:
        for path, prompt in (("/predict_video", {"boxes": [{"box": [4, 4, 28, 28]}]}),
                             ("/predict_video_text", {"text_prompt": "square"})):
            response = small.post(path, json={"video_base64": CLIP_B64, **prompt})
            assert response.status_code == 413 and set(response.json()) == {"detail"}
            assert "SAM3_COMPAT_VIDEO_MAX_FRAMES=10" in response.json()["detail"]
        assert small.get("/video/jobs").json() == {"jobs": []}
    finally:
        small.__exit__(None, None, None)


@pytest.mark.parametrize("path, body, status, says", [
    ("/predict_video", {"video_base64": CLIP_B64, "boxes": []}, 400, "Initial box prompts are required"),
    ("/predict_video", {"video_base64": CLIP_B64}, 422, "boxes"),
    ("/predict_video_text", {"video_base64": CLIP_B64, "text_prompt": "  "}, 400, "Text prompt is required"),
    ("/predict_video", {"video_base64": "AAAAGGZ0eX", "boxes": [{"box": [1, 2, 3, 4]}]}, 400, "video"),
    ("/predict_video", {"video_base64": "%%%", "boxes": [{"box": [1, 2, 3, 4]}]}, 400, "base64"),
    ("/predict_video", {"video_base64": CLIP_B64, "boxes": [{"box": [1, 2, 500, 4]}]}, 422, "outside"),
    ("/predict_video", {"video_base64": CLIP_B64, "boxes": [{"box": [1, 2, 3]}]}, 422, "box"),
])
def test_bad_video_requests_get_a_4xx_detail_that_says_what_is_wrong(client, path, body, status, says):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail"} and says in response.json()["detail"]


def test_a_cancelled_request_cancels_its_video_job_and_deletes_it(client):
    """What api/disconnect.py does when the client hangs up: it cancels the handler, here track_video."""
    runner, jobs = client.app.state.services.video_jobs, []
    enqueue = runner.enqueue
    runner.enqueue = lambda job: (jobs.append(job), enqueue(job))
    settings = client.app.state.services.settings
    params = {"objects": [{"frame_index": 0, "box": [4, 4, 28, 28]}], "direction": "forward"}
    try:
        handler = client.portal.start_task_soon(track_video, runner, settings, None,
                                                base64.b64encode(video_bytes(frames=48)).decode(), params)
        deadline = time.monotonic() + 30
        while not jobs or jobs[0].progress["frames_done"] == 0:  # cancel while it tracks
            assert time.monotonic() < deadline and not handler.done()
            time.sleep(0.01)
        handler.cancel()
    finally:
        runner.enqueue = enqueue
    [job] = jobs
    while runner.store.get(job.job_id) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job.status == "cancelled" and job.progress["frames_done"] < 48


def test_without_the_api_key_the_video_routes_answer_401_in_the_services_envelope(engine, tmp_path):
    keyed = client_over(engine, data_dir=tmp_path, api_keys=["key-one"])
    try:
        response = keyed.post("/predict_video", json={"video_base64": CLIP_B64, "boxes": [{"box": [1, 1, 9, 9]}]})
        assert response.status_code == 401 and set(response.json()) == {"detail"}
        ok = keyed.post("/predict_video_text", json={"video_base64": CLIP_B64, "text_prompt": "square"},
                        headers={"X-API-Key": "key-one"})
        assert ok.status_code == 200 and len(ok.json()["frames"]) == FRAMES
    finally:
        keyed.__exit__(None, None, None)
