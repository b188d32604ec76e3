"""Pieces of /openapi.json that routes declare by hand (openapi_extra), built so the document stays whole."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

DEFS = "#/$defs/"


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its nested models written out in place, for an `openapi_extra` request body.

    Pydantic puts nested models in a `$defs` of the schema and points at them with "#/$defs/Name", but in an
    OpenAPI document such a pointer starts at the document's root, which has no `$defs`; and nothing adds
    them to components/schemas, since FastAPI only collects the models of declared parameters. A body read
    by hand (JSON or multipart on one route) is documented this way, so its schema must stand on its own.
    """
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any, inside: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [resolve(item, inside) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if not (isinstance(ref, str) and ref.startswith(DEFS)):
            return {key: resolve(value, inside) for key, value in node.items()}
        name = ref.removeprefix(DEFS)
        if name in inside:
            raise ValueError(f"{model.__name__}: {name} contains itself and cannot be written out in place")
        siblings = {key: value for key, value in node.items() if key != "$ref"}  # e.g. a field's description
        return {**resolve(definitions[name], inside | {name}), **resolve(siblings, inside)}

    return resolve(schema, frozenset())
