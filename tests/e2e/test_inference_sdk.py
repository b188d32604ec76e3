"""Roboflow's own client, inference-sdk 1.8.3, pointed at our server: the judge of seed 004's wire format.

The SDK runs in its own venv (tests/e2e/sdk_venv.py) against two real uvicorn servers on dev-tiny, one
without API keys and one with SAM3_API_KEYS. One script per server drives every call the SDK offers for
SAM 3 (concept segmentation as polygons and RLE, visual segmentation with points and with a box, image
embedding, then a request that names the embedded image by its image_id) and prints what came back;
the tests below read that. With keys on, the SDK sends its key the way it always does (in the JSON body),
and once more through its Authorization-header transport.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from tests.conftest import SAMPLES
from tests.e2e.conftest import start_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
WIDTH, HEIGHT = 451, 300  # chelsea.png
KEYS = ("key-one", "key-two")

SCRIPT = r'''
import json, os, requests
from inference_sdk import InferenceConfiguration, InferenceHTTPClient
from inference_sdk.http.errors import HTTPCallErrorError

url, key = os.environ["SAM3_URL"], os.environ.get("SAM3_KEY") or None
client = InferenceHTTPClient(api_url=url, api_key=key)
out = {}

def call(name, operation):
    try:
        out[name] = operation()
    except HTTPCallErrorError as error:
        out[name] = {"error_status": error.status_code, "api_message": error.api_message}

concept = [{"type": "text", "text": "cat"},
           {"type": "visual", "boxes": [{"x": 40, "y": 30, "width": 120, "height": 90}], "box_labels": [1]}]
call("concept_polygon", lambda: client.sam3_concept_segment("photo.jpg", prompts=concept, output_prob_thresh=0.0,
                                                            format="polygon"))
call("concept_rle", lambda: client.sam3_concept_segment("photo.jpg", prompts=[{"type": "text", "text": "cat"}],
                                                        output_prob_thresh=0.0, format="rle"))
points = [{"points": [{"x": 200, "y": 150, "positive": True}, {"x": 20, "y": 20, "positive": False}]}]
call("visual_points", lambda: client.sam3_visual_segment("photo.jpg", prompts=points))
box = [{"box": {"x": 225, "y": 150, "width": 200, "height": 160}}]
call("visual_box", lambda: client.sam3_visual_segment("photo.jpg", prompts=box, multimask_output=False))
call("embed", lambda: client.sam3_embed_image("photo.jpg", image_id="photo-1"))
# The SDK's segment calls take no image_id; a client reuses the id with a plain JSON request, image left out.
reuse = {"image_id": "photo-1", "prompts": [{"points": [{"x": 100, "y": 100, "positive": True}]}], "api_key": key}
response = requests.post(url + "/sam3/visual_segment", json=reuse)
out["reuse"] = {"status": response.status_code, "body": response.json()}
if os.environ.get("SAM3_OTHER_KEY"):  # another valid key must not see this key's image_id
    response = requests.post(url + "/sam3/visual_segment", json={**reuse, "api_key": os.environ["SAM3_OTHER_KEY"]})
    out["reuse_other_key"] = {"status": response.status_code, "body": response.json()}
if key:
    header_client = InferenceHTTPClient(api_url=url, api_key=key).configure(
        InferenceConfiguration(api_key_transport="header"))
    call("header_transport", lambda: header_client.sam3_embed_image("photo.jpg"))
print("RESULT:" + json.dumps(out))
'''

REFUSED_SCRIPT = r'''
import json, os
from inference_sdk import InferenceHTTPClient
from inference_sdk.http.errors import HTTPCallErrorError
client = InferenceHTTPClient(api_url=os.environ["SAM3_URL"], api_key=os.environ.get("SAM3_KEY") or None)
try:
    client.sam3_concept_segment("photo.jpg", prompts=[{"type": "text", "text": "cat"}])
    print("RESULT:" + json.dumps({"refused": False}))
except HTTPCallErrorError as error:
    print("RESULT:" + json.dumps({"refused": True, "status": error.status_code, "api_message": error.api_message}))
'''


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdk-photo")
    Image.open(SAMPLES / "chelsea.png").convert("RGB").save(folder / "photo.jpg", quality=95)
    return folder


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    yield from start_server(tmp_path_factory)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    yield from start_server(tmp_path_factory, {"SAM3_API_KEYS": ",".join(KEYS)})


@pytest.fixture(scope="module")
def script_runs(inference_sdk, photo_dir, request):
    """What every SDK call returned, from one script run per server (run on first use, then remembered)."""
    runs: dict[str, dict] = {}

    def results(mode: str) -> dict:
        if mode not in runs:
            if mode == "keys off":
                env = {"SAM3_URL": request.getfixturevalue("open_server")}
            else:
                env = {"SAM3_URL": request.getfixturevalue("keyed_server"), "SAM3_KEY": KEYS[0],
                       "SAM3_OTHER_KEY": KEYS[1]}
            runs[mode] = inference_sdk.run(SCRIPT, env=env, cwd=photo_dir)
        return runs[mode]

    return results


@pytest.fixture(params=["keys off", "keys on"])
def sdk_results(request, script_runs):
    return script_runs(request.param)


@pytest.fixture
def keyed_results(script_runs):
    return script_runs("keys on")


def _assert_polygon(masks: list) -> None:
    assert isinstance(masks, list)
    for contour in masks:
        assert contour and all(len(point) == 2 for point in contour)
        assert all(isinstance(v, int) for point in contour for v in point)
        assert all(0 <= x < WIDTH and 0 <= y < HEIGHT for x, y in contour)


def test_concept_segment_answers_each_prompt_with_polygons_and_an_echo(sdk_results):
    answer = sdk_results["concept_polygon"]
    assert isinstance(answer["time"], float)
    text, visual = answer["prompt_results"]
    assert [text["prompt_index"], visual["prompt_index"]] == [0, 1]
    assert text["echo"] == {"prompt_index": 0, "type": "text", "text": "cat", "num_boxes": 0}
    assert visual["echo"] == {"prompt_index": 1, "type": "visual", "text": None, "num_boxes": 1}
    for result in (text, visual):
        assert result["predictions"], "threshold 0 keeps every instance dev-tiny finds"
        for prediction in result["predictions"]:
            assert prediction["format"] == "polygon" and 0.0 <= prediction["confidence"] <= 1.0
            _assert_polygon(prediction["masks"])


def test_concept_segment_in_rle_answers_coco_rle_at_the_image_size(sdk_results):
    [result] = sdk_results["concept_rle"]["prompt_results"]
    assert result["predictions"]
    for prediction in result["predictions"]:
        assert prediction["format"] == "rle" and isinstance(prediction["masks"]["counts"], str)
        assert prediction["masks"]["size"] == [HEIGHT, WIDTH]
        decoded = coco_mask.decode({**prediction["masks"], "counts": prediction["masks"]["counts"].encode()})
        assert decoded.shape == (HEIGHT, WIDTH)


def test_visual_segment_with_points_answers_one_polygon_mask(sdk_results):
    [prediction] = sdk_results["visual_points"]["predictions"]
    assert prediction["format"] == "polygon"
    _assert_polygon(prediction["masks"])


def test_visual_segment_with_a_centre_box_answers_one_mask(sdk_results):
    [prediction] = sdk_results["visual_box"]["predictions"]
    assert 0.0 <= prediction["confidence"] <= 1.0
    _assert_polygon(prediction["masks"])


def test_embed_image_answers_the_client_image_id_and_a_later_request_reuses_it(sdk_results):
    assert sdk_results["embed"]["image_id"] == "photo-1"
    assert isinstance(sdk_results["embed"]["time"], float)
    reuse = sdk_results["reuse"]
    assert reuse["status"] == 200, reuse  # no image in that request: only the id named it
    assert len(reuse["body"]["predictions"]) == 1


def test_an_image_id_is_invisible_to_another_api_key(keyed_results):
    other = keyed_results["reuse_other_key"]
    assert other["status"] == 404 and "image_id" in other["body"]["message"]


def test_the_sdk_header_transport_is_accepted_too(keyed_results):
    """InferenceConfiguration(api_key_transport="header"): the key travels only as Authorization: Bearer."""
    assert "image_id" in keyed_results["header_transport"], keyed_results["header_transport"]


@pytest.mark.parametrize("key", ["not-a-key", None], ids=["wrong key", "no key"])
def test_the_sdk_with_a_wrong_or_missing_key_is_refused_with_401(inference_sdk, keyed_server, photo_dir, key):
    env = {"SAM3_URL": keyed_server, **({"SAM3_KEY": key} if key else {})}
    result = inference_sdk.run(REFUSED_SCRIPT, env=env, cwd=photo_dir)
    assert result["refused"] and result["status"] == 401
    assert "API key" in result["api_message"]


def test_the_polygons_outline_the_rle_masks_of_the_same_request(sdk_results):
    """Both formats describe the same instances: the polygon fill covers most of the RLE mask's pixels."""
    import cv2

    polygons = sdk_results["concept_polygon"]["prompt_results"][0]["predictions"]
    rles = sdk_results["concept_rle"]["prompt_results"][0]["predictions"]
    assert len(polygons) == len(rles)
    best_polygon, best_rle = polygons[0], rles[0]
    mask = coco_mask.decode({**best_rle["masks"], "counts": best_rle["masks"]["counts"].encode()}).astype(bool)
    canvas = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    cv2.fillPoly(canvas, [np.asarray(c, dtype=np.int32) for c in best_polygon["masks"]], 1)
    assert best_polygon["confidence"] == pytest.approx(best_rle["confidence"])
    overlap = np.logical_and(mask, canvas.astype(bool)).sum() / max(mask.sum(), 1)
    assert overlap > 0.9
