"""Every curl and Python example of seed 000's README, run unchanged against the real server.

The examples are copied verbatim into seed000_examples.json. Only two things are substituted: the server's
address (they say localhost:8000; the test server listens on a free port) and the public image URLs, which
this offline machine cannot reach (they become a photo served by a local test server, allowed through
SAM3_URL_ALLOW_HOSTS=127.0.0.1 for this server only).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import SAMPLES
from tests.e2e.conftest import start_server

pytestmark = pytest.mark.e2e
EXAMPLES = json.loads((Path(__file__).with_name("seed000_examples.json")).read_text())["examples"]
SEED_FIELDS = {"success", "num_masks", "masks", "boxes", "scores", "prompt"}
HEALTH_FIELDS = {"status", "model", "model_loaded", "device", "version"}
PUBLIC_URL = re.compile(r"https://(images\.unsplash\.com|example\.com)/[^\"']+")
# Printed after each Python example: what it received, for the assertions below.
EPILOGUE = """
import json as _json
print("RESPONSE:" + _json.dumps({"status": response.status_code, "type": response.headers.get("content-type"),
      "body": response.json() if "json" in response.headers.get("content-type", "") else None}))
"""


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory):
    yield from start_server(tmp_path_factory, {"SAM3_URL_ALLOW_HOSTS": "127.0.0.1"})


@pytest.fixture
def workdir(tmp_path):
    """The examples open photo.jpg from the current directory: a real 512x512 photo."""
    Image.open(SAMPLES / "astronaut.png").convert("RGB").save(tmp_path / "photo.jpg", quality=90)
    return tmp_path


def _adapt(code: str, base_url: str, image_server: str) -> str:
    code = code.replace("http://localhost:8000", base_url)
    return PUBLIC_URL.sub(f"{image_server}/astronaut.png", code)


def _run_python(code: str, cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", code + EPILOGUE], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESPONSE:"))
    return json.loads(line[len("RESPONSE:"):])


def _run_curl(code: str, cwd: Path) -> dict:
    done = subprocess.run(["bash", "-c", code.replace("curl ", "curl -sS ", 1)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=[f"{e['lang']}-{i}" for i, e in enumerate(EXAMPLES)])
def test_seed_000_example_runs_unchanged(seed_server, server, workdir, index):
    example = EXAMPLES[index]
    code = _adapt(example["code"], seed_server, server)
    if example["lang"] == "bash":
        if not shutil.which("curl"):
            pytest.skip("curl is not installed")
        body = _run_curl(code, workdir)
        expected = HEALTH_FIELDS if code.strip().split()[-1].endswith("/") else SEED_FIELDS
        assert expected <= set(body), body
        return
    received = _run_python(code, workdir)
    assert received["status"] == 200, received
    if received["type"] == "image/png":  # the visualization example saved what it got
        saved = Image.open(workdir / "visualization.png")
        assert saved.size == (512, 512)
    else:
        assert SEED_FIELDS <= set(received["body"]), received["body"]
        assert received["body"]["success"] is True


def test_seed_000_mask_files_saved_by_the_example_are_images_of_the_photo_size(seed_server, server, workdir):
    first = next(e for e in EXAMPLES if e["lang"] == "python" and "mask_{i}.png" in e["code"])
    code = _adapt(first["code"], seed_server, server).replace('"person"', '"person", "confidence_threshold": 0')
    _run_python(code, workdir)
    masks = sorted(workdir.glob("mask_*.png"))
    assert masks, "the example saves one PNG per mask"
    assert all(Image.open(path).size == (512, 512) for path in masks)
