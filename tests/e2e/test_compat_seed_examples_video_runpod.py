"""Every example of seed 003 and of seed 002's video routes, replayed unchanged against the real server.

The examples are in compat_seed_examples.json, copied verbatim (its "source" says which are not API calls).
Substituted, and nothing else: Runpod's API host (https://api.runpod.ai) and the 002 service's address become
the test server; the image hosts the 003 examples name (https://example.com, https://images.unsplash.com)
become the loopback test HTTP server, which serves real JPEGs at those paths (the test server may fetch from
it: SAM3_URL_ALLOW_HOSTS=127.0.0.1); 002's truncated "AAAAGGZ0eX..." video becomes a whole generated MP4
(the documented repair in `fixups`). 003's JavaScript runs unchanged in Chromium, its Python with requests.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from PIL import Image

from tests.e2e.conftest import LiveServer
from tests.videos import make_video

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
EXAMPLES = json.loads(Path(__file__).with_name("compat_seed_examples.json").read_text())["examples"]
API_HOSTS = re.compile(r"https?://(api\.runpod\.ai|<your-server-ip>:8069)")
IMAGE_HOSTS = re.compile(r"https://(example\.com|images\.unsplash\.com)")
VIDEO_SIZE, VIDEO_FRAMES = (320, 320), 24  # large enough for the documented box [100, 150, 250, 300]


def example(seed: str, **match) -> dict:
    return next(e for e in EXAMPLES if e["seed"] == seed and all(e.get(k) == v for k, v in match.items()))


def repaired(text: str, fixups: list[dict], **values) -> str:
    for fixup in fixups:
        assert fixup["from"] in text
        text = text.replace(fixup["from"], fixup["to"].format(**values))
    return text


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(tmp_path_factory, {"SAM3_URL_ALLOW_HOSTS": "127.0.0.1"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def base_url(live) -> str:
    return live.url


def adapt(code: str, base_url: str, images: str) -> str:
    return IMAGE_HOSTS.sub(images, API_HOSTS.sub(base_url, code))


# ------------------------------------------------------------------------------------------ seed 002 (video)
@pytest.fixture(scope="module")
def video_b64(tmp_path_factory) -> str:
    path = make_video(tmp_path_factory.mktemp("seed-video") / "clip.mp4", frames=VIDEO_FRAMES, size=VIDEO_SIZE)
    return base64.b64encode(path.read_bytes()).decode()


def assert_jpeg_frames(frames: dict) -> None:
    assert list(frames) == [str(i) for i in range(VIDEO_FRAMES)]
    for data_url in frames.values():
        assert data_url.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
        assert image.format == "JPEG" and image.size == VIDEO_SIZE


@pytest.mark.parametrize("path", ["/predict_video", "/predict_video_text"])
def test_seed_002_video_examples_answer_every_frame_as_a_jpeg(base_url, video_b64, path):
    documented = example("002", path=path)
    body = repaired(documented["body_text"], documented["fixups"], video_base64=video_b64)
    response = requests.post(base_url + documented["path"], data=body.encode(),
                             headers={"Content-Type": "application/json"}, timeout=120)
    assert response.status_code == 200, response.text[:500]
    answer = response.json()
    shape = json.loads(repaired(documented["response_text"], documented["response_fixups"]))
    assert set(answer) == set(shape)  # "debug_images": null on /predict_video only
    if "debug_images" in shape:
        assert answer["debug_images"] is shape["debug_images"] is None
    assert_jpeg_frames(answer["frames"])  # the doc says PNG; its code (what clients get) sends JPEG data URLs


def test_seed_002_a_client_that_hangs_up_gets_its_video_job_cancelled(live, video_b64):
    """A raw HTTP client sends /predict_video and closes the connection: the job is cancelled, then deleted."""
    long_clip = base64.b64encode(make_video(Path(live.log_path).with_name("long.mp4"), frames=240,
                                            size=(64, 48)).read_bytes())
    body = b'{"video_base64": "' + long_clip + b'", "boxes": [{"box": [4, 4, 28, 28]}]}'
    address = urlsplit(live.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(b"POST /predict_video HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(body) + body)
        deadline = time.monotonic() + 30
        while not requests.get(live.url + "/video/jobs", timeout=10).json()["jobs"]:
            assert time.monotonic() < deadline, "the job never appeared"
            time.sleep(0.05)
    deadline = time.monotonic() + 30
    while requests.get(live.url + "/video/jobs", timeout=10).json()["jobs"]:
        assert time.monotonic() < deadline, "the job was not removed after the client left"
        time.sleep(0.1)
    # api/disconnect.py logs once the cancelled handler has finished, i.e. just after the job was deleted.
    expected = ["client went away: POST /predict_video cancelled",  # api/disconnect.py cancelled the handler
                "seed 002 video request cancelled: video job"]  # and the handler its job
    deadline = time.monotonic() + 10
    while not all(line in (log := live.log_path.read_text()) for line in expected):
        assert time.monotonic() < deadline, f"missing from the server log: {expected}\n{log[-2000:]}"
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------ seed 003 (Runpod)
def assert_documented_success(answer: dict, concepts: list[str]) -> None:
    shape = json.loads(repaired(example("003", what="success response")["response_text"],
                                example("003", what="success response")["response_fixups"]))
    assert set(answer) == set(shape) and answer["status"] == shape["status"] == "COMPLETED"
    assert all(isinstance(answer[k], int) for k in ("delayTime", "executionTime"))
    output = answer["output"]["output"]
    assert set(output) == set(shape["output"]["output"]) and len(output["image_size"]) == 2
    assert list(output["results"]) == concepts
    for result in output["results"].values():
        assert set(result) == set(shape["output"]["output"]["results"]["wall"])
        assert result["instance_count"] == len(result["masks_base64"]) == len(result["scores"])


def test_seed_003_request_json_runs_under_v2_and_bare(base_url, server):
    documented = example("003", lang="json", method="POST")
    body = adapt(documented["body_text"], base_url, server)
    for url in (adapt(documented["url"], base_url, server), base_url + "/runsync"):
        response = requests.post(url, data=body.encode(), headers={"Content-Type": "application/json"}, timeout=120)
        assert response.status_code == 200, response.text[:500]
        assert_documented_success(response.json(), ["wall", "door", "window"])
        assert response.json()["output"]["output"]["image_size"] == [451, 300]  # /image.jpg: chelsea, W x H


def test_seed_003_curl_example_answers_the_documented_fields(base_url, server, tmp_path):
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    code = adapt(example("003", lang="bash")["code"], base_url, server)
    done = subprocess.run(["bash", "-c", code.replace("curl ", "curl -sS ", 1)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert_documented_success(answer, ["wall", "door"])
    assert answer["output"]["output"]["image_size"] == [600, 400]  # the unsplash path: coffee.png


def test_seed_003_python_example_saves_each_concepts_masks_as_grayscale_pngs(base_url, server, tmp_path):
    code = adapt(example("003", lang="python")["code"], base_url, server)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+): (\d+) masks$", done.stdout, re.M))
    assert list(counts) == ["wall", "door"] and all(int(n) > 0 for n in counts.values()), done.stdout
    for concept, count in counts.items():
        for index in range(int(count)):
            mask = Image.open(tmp_path / f"{concept}_{index}.png")
            assert mask.mode == "L" and mask.size == (512, 512)  # /room.jpg: astronaut
            assert set(np.unique(np.asarray(mask))) <= {0, 255}


def test_seed_003_javascript_example_runs_in_a_browser_and_logs_the_wall_masks(base_url, server, page):
    code = adapt(example("003", lang="javascript")["code"], base_url, server)
    logged, errors = [], []
    page.on("console", lambda message: message.type == "log" and logged.append(message.text))  # not favicon 404s
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(base_url + "/health")  # any page of the server: the example's fetch is then same-origin
    page.add_script_tag(content=code, type="module")  # a module: the example awaits at top level
    deadline = time.monotonic() + 60
    while len(logged) < 2 and not errors and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert not errors and len(logged) == 2, (logged, errors)
    count, first_mask = logged
    assert int(count) > 0
    assert Image.open(io.BytesIO(base64.b64decode(first_mask))).mode == "L"


def test_seed_003_error_example_is_answered_as_the_platform_does_failed_with_error(base_url, server):
    documented = json.loads(example("003", what="error response")["response_text"])
    body = {"input": {"image_url": server + "/missing.jpg", "concepts": ["wall"]}}
    answer = requests.post(base_url + "/v2/ool22vjm24rkma/runsync", json=body, timeout=120).json()
    assert answer["status"] == "FAILED" and "output" not in answer  # not the doc's COMPLETED + output.error
    prefix = documented["output"]["error"].removesuffix("...")
    assert answer["error"].startswith(prefix), answer


def test_seed_003_image_urls_of_private_addresses_are_refused_by_default(live_server, server):
    """live_server has no SAM3_URL_ALLOW_HOSTS: the loopback image server is a private address to it."""
    code = example("003", lang="json", method="POST")["body_text"]
    body = adapt(code, live_server, server)
    answer = requests.post(live_server + "/v2/ool22vjm24rkma/runsync", data=body.encode(),
                           headers={"Content-Type": "application/json"}, timeout=120).json()
    assert answer["status"] == "FAILED" and answer["error"].startswith("Failed to download image"), answer
    assert "loopback address" in answer["error"] and "SAM3_URL_ALLOW_HOSTS" in answer["error"]
