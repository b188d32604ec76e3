"""The Label Studio ML backend (/label-studio) over the real app and dev-tiny engine; the native routes on the
same pixels are the reference. A small stand-in for Label Studio's file routes (127.0.0.1) checks how files
are read with its tokens; the real Label Studio judges the whole flow in tests/e2e/test_label_studio.py.
"""

from __future__ import annotations

import base64
import threading

import numpy as np
import pytest
from label_studio_sdk.converter.brush import decode_rle

from sam3_api.api.services import services_of
from sam3_api.compat.label_studio import segment
from sam3_api.compat.label_studio.routes import TOKENS
from sam3_api.engine.engine import Sam3Engine
from sam3_api.media.masks import rle_to_mask
from tests.api.conftest import client_over
from tests.api.label_studio_fake import JWT, LEGACY, PHOTO, SECOND_ASKED, serve_fake_studio
from tests.conftest import dev_settings

DATA_URI = "data:image/png;base64," + base64.b64encode(PHOTO).decode()
HEIGHT, WIDTH = 300, 451


def config(control: str = "BrushLabels", extra: str = "") -> str:
    return (f'<View><Image name="img" value="$image"/><{control} name="tag" toName="img">'
            f'<Label value="a"/><Label value="Kitty" predicted_values="cat, kitten"/></{control}>{extra}</View>')


@pytest.fixture(scope="module")
def studio():
    yield from serve_fake_studio()


@pytest.fixture(scope="module")
def client(engine, studio):
    client = client_over(engine, label_studio_url=studio, label_studio_threshold=0.0, api_keys=["k1"])
    client.auth = ("label-studio", "k1")  # Label Studio's "Basic auth" fields: the key is the password
    yield client
    client.__exit__(None, None, None)


def predict(client, tasks, label_config=None, context=None, project="7.1700000000", status=200) -> dict:
    body = {"tasks": tasks, "label_config": label_config or config(), "project": project,
            "params": {"login": None, "password": None, "context": context}}
    response = client.post("/label-studio/predict", json=body)
    assert response.status_code == status, response.text
    return response.json()


def brush_masks(regions: list[dict]) -> list[np.ndarray]:
    """Each brush region's mask as Label Studio reads it: label-studio-sdk's decoder, the alpha channel."""
    return [decode_rle(r["value"]["rle"]).reshape(r["original_height"], r["original_width"], 4)[:, :, 3] > 0
            for r in regions]


def same_masks(found: list[np.ndarray], expected: list[np.ndarray]) -> bool:
    return len(found) == len(expected) and all(np.array_equal(a, b) for a, b in zip(found, expected))


def native_masks(client, route: str, **form) -> tuple[list[np.ndarray], list[float]]:
    response = client.post(f"/segment/{route}", files={"image": ("c.png", PHOTO)},
                           data={"output_format": "rle", **form})
    assert response.status_code == 200, response.text
    body = response.json()
    return [rle_to_mask(rle) for rle in body["masks"]], body["scores"]


def test_health_and_root_say_up_with_the_model_version(client):
    for path in ("/label-studio/health", "/label-studio/"):
        body = client.get(path).json()
        assert body["status"] == "UP" and body["model_version"] == "sam3-api:dev-tiny:fp32"


@pytest.mark.parametrize("requested", ["fp32", "bf16"])
def test_the_model_version_names_the_precision_before_and_after_loading(requested, engine, bf16_engine):
    loading = Sam3Engine(dev_settings(precision=requested))
    try:
        assert segment.model_version(loading) == f"sam3-api:dev-tiny:{requested}"
    finally:
        loading.stop()
    loaded = engine if requested == "fp32" else bf16_engine
    assert segment.model_version(loaded) == f"sam3-api:dev-tiny:{requested}"


def test_setup_answers_the_model_version(client, studio):
    response = client.post("/label-studio/setup", json={"project": "1.1", "schema": config(), "hostname": studio,
                                                        "access_token": LEGACY})
    assert response.status_code == 200 and response.json() == {"model_version": "sam3-api:dev-tiny:fp32"}


def test_a_hostname_other_than_the_configured_url_is_a_422_naming_the_setting(client):
    response = client.post("/label-studio/setup", json={"project": "1.1", "hostname": "http://10.0.0.1:8080",
                                                        "access_token": LEGACY})
    assert response.status_code == 422 and "SAM3_LABEL_STUDIO_URL" in response.json()["error"]


def test_a_wrong_key_is_401_and_a_right_one_passes(client):
    assert client.get("/label-studio/health", auth=("label-studio", "wrong")).status_code == 401
    assert client.get("/label-studio/health", auth=None).status_code == 401
    assert client.get("/label-studio/health").status_code == 200


def test_brush_prelabels_of_label_a_are_the_masks_of_text_a(client):
    [prediction] = predict(client, [{"id": 1, "data": {"image": DATA_URI}}])["results"]
    masks, scores = native_masks(client, "text", text="a", confidence_threshold=0)
    regions = [r for r in prediction["result"] if r["value"]["brushlabels"] == ["a"]]
    assert masks, "dev-tiny found nothing for 'a' at threshold 0"
    assert same_masks(brush_masks(regions), masks)
    assert [r["score"] for r in regions] == pytest.approx(scores, abs=1e-5)
    assert {(r["from_name"], r["to_name"], r["type"], r["original_width"], r["original_height"])
            for r in regions} == {("tag", "img", "brushlabels", WIDTH, HEIGHT)}
    assert prediction["model_version"] == "sam3-api:dev-tiny:fp32"
    assert prediction["score"] == pytest.approx(np.mean([r["score"] for r in prediction["result"]]))


def test_predicted_values_map_a_label_to_several_prompts(client):
    [prediction] = predict(client, [{"id": 1, "data": {"image": DATA_URI}}])["results"]
    kitty = [r for r in prediction["result"] if r["value"]["brushlabels"] == ["Kitty"]]
    expected = [mask for text in ("cat", "kitten")
                for mask in native_masks(client, "text", text=text, confidence_threshold=0)[0]]
    assert expected and same_masks(brush_masks(kitty), expected)


def test_polygons_are_outer_contours_in_percent(client):
    [prediction] = predict(client, [{"id": 1, "data": {"image": DATA_URI}}], config("PolygonLabels"))["results"]
    masks, _ = native_masks(client, "text", text="a", confidence_threshold=0)
    polygons = [r for r in prediction["result"] if r["value"]["polygonlabels"] == ["a"]]
    assert polygons and all(r["type"] == "polygonlabels" for r in polygons)
    import cv2

    drawn = np.zeros((HEIGHT, WIDTH), np.uint8)
    for region in polygons:
        points = np.array(region["value"]["points"]) * [WIDTH / 100, HEIGHT / 100]
        assert (points >= 0).all() and (points[:, 0] <= WIDTH).all() and (points[:, 1] <= HEIGHT).all()
        cv2.fillPoly(drawn, [np.round(points).astype(np.int32)], 1)
    union = np.any(masks, axis=0)
    assert (drawn.astype(bool) & union).sum() / max(union.sum(), 1) > 0.9


def test_rectangles_are_the_boxes_in_percent(client):
    [prediction] = predict(client, [{"id": 1, "data": {"image": DATA_URI}}], config("RectangleLabels"))["results"]
    response = client.post("/segment/text", files={"image": ("c.png", PHOTO)}, data={"text": "a",
                                                                                      "confidence_threshold": 0})
    boxes = response.json()["boxes"]
    rects = [r["value"] for r in prediction["result"] if r["value"]["rectanglelabels"] == ["a"]]
    assert rects and len(rects) == len(boxes)
    assert [c for v in rects for c in (v["x"] * WIDTH / 100, v["y"] * HEIGHT / 100, (v["x"] + v["width"]) * WIDTH / 100,
                                       (v["y"] + v["height"]) * HEIGHT / 100)] == pytest.approx(
        [c for box in boxes for c in box], abs=0.006)  # the native route rounds to 0.01 px


def test_a_keypoint_gives_the_points_mask_at_that_pixel_and_clicks_accumulate(client):
    x, y = 220, 140
    click = {"id": "k1", "type": "keypointlabels", "original_width": WIDTH, "original_height": HEIGHT,
             "is_positive": True, "value": {"x": 100 * x / WIDTH, "y": 100 * y / HEIGHT, "keypointlabels": ["a"]}}
    kp = config(extra='<KeyPointLabels name="kp" toName="img" smart="true"><Label value="a"/></KeyPointLabels>')
    [prediction] = predict(client, [{"id": 1, "data": {"image": DATA_URI}}], kp, {"result": [click]})["results"]
    [mask], [score] = native_masks(client, "points", points_x=f"{x}", points_y=f"{y}", labels="1")
    [region] = prediction["result"]
    assert same_masks(brush_masks([region]), [mask]) and region["value"]["brushlabels"] == ["a"]
    assert region["score"] == pytest.approx(score, abs=1e-5)
    negative = {**click, "id": "k2", "is_positive": False, "value": {**click["value"], "x": 10.0, "y": 10.0}}
    [both] = predict(client, [{"id": 1, "data": {"image": DATA_URI}}], kp, {"result": [click, negative]})["results"]
    [mask2], _ = native_masks(client, "points", points_x=f"{x},45.1", points_y=f"{y},30", labels="1,0")
    assert same_masks(brush_masks(both["result"]), [mask2]) and not np.array_equal(mask, mask2)


def test_relative_urls_are_read_from_label_studio_with_the_setup_token(client, studio):
    client.post("/label-studio/setup", json={"project": "3.3", "hostname": studio, "access_token": LEGACY})
    tasks = [{"id": 1, "data": {"image": "/data/upload/1/cat.png"}},
             {"id": 2, "data": {"image": f"{studio}/data/local-files/?d=photos/cat.png"}}]
    with_token = predict(client, tasks, project="3.3")["results"]
    without = predict(client, tasks, project="never-set-up")["results"]
    assert [len(p["result"]) > 0 for p in with_token] == [True, True]
    assert [p["result"] for p in without] == [[], []]  # 401 from Label Studio: empty predictions, in order


def test_a_personal_access_token_is_exchanged_for_an_access_token(client, studio):
    client.post("/label-studio/setup", json={"project": "4.4", "hostname": studio, "access_token": JWT})
    [prediction] = predict(client, [{"id": 1, "data": {"image": "/data/upload/1/cat.png"}}], project="4.4")["results"]
    assert prediction["result"]


def test_the_next_tasks_image_is_fetched_before_the_first_task_is_done(client, studio):
    """The first task's file is served only once the second's has been asked for: with tasks read one by one
    it would wait out the gate and answer 404 (an empty first prediction)."""
    SECOND_ASKED.clear()
    client.post("/label-studio/setup", json={"project": "5.5", "hostname": studio, "access_token": LEGACY})
    tasks = [{"id": 1, "data": {"image": "/data/upload/gate/first.png"}},
             {"id": 2, "data": {"image": "/data/upload/gate/second.png"}}]
    results = predict(client, tasks, project="5.5")["results"]
    assert [bool(p["result"]) for p in results] == [True, True]


def test_a_refused_setup_token_falls_back_to_the_configured_key(engine, studio):
    """Label Studio 1.23 sends the owner's legacy token in /setup and refuses it itself unless legacy tokens
    are on: the operator's SAM3_LABEL_STUDIO_API_KEY (here a personal access token) is tried next."""
    task = [{"id": 1, "data": {"image": "/data/upload/1/cat.png"}}]
    for key, found in ((JWT, True), ("also-refused", False)):
        client = client_over(engine, label_studio_url=studio, label_studio_threshold=0.0, label_studio_api_key=key)
        try:
            client.post("/label-studio/setup", json={"project": "6.6", "hostname": studio, "access_token": "old"})
            [prediction] = predict(client, task, project="6.6")["results"]
        finally:
            client.__exit__(None, None, None)
        assert bool(prediction["result"]) is found


def test_bad_tasks_get_empty_predictions_in_order(client):
    tasks = [{"id": 1, "data": {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}},
             {"id": 2, "data": {"image": DATA_URI}},
             {"id": 3, "data": {"image": "http://169.254.169.254/latest/meta-data"}},
             {"id": 4, "data": {}},
             {"id": 5, "data": {"image": "/presign/?fileuri=x"}}]
    results = predict(client, tasks, project="3.3")["results"]
    assert [bool(p["result"]) for p in results] == [False, True, False, False, False]
    assert all(p["model_version"] == "sam3-api:dev-tiny:fp32" for p in results)


def test_a_config_without_an_output_control_is_a_422(client):
    body = predict(client, [{"id": 1, "data": {"image": DATA_URI}}], '<View><Image name="i" value="$image"/></View>',
                   status=422)
    assert "BrushLabels" in body["error"]
    assert "XML" in predict(client, [], "<View", status=422)["error"]


def test_train_says_this_backend_does_not_train_and_webhooks_are_accepted(client):
    response = client.post("/label-studio/train", json={"annotations": [{"id": 1}], "project": "1.1"})
    assert response.status_code == 400 and "does not train" in response.json()["error"]
    assert client.post("/label-studio/webhook", json={"action": "ANNOTATION_CREATED"}).status_code == 201


def test_health_and_setup_answer_while_the_model_thread_is_busy(client, engine):
    """Label Studio gives /health 1 s and /setup 3 s: neither may wait for the model."""
    release, running = threading.Event(), threading.Event()
    busy = engine.worker.submit(lambda: (running.set(), release.wait(60)))
    try:
        assert running.wait(30)
        assert client.get("/label-studio/health").json()["status"] == "UP"
        assert client.post("/label-studio/setup", json={"project": "9.9"}).status_code == 200
        assert not busy.done()  # both answered while the model thread was still held
    finally:
        release.set()
    busy.result(timeout=30)


def test_setup_tokens_are_bounded(client):
    tokens = services_of(client.app).adapters[TOKENS]
    for project in range(tokens.MAX + 5):
        tokens.remember(("scope", str(project)), "t")
    assert len(tokens) == tokens.MAX and ("scope", "0") not in tokens and ("scope", str(tokens.MAX + 4)) in tokens


def test_the_prompts_setting_maps_a_label_when_the_config_does_not(engine, client):
    mapped = client_over(engine, label_studio_prompts={"a": "cat"}, label_studio_threshold=0.0)
    try:
        [prediction] = predict(mapped, [{"id": 1, "data": {"image": DATA_URI}}])["results"]
    finally:
        mapped.__exit__(None, None, None)
    regions = [r for r in prediction["result"] if r["value"]["brushlabels"] == ["a"]]
    cats, _ = native_masks(client, "text", text="cat", confidence_threshold=0)
    assert cats and same_masks(brush_masks(regions), cats)
