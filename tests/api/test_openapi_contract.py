"""The contract pass (api/openapi.py, api/openapi_forms.py) declares what routes do not write by hand.

Links name real operations and their real parameters; every surface's errors are declared in its own
envelope (Label Studio's too); forms hand-read by their routes are described from the models that validate
them; a list a form requires needs an item (an empty list sends no field).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sam3_api.main import create_app
from tests.conftest import dev_settings


@pytest.fixture(scope="module")
def document() -> dict:
    return TestClient(create_app(dev_settings())).get("/openapi.json").json()


def operations(document: dict) -> dict[str, dict]:
    return {operation["operationId"]: operation for methods in document["paths"].values()
            for operation in methods.values()}


def body_of(document: dict, path: str, media_type: str = "application/json") -> dict:
    """The request body schema of POST `path` in `media_type`, its $ref (if any) resolved."""
    schema = document["paths"][path]["post"]["requestBody"]["content"][media_type]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def form_of(document: dict, path: str) -> dict:
    return body_of(document, path, "multipart/form-data")


def test_every_link_names_an_operation_and_the_parameters_it_takes(document):
    by_id = operations(document)
    links = {(source, name): link for source, operation in by_id.items()
             for response in operation["responses"].values() for name, link in response.get("links", {}).items()}
    assert {source for source, _ in links} >= {"create_video_job", "upload_video", "create_batch_job",
                                               "runpod_run_post", "runpod_run_post_bare"}
    for (source, name), link in links.items():
        target = by_id[link["operationId"]]
        taken = {parameter["name"] for parameter in target.get("parameters", []) if parameter["in"] == "path"}
        assert set(link["parameters"]) == taken, (source, name)


def test_label_studio_errors_are_declared_in_its_own_envelope(document):
    predict = document["paths"]["/label-studio/predict"]["post"]
    answer = predict["responses"]["422"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/LabelStudioError"}
    assert answer["example"]["status"] == "error" and "error" in answer["example"]
    assert "400" in document["paths"]["/label-studio/train"]["post"]["responses"]  # it does not train
    body = predict["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["tasks", "label_config"]


def test_the_batch_form_is_described_from_its_model(document):
    form = form_of(document, "/batch/jobs")
    assert form["properties"]["max_masks"]["type"] == "integer" and form["properties"]["mode"]["const"] == "auto"
    assert {"oneOf": [{"required": ["images"]}, {"required": ["archive"]}]} in form["allOf"]
    assert {"oneOf": [{"required": ["texts"]}, {"required": ["mode"]}, {"required": ["annotations"]}]} in form["allOf"]


def test_a_list_a_form_requires_needs_an_item_and_an_optional_one_does_not(document):
    assert form_of(document, "/segment")["properties"]["prompts"]["minItems"] == 1
    points = form_of(document, "/segment/points")["properties"]
    assert points["points_x"]["minItems"] == 1 and "minItems" not in points["labels"]


def test_operations_with_a_body_declare_the_request_id_header(document):
    for operation_id in ("create_video_job", "segment_box_base64", "create_batch_job"):
        names = [parameter["name"] for parameter in operations(document)[operation_id]["parameters"]]
        assert names.count("X-Request-ID") == 1, operation_id


def test_a_one_of_member_is_not_met_by_a_null(document):
    """{"image_urls": null, "image_dir": "set"} is the image_dir variant: the server reads a null as no value."""
    groups = [part["oneOf"] for part in body_of(document, "/batch/jobs")["allOf"]]
    assert {"required": ["image_urls"], "properties": {"image_urls": {"type": "array"}}} in groups[1]
    assert {"required": ["image_dir"], "properties": {"image_dir": {"type": "string"}}} in groups[1]
    form = form_of(document, "/batch/jobs")  # a form has no null: its members stay as they were
    assert {"oneOf": [{"required": ["images"]}, {"required": ["archive"]}]} in form["allOf"]


def test_forms_whose_model_forbids_other_fields_say_so(document):
    for path in ("/video/jobs", "/video/uploads", "/batch/jobs"):
        assert form_of(document, path)["additionalProperties"] is False, path


def _array_of(field: dict) -> dict:
    return next(branch for branch in (field, *field.get("anyOf", ())) if branch.get("type") == "array")


def test_list_caps_that_are_settings_are_stated_with_the_running_servers_values():
    settings = dev_settings(max_prompts=7, video_max_objects=3, batch_max_images=5)
    capped = TestClient(create_app(settings)).get("/openapi.json").json()
    assert _array_of(body_of(capped, "/segment/box/base64")["properties"]["boxes"])["maxItems"] == 7
    video_object = _array_of(body_of(capped, "/video/jobs")["properties"]["objects"])
    assert video_object["maxItems"] == 3 and _array_of(video_object["items"]["properties"]["points"])["maxItems"] == 7
    assert _array_of(body_of(capped, "/batch/jobs")["properties"]["image_urls"])["maxItems"] == 5
    assert "x-max-items-setting" not in str(capped)  # every mark became a maxItems


def test_the_box_cap_in_the_document_is_the_one_the_server_enforces():
    import base64

    from tests.api.conftest import ready_client
    from tests.conftest import png_bytes, random_image

    client = ready_client(max_prompts=2)
    try:
        box_body = body_of(client.get("/openapi.json").json(), "/segment/box/base64")
        cap = _array_of(box_body["properties"]["boxes"])["maxItems"]
        image = base64.b64encode(png_bytes(random_image(32, 32))).decode()
        answers = [client.post("/segment/box/base64", json={"image_base64": image, "boxes": [[1, 1, 20, 20]] * count,
                                                            "output_format": "rle"}) for count in (cap, cap + 1)]
    finally:
        client.__exit__(None, None, None)
    assert cap == 2 and answers[0].status_code == 200 and len(answers[0].json()["masks"]) == 2
    assert answers[1].status_code == 422 and "limit is 2" in answers[1].json()["detail"], answers[1].text
