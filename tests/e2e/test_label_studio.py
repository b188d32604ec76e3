"""A real Label Studio 1.23 judges the ML backend at /label-studio (tests/e2e/label_studio.py starts it once).

Our server runs under uvicorn on dev-tiny with SAM3_API_KEYS set and SAM3_LABEL_STUDIO_URL pointing at that
Label Studio. Everything goes through Label Studio's own API: create a project, upload three images, connect
the backend with Basic auth, "Retrieve predictions", read the stored predictions back, ask for interactive
predictions (a click, a box); a local-files storage's tasks; a second server reading the files with a personal
access token when the /setup token is refused. Brush masks are decoded with label-studio-sdk's converter (in
Label Studio's venv) and compared with what /segment/text, /segment/points and /segment/box answer for the
same pixels.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import requests

from sam3_api.media.masks import rle_to_mask
from tests.conftest import SAMPLES
from tests.e2e.conftest import start_server
from tests.e2e.label_studio import LabelStudio

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
KEY = "ls-judge-key"
IMAGES = [SAMPLES / name for name in ("chelsea.png", "astronaut.png", "coffee.png")]
BRUSH = ('<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image"><Label value="a"/>'
         '</BrushLabels><KeyPointLabels name="kp" toName="image" smart="true"><Label value="a"/></KeyPointLabels>'
         '<RectangleLabels name="box" toName="image" smart="true"><Label value="a"/></RectangleLabels></View>')
POLYGON = ('<View><Image name="image" value="$image"/><PolygonLabels name="poly" toName="image">'
           '<Label value="a"/></PolygonLabels></View>')
# Runs in Label Studio's venv: decode each brush RLE that Label Studio stored with the label-studio-sdk that
# Label Studio itself installed (the alpha channel is the mask, as the editor reads it).
DECODE = r'''
import base64, json, os, numpy as np
from label_studio_sdk.converter.brush import decode_rle
out = []
for item in json.load(open(os.environ["RLES"])):
    mask = decode_rle(item["rle"]).reshape(item["height"], item["width"], 4)[:, :, 3] > 0
    out.append({"bits": base64.b64encode(np.packbits(mask)).decode()})
print("RESULT:" + json.dumps(out))
'''


@pytest.fixture(scope="module")
def studio(label_studio_venv, tmp_path_factory):
    studio = LabelStudio.start(label_studio_venv, tmp_path_factory.mktemp("label-studio"), SAMPLES.parent)
    yield studio
    studio.stop()


@pytest.fixture(scope="module")
def backend(studio, tmp_path_factory):
    env = {"SAM3_API_KEYS": KEY, "SAM3_LABEL_STUDIO_URL": studio.url, "SAM3_LABEL_STUDIO_THRESHOLD": "0"}
    for url in start_server(tmp_path_factory, env):
        yield url


@pytest.fixture(scope="module")
def pat_backend(studio, tmp_path_factory):
    """A second server whose SAM3_LABEL_STUDIO_API_KEY is a personal access token of Label Studio's user."""
    env = {"SAM3_API_KEYS": KEY, "SAM3_LABEL_STUDIO_URL": studio.url, "SAM3_LABEL_STUDIO_THRESHOLD": "0",
           "SAM3_LABEL_STUDIO_API_KEY": studio.personal_access_token()}
    for url in start_server(tmp_path_factory, env):
        yield url


@pytest.fixture(scope="module")
def brush_project(studio, backend):
    project = studio.project("SAM 3 brush", BRUSH, IMAGES)
    ml = studio.connect(project, f"{backend}/label-studio", KEY)
    return project, ml, studio.retrieve_predictions(project)


def decode_brush(venv, tmp_path, regions: list[dict]) -> list[np.ndarray]:
    path = tmp_path / "rles.json"
    path.write_text(json.dumps([{"rle": r["value"]["rle"], "height": r["original_height"],
                                 "width": r["original_width"]} for r in regions]))
    decoded = venv.run(DECODE, env={"RLES": str(path)})
    return [np.unpackbits(np.frombuffer(base64.b64decode(item["bits"]), np.uint8))
            [:r["original_height"] * r["original_width"]].reshape(r["original_height"], r["original_width"])
            .astype(bool) for item, r in zip(decoded, regions)]


def native(backend: str, route: str, image, **form) -> list[np.ndarray]:
    response = requests.post(f"{backend}/segment/{route}", headers={"X-API-Key": KEY}, timeout=120,
                             files={"image": (image.name, image.read_bytes())}, data={"output_format": "rle", **form})
    assert response.status_code == 200, response.text
    return [rle_to_mask(rle) for rle in response.json()["masks"]]


def image_of(task: dict):
    """The sample a task was uploaded from (Label Studio prefixes the stored name with an id)."""
    return next(path for path in IMAGES if task["data"]["image"].endswith(path.name))


def assert_masks_of_text_a(backend, label_studio_venv, tmp_path, prediction: dict, image) -> None:
    regions = [r for r in prediction["result"] if r["value"]["brushlabels"] == ["a"]]
    expected = native(backend, "text", image, text="a", confidence_threshold=0)
    assert expected and len(regions) == len(expected)
    decoded = decode_brush(label_studio_venv, tmp_path, regions)
    assert all(np.array_equal(mask, want) for mask, want in zip(decoded, expected))


def test_retrieved_brush_predictions_are_the_masks_of_text_a(studio, backend, brush_project, label_studio_venv,
                                                             tmp_path):
    project, _, predictions = brush_project
    tasks = {task["id"]: task for task in studio.tasks(project)}
    assert sorted(p["task"] for p in predictions) == sorted(tasks) and len(tasks) == 3
    precision = requests.get(f"{backend}/health", timeout=10).json()["precision"]  # auto: bf16 on AMX CPUs
    for prediction in predictions:
        assert prediction["model_version"] == f"sam3-api:dev-tiny:{precision}"
        assert_masks_of_text_a(backend, label_studio_venv, tmp_path, prediction, image_of(tasks[prediction["task"]]))


def test_a_keypoint_through_interactive_annotating_gives_the_points_mask(studio, backend, brush_project,
                                                                          label_studio_venv, tmp_path):
    project, ml, _ = brush_project
    task = next(t for t in studio.tasks(project) if image_of(t) == IMAGES[0])
    x, y = 220, 140
    click = {"id": "click1", "type": "keypointlabels", "from_name": "kp", "to_name": "image", "is_positive": True,
             "original_width": 451, "original_height": 300,
             "value": {"x": 100 * x / 451, "y": 100 * y / 300, "width": 0.5, "keypointlabels": ["a"]}}
    answer = studio.call("POST", f"/api/ml/{ml['id']}/interactive-annotating",
                         json={"task": task["id"], "context": {"result": [click]}})
    [region] = answer["data"]["result"]
    assert region["type"] == "brushlabels" and region["value"]["brushlabels"] == ["a"]
    [mask] = decode_brush(label_studio_venv, tmp_path, [region])
    [expected] = native(backend, "points", IMAGES[0], points_x=str(x), points_y=str(y), labels="1")
    assert np.array_equal(mask, expected)


def test_a_box_through_interactive_annotating_gives_the_boxes_mask(studio, backend, brush_project,
                                                                  label_studio_venv, tmp_path):
    project, ml, _ = brush_project
    task = next(t for t in studio.tasks(project) if image_of(t) == IMAGES[0])
    x1, y1, x2, y2 = 150, 60, 330, 250
    box = {"id": "box1", "type": "rectanglelabels", "from_name": "box", "to_name": "image",
           "original_width": 451, "original_height": 300,
           "value": {"x": 100 * x1 / 451, "y": 100 * y1 / 300, "width": 100 * (x2 - x1) / 451,
                     "height": 100 * (y2 - y1) / 300, "rotation": 0, "rectanglelabels": ["a"]}}
    answer = studio.call("POST", f"/api/ml/{ml['id']}/interactive-annotating",
                         json={"task": task["id"], "context": {"result": [box]}})
    [region] = answer["data"]["result"]
    assert region["type"] == "brushlabels" and region["value"]["brushlabels"] == ["a"]
    [mask] = decode_brush(label_studio_venv, tmp_path, [region])
    [expected] = native(backend, "box", IMAGES[0], x1=str(x1), y1=str(y1), x2=str(x2), y2=str(y2))
    assert np.array_equal(mask, expected)


def test_local_files_storage_tasks_are_read_from_label_studio(studio, backend, label_studio_venv, tmp_path):
    project = studio.project("SAM 3 local files", BRUSH, [])
    studio.local_storage(project, SAMPLES, r"chelsea\.png")
    [task] = studio.tasks(project)
    assert task["data"]["image"] == f"{studio.url}/data/local-files/?d={SAMPLES.name}/chelsea.png"
    studio.connect(project, f"{backend}/label-studio", KEY)
    [prediction] = studio.retrieve_predictions(project)
    assert_masks_of_text_a(backend, label_studio_venv, tmp_path, prediction, IMAGES[0])


def test_a_personal_access_token_reads_the_files_when_the_setup_token_is_refused(studio, brush_project, pat_backend,
                                                                                 label_studio_venv, tmp_path):
    """Label Studio 1.23 refuses the legacy token it sends in /setup unless legacy tokens are enabled (not the
    default): the backend then reads the files with SAM3_LABEL_STUDIO_API_KEY, here a personal access token."""
    project, _, _ = brush_project
    tasks = studio.tasks(project)
    auth = ("label-studio", KEY)
    setup = requests.post(f"{pat_backend}/label-studio/setup", auth=auth, timeout=30,
                          json={"project": "pat", "hostname": studio.url, "access_token": "refused-legacy-token"})
    assert setup.status_code == 200, setup.text
    response = requests.post(f"{pat_backend}/label-studio/predict", auth=auth, timeout=600,
                             json={"tasks": tasks, "label_config": BRUSH, "project": "pat", "params": {}})
    assert response.status_code == 200, response.text
    for task, prediction in zip(tasks, response.json()["results"]):
        assert_masks_of_text_a(pat_backend, label_studio_venv, tmp_path, prediction, image_of(task))


def test_a_polygon_project_gets_polygons_in_percent(studio, backend):
    project = studio.project("SAM 3 polygons", POLYGON, IMAGES[:1])
    studio.connect(project, f"{backend}/label-studio", KEY)
    [prediction] = studio.retrieve_predictions(project)
    polygons = prediction["result"]
    assert polygons and {r["type"] for r in polygons} == {"polygonlabels"}
    for region in polygons:
        points = np.array(region["value"]["points"])
        assert region["value"]["polygonlabels"] == ["a"] and points.shape[0] >= 3
        assert (points >= 0).all() and (points <= 100).all()


def test_a_wrong_key_cannot_connect(studio, backend):
    project = studio.project("SAM 3 wrong key", BRUSH, IMAGES[:1])
    refused = studio.connect(project, f"{backend}/label-studio", "not-the-key", expect=400)
    assert "authentication" in json.dumps(refused).lower()
