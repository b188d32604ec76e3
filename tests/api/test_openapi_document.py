"""/openapi.json is a whole, valid OpenAPI 3.1 document: every $ref resolves and openapi-spec-validator accepts it.

Client generators and gateways follow every reference, so one that points nowhere breaks the document for
all of them (ReDoc shows "Invalid reference token" instead of the API).
"""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from pydantic import BaseModel, Field

from sam3_api.api.openapi import json_body_schema
from sam3_api.main import create_app
from tests.conftest import dev_settings


@pytest.fixture(scope="module", params=[[], ["a-key"]], ids=["keys-off", "keys-on"])
def document(request) -> dict:
    """The served document (no lifespan: building it needs no model); with keys on it adds a security scheme."""
    response = TestClient(create_app(dev_settings(api_keys=request.param))).get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def references(node, where: str = "#"):
    """Every ($ref, location) pair in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value, where
            else:
                yield from references(value, f"{where}/{key.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from references(item, f"{where}/{index}")


def resolve(document: dict, ref: str):
    """The node a local JSON pointer ("#/components/schemas/X") names; KeyError / IndexError if none."""
    assert ref.startswith("#/"), f"{ref}: only references inside the document are expected"
    node = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def test_every_reference_in_the_document_resolves(document):
    found = list(references(document))
    assert len(found) > 50  # the walk really sees the document's references
    broken = []
    for ref, where in found:
        try:
            resolve(document, ref)
        except (KeyError, IndexError, ValueError):
            broken.append(f"{where}: {ref}")
    assert broken == []


def test_the_document_is_valid_openapi(document):
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises OpenAPIValidationError, naming the offending part


def test_the_validator_rejects_a_broken_document(document):
    """The check above is not vacuous: a parameter without `in` is refused."""
    broken = copy.deepcopy(document)
    broken["paths"]["/health"]["get"]["parameters"] = [{"name": "verbose", "schema": {"type": "string"}}]
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


class Inner(BaseModel):
    size: int = Field(ge=1)


class Outer(BaseModel):
    items: list[Inner]
    first: Inner = Field(description="The first one")


class Loop(BaseModel):
    children: list[Loop] = []


def test_a_hand_declared_body_schema_has_its_nested_models_in_place():
    schema = json_body_schema(Outer)
    assert "$defs" not in schema and list(references(schema)) == []
    assert schema["properties"]["items"]["items"]["properties"]["size"] == {"minimum": 1, "title": "Size",
                                                                          "type": "integer"}
    assert schema["properties"]["first"]["description"] == "The first one"
    assert schema["properties"]["first"]["required"] == ["size"]


def test_a_model_that_contains_itself_is_refused_rather_than_written_out_forever():
    with pytest.raises(ValueError, match="contains itself"):
        json_body_schema(Loop)
