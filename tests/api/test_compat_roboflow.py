"""Seed 004's /sam3/* routes over the real app and dev-tiny engine; native routes on the same pixels are the
reference (same engine path, same encoders). The SDK's own view of them is in tests/e2e/test_inference_sdk.py.
"""

from __future__ import annotations

import base64

import pytest

from tests.api.conftest import client_over
from tests.conftest import SAMPLES, png_bytes, random_image

PHOTO = (SAMPLES / "chelsea.png").read_bytes()
PHOTO_B64 = base64.b64encode(PHOTO).decode()
OTHER_B64 = base64.b64encode(png_bytes(random_image(300, 451, seed=7))).decode()
IMAGE = {"type": "base64", "value": PHOTO_B64}
HEIGHT, WIDTH = 300, 451


@pytest.fixture(scope="module")
def client(engine):
    client = client_over(engine, url_allow_hosts=["127.0.0.1"])
    yield client
    client.__exit__(None, None, None)


def concept(client, prompts, **body):
    response = client.post("/sam3/concept_segment", json={"image": IMAGE, "prompts": prompts, **body})
    assert response.status_code == 200, response.text
    return response.json()


def visual(client, prompts, image=IMAGE, **body):
    response = client.post("/sam3/visual_segment", json={"image": image, "prompts": prompts, **body})
    assert response.status_code == 200, response.text
    return response.json()


def native(client, kind: str, b64: str = PHOTO_B64, **body) -> list:
    response = client.post(f"/segment/{kind}/base64", json={"image_base64": b64, "output_format": "rle", **body})
    return response.json()["masks"]


def rles(predictions: list[dict]) -> list[dict]:
    assert all(p["format"] == "rle" for p in predictions)
    return [p["masks"] for p in predictions]


def test_concept_rle_masks_are_the_native_routes_masks(client):
    answer = concept(client, [{"type": "text", "text": "cat"}], output_prob_thresh=0.0, format="rle")
    [result] = answer["prompt_results"]
    assert rles(result["predictions"]) == native(client, "text", text="cat", confidence_threshold=0)
    assert isinstance(answer["time"], float) and answer["time"] >= 0


def test_json_format_means_polygons_of_int_outer_contours(client):
    as_json = concept(client, [{"text": "cat"}], output_prob_thresh=0.0, format="json")
    as_polygon = concept(client, [{"text": "cat"}], output_prob_thresh=0.0)  # polygon is the default
    strip = lambda answer: [p for r in answer["prompt_results"] for p in r["predictions"]]  # noqa: E731
    assert strip(as_json) == strip(as_polygon) and strip(as_json)
    for prediction in strip(as_json):
        assert prediction["format"] == "polygon"
        assert all(isinstance(v, int) for contour in prediction["masks"] for point in contour for v in point)


def test_top_left_xywh_and_xyxy_exemplar_boxes_are_the_same_box(client):
    xywh = {"type": "visual", "boxes": [{"x": 40, "y": 30, "width": 120, "height": 90}], "box_labels": [1]}
    xyxy = {"type": "visual", "boxes": [{"x0": 40, "y0": 30, "x1": 160, "y1": 120}], "box_labels": [True]}
    answer = concept(client, [xywh, xyxy], output_prob_thresh=0.0, format="rle")
    first, second = answer["prompt_results"]
    assert first["echo"] == {"prompt_index": 0, "type": "visual", "text": None, "num_boxes": 1}
    assert rles(first["predictions"]) == rles(second["predictions"])
    assert rles(first["predictions"]) == native(client, "text", exemplar_boxes=[[40, 30, 160, 120]],
                                                confidence_threshold=0)


def test_a_prompts_own_threshold_overrides_the_requests(client):
    answer = concept(client, [{"text": "cat"}, {"text": "cat", "output_prob_thresh": 0.9}], output_prob_thresh=0.0)
    low, high = answer["prompt_results"]
    assert len(high["predictions"]) < len(low["predictions"])
    assert all(p["confidence"] >= 0.9 for p in high["predictions"])
    assert any(p["confidence"] < 0.9 for p in low["predictions"])


def test_cross_prompt_nms_removes_a_later_prompts_duplicates(client):
    prompts = [{"text": "cat"}, {"text": "cat"}]
    without = concept(client, prompts, output_prob_thresh=0.0)["prompt_results"]
    assert len(without[0]["predictions"]) == len(without[1]["predictions"]) > 0
    with_nms = concept(client, prompts, output_prob_thresh=0.0, nms_iou_threshold=0.5)["prompt_results"]
    # Identical masks (IoU 1) never both survive; on equal scores the earlier prompt's instance wins.
    assert with_nms[0]["predictions"] and with_nms[1]["predictions"] == []
    assert len(with_nms[0]["predictions"]) <= len(without[0]["predictions"])


def test_visual_points_give_the_native_best_of_three_mask(client):
    prompt = {"points": [{"x": 230, "y": 150, "positive": True}]}
    [prediction] = visual(client, [prompt], format="rle")["predictions"]
    [reference] = native(client, "points", points_x=[230], points_y=[150], labels=[1])
    assert prediction["masks"] == reference and 0 <= prediction["confidence"] <= 1


def test_a_visual_box_is_centre_xywh(client):
    prompt = {"box": {"x": 225, "y": 150, "width": 200, "height": 160}}
    [prediction] = visual(client, [prompt], format="rle", multimask_output=False)["predictions"]
    assert prediction["masks"] == native(client, "box", boxes=[[125, 70, 325, 230]])[0]


def test_visual_prompts_may_come_nested_flat_or_single_and_answer_one_prediction_each(client):
    prompts = [{"points": [{"x": 230, "y": 150, "positive": True}]}, {"box": {"x": 100, "y": 80, "width": 60,
                                                                              "height": 40}}]
    nested = visual(client, {"prompts": prompts}, format="rle")["predictions"]
    flat = visual(client, prompts, format="rle")["predictions"]
    single = visual(client, prompts[0], format="rle")["predictions"]
    assert len(nested) == 2 and rles(nested) == rles(flat) and rles(single) == rles(nested[:1])


def test_embed_image_then_an_image_less_request_reuses_the_embedding(client, engine):
    embedded = client.post("/sam3/embed_image", json={"image": {"type": "base64", "value": OTHER_B64},
                                                      "image_id": "other"}).json()
    assert embedded["image_id"] == "other"
    runs = engine.backbone_runs
    reused = visual(client, [{"points": [{"x": 50, "y": 60, "positive": True}]}], image=None, image_id="other",
                    format="rle")
    assert engine.backbone_runs == runs  # no second encode
    [reference] = native(client, "points", b64=OTHER_B64, points_x=[50], points_y=[60], labels=[1])
    assert reused["predictions"][0]["masks"] == reference


def test_without_an_image_id_embed_names_the_image_by_its_pixel_hash(client):
    first = client.post("/sam3/embed_image", json={"image": IMAGE}).json()["image_id"]
    again = client.post("/sam3/embed_image", json={"image": {"type": "base64",
                                                             "value": "data:image/png;base64," + PHOTO_B64}})
    assert len(first) == 32 and again.json()["image_id"] == first


def test_an_image_sent_with_a_known_image_id_is_used_and_the_id_follows_it(client):
    """The id never overrides pixels the client actually sent: the id is only a name."""
    client.post("/sam3/embed_image", json={"image": IMAGE, "image_id": "moving"})
    point = [{"points": [{"x": 50, "y": 60, "positive": True}]}]
    sent = visual(client, point, image={"type": "base64", "value": OTHER_B64}, image_id="moving", format="rle")
    [reference] = native(client, "points", b64=OTHER_B64, points_x=[50], points_y=[60], labels=[1])
    assert sent["predictions"][0]["masks"] == reference
    assert visual(client, point, image=None, image_id="moving", format="rle")["predictions"] == sent["predictions"]


def test_an_unknown_image_id_without_an_image_is_404(client):
    response = client.post("/sam3/visual_segment", json={"image_id": "never-sent",
                                                         "prompts": [{"points": [{"x": 1, "y": 1, "positive": True}]}]})
    assert response.status_code == 404 and "never-sent" in response.json()["message"]


@pytest.mark.parametrize("kind", ["numpy", "numpy_object", "file", "multipart", "pil"])
def test_image_types_other_than_base64_and_url_are_refused(client, kind):
    value = "/etc/passwd" if kind == "file" else base64.b64encode(b"\x80\x04pickle").decode()
    for path in ("/sam3/concept_segment", "/sam3/visual_segment", "/sam3/embed_image"):
        response = client.post(path, json={"image": {"type": kind, "value": value}, "prompts": [{"text": "cat"}]})
        assert response.status_code == 400 and set(response.json()) == {"message"}
        assert f"'{kind}' is not accepted" in response.json()["message"]


def test_url_images_obey_the_ssrf_rules(client, engine, server):
    fetched = client.post("/sam3/embed_image", json={"image": {"type": "url", "value": f"{server}/chelsea.png"}})
    assert fetched.status_code == 200, fetched.text  # 127.0.0.1 is allowed for this app only (SAM3_URL_ALLOW_HOSTS)
    same_pixels = client.post("/sam3/embed_image", json={"image": IMAGE}).json()
    assert fetched.json()["image_id"] == same_pixels["image_id"], "the URL's pixels are the sample photo's"
    strict = client_over(engine)
    try:
        for url in (f"{server}/chelsea.png", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
            response = strict.post("/sam3/embed_image", json={"image": {"type": "url", "value": url}})
            assert response.status_code == 400 and set(response.json()) == {"message"}, response.text
    finally:
        strict.__exit__(None, None, None)


@pytest.mark.parametrize("path, body, status, says", [
    ("/sam3/concept_segment", {"image": IMAGE, "prompts": []}, 422, "prompts"),
    ("/sam3/concept_segment", {"image": IMAGE, "prompts": [{"text": "cat"}] * 17}, 422, "16"),
    ("/sam3/concept_segment", {"image": IMAGE, "prompts": [{"type": "visual"}]}, 422, "visual prompt needs"),
    ("/sam3/concept_segment", {"image": IMAGE, "prompts": [{"text": " "}]}, 422, "neither text nor boxes"),
    ("/sam3/concept_segment", {"image": IMAGE, "prompts": [{"text": "a"}], "format": "binary"}, 422, "format"),
    ("/sam3/concept_segment", {"image": IMAGE, "prompts": [{"boxes": [{"x": 0, "y": 0, "width": 9, "height": 9}],
                                                            "box_labels": [1, 0]}]}, 422, "one label per box"),
    ("/sam3/concept_segment", {"image": IMAGE, "prompts": [{"text": "a"}], "nms_iou_threshold": 2}, 422, "nms"),
    ("/sam3/concept_segment", {"prompts": [{"text": "a"}]}, 400, "image is required"),
    ("/sam3/visual_segment", {"image": IMAGE}, 422, "prompts is empty"),
    ("/sam3/visual_segment", {"image": IMAGE, "prompts": [{}]}, 422, "neither a box nor points"),
    ("/sam3/visual_segment", {"image": IMAGE, "prompts": [{"points": [{"x": 900, "y": 1, "positive": True}]}]},
     422, "outside"),
    ("/sam3/embed_image", {"image": {"type": "base64", "value": "@@@"}}, 400, "base64"),
    ("/sam3/embed_image", {"image": {"type": "url"}}, 400, "non-empty string"),
])
def test_bad_requests_get_a_4xx_message_that_says_what_is_wrong(client, path, body, status, says):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"message"} and says in response.json()["message"]


def test_every_documented_optional_field_is_accepted(client):
    concept(client, [{"type": "text", "text": "cat"}], model_id="sam3/sam3_final", image_id="doc",
            output_prob_thresh=0.5, nms_iou_threshold=0.5, format="rle", source="sdk", api_key=None)
    visual(client, [{"points": [{"x": 5, "y": 5, "positive": False}]}], image_id="doc", format="json",
           sam2_version_id="hiera_large", multimask_output=True, save_logits_to_cache=False,
           load_logits_from_cache=False)


def test_malformed_json_wrong_methods_and_unknown_sam3_paths_answer_the_message_envelope(client):
    cases = [client.post("/sam3/concept_segment", content=b"{not json", headers={"Content-Type": "application/json"}),
             client.get("/sam3/concept_segment"), client.post("/sam3/no_such_route", json={})]
    assert [response.status_code for response in cases] == [422, 405, 404]
    assert all(set(response.json()) == {"message"} for response in cases)
