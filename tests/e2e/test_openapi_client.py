"""A client generated from /openapi.json by openapi-python-client, untouched, drives the real server.

The generator runs in a virtual environment of its own (tests/e2e/sdk_venv.py); its package is written into
tmp_path and imported by a script in that venv, which segments by box (base64 JSON) and by text (multipart)
and runs a video job to the end through the generated methods and models.

Every generated module is imported, so an operation whose generated code is broken fails here (POST
/video/jobs, /video/uploads and /batch/jobs take JSON or multipart: openapi-python-client 0.29.1 writes
their methods with an annotation naming `Unset`, which it imports only when some parameter is optional; the
document's optional X-Request-ID header on every operation with a body is such a parameter).
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request

import pytest

from tests.conftest import png_bytes
from tests.e2e.sdk_venv import sdk_fixture
from tests.videos import frame_pixels, make_video, square_box

pytestmark = pytest.mark.e2e
openapi_client_venv = sdk_fixture("openapi-python-client==0.29.1")
PACKAGE = "sam3_generated_client"

SCRIPT = r"""
import importlib, io, json, os, pkgutil, sys, time
sys.path.insert(0, os.environ["CLIENT_DIR"])
import sam3_generated_client.api
from sam3_generated_client import Client
modules = [importlib.import_module(info.name) for info in pkgutil.walk_packages(
    sam3_generated_client.api.__path__, "sam3_generated_client.api.") if not info.ispkg]
callable_modules = [m.__name__ for m in modules if callable(getattr(m, "sync_detailed", None))]
from sam3_generated_client.api.segmentation import segment_box_base64, segment_text_upload
from sam3_generated_client.api.video import create_video_job, get_video_job
from sam3_generated_client.models import BoxBase64Request, BodySegmentTextUpload, CreateVideoJobJsonVideoJobJson
from sam3_generated_client.types import File

client = Client(base_url=os.environ["BASE_URL"], timeout=120)
image = open(os.environ["IMAGE"], "rb").read()
box = segment_box_base64.sync_detailed(client=client, body=BoxBase64Request(
    image_base64=os.environ["IMAGE_B64"], x1=20, y1=10, x2=80, y2=50))
text = segment_text_upload.sync_detailed(client=client, body=BodySegmentTextUpload(
    image=File(payload=io.BytesIO(image), file_name="photo.png", mime_type="image/png"), text="square"))
job = create_video_job.sync_detailed(client=client, body=CreateVideoJobJsonVideoJobJson.from_dict(
    json.loads(os.environ["JOB"])))
states = []
for _ in range(600):
    status = get_video_job.sync(client=client, job_id=job.parsed.job_id)
    states.append(str(status.status))
    if states[-1] in ("succeeded", "failed", "cancelled", "interrupted"):
        break
    time.sleep(0.2)
print("RESULT:" + json.dumps({
    "modules": [len(modules), len(callable_modules)],
    "box": [box.status_code, box.parsed.num_masks, box.parsed.image_size],
    "text": [text.status_code, type(text.parsed).__name__, text.content.decode()[:300]],
    "job": [job.status_code, type(job.parsed).__name__, states[-1], status.to_dict()["progress"]["frames_done"]],
}))
"""


def test_a_generated_client_segments_and_runs_a_video_job(openapi_client_venv, live_server, tmp_path):
    png_image = png_bytes(frame_pixels(0))  # 160x120 with one square
    spec = tmp_path / "openapi.json"
    spec.write_bytes(urllib.request.urlopen(f"{live_server}/openapi.json", timeout=30).read())
    generator = openapi_client_venv.python.with_name("openapi-python-client")
    done = subprocess.run([str(generator), "generate", "--path", str(spec), "--meta", "none",
                           "--output-path", str(tmp_path / "client" / PACKAGE)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Its only warnings: binary answers (the MP4 export, a JPEG frame), which it cannot type; nothing else
    warnings = [line for line in done.stdout.splitlines() if line.startswith("WARNING")]
    assert all(line.endswith(("video.mp4 within video.", ".jpg within interactive_video.")) for line in warnings), \
        done.stdout[-3000:]
    image_path = tmp_path / "photo.png"
    image_path.write_bytes(png_image)
    clip = make_video(tmp_path / "clip.mp4", frames=8)
    job = {"video_base64": base64.b64encode(clip.read_bytes()).decode(),
           "objects": [{"frame_index": 0, "box": list(square_box(0))}]}
    result = openapi_client_venv.run(SCRIPT, env={
        "CLIENT_DIR": str(tmp_path / "client"), "BASE_URL": live_server, "IMAGE": str(image_path),
        "IMAGE_B64": base64.b64encode(png_image).decode(), "JOB": json.dumps(job)}, timeout=300)
    assert result["box"][0] == 200 and result["box"][1] >= 1, result
    assert result["text"][:2] == [200, "SegmentResponse"], result
    assert result["job"][:3] == [202, "VideoJobOut", "succeeded"] and result["job"][3] == 8, result
    operations = sum(len(methods) for methods in json.loads(spec.read_text())["paths"].values())
    assert result["modules"] == [operations, operations], result  # one importable module per operation
