"""The multipart forms of /openapi.json, written as the server reads them (part of the contract pass).

A multipart form carries text: no nulls, lists of boxes and the job forms' lists and objects as JSON text, an
empty list as no field at all. FastAPI documents a form model the way it documents JSON; these passes rewrite
each form so a client generator and a fuzzer send what the server takes.
"""

from __future__ import annotations

from .openapi import json_body_schema
from .openapi_limits import objects_in

NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?"  # JSON's number grammar: no leading zeros
BOX = rf"\[{NUMBER}(,{NUMBER}){{3}}\]"
FORM_BOXES = {"type": "string", "pattern": rf"^\[{BOX}(,{BOX})*\]$",
              "description": "Boxes as JSON in the form field, e.g. [[10,20,200,180]]"}
TEXT = r'"[ -!#-\[\]-~]*[!#-\[\]-~][ -!#-\[\]-~]*"'  # printable ASCII but " and \, not only spaces
FORM_LISTS = {  # list and object fields of the job forms, which carry them as JSON text
    "texts": {"type": "string", "pattern": rf'^\[{TEXT}(,{TEXT})*\]$',
              "description": 'Concepts as JSON, e.g. ["person"]'},
    "objects": {"type": "string", "pattern": rf'^\[\{{"frame_index":(0|[1-9][0-9]{{0,3}}),"box":\[{NUMBER}(,{NUMBER}){{3}}\]\}}\]$',
                "description": 'Picked objects as JSON, e.g. [{"frame_index": 0, "box": [10, 20, 200, 180]}] '
                               '(points and labels work too, as in the JSON body)'},
    "annotations": {"type": "string", "pattern": r"^\{.*\}$", "description": "A COCO detection JSON, as text"},
}
HAND_READ_FORMS = {  # path -> (module, params model, one-of groups of its files): routes that read their form
    "/video/jobs": ("video_schemas", "VideoJobParams", ()),  # themselves, so FastAPI cannot describe it
    "/video/uploads": ("video_schemas", "VideoUploadParams", ()),
    "/batch/jobs": ("batch_schemas", "BatchJobParams", ({"required": ["images"]}, {"required": ["archive"]})),
}


def shape_forms(schema: dict) -> None:
    """Every multipart form of the document, as the server reads it."""
    components = schema.get("components", {}).get("schemas", {})
    _flatten_forms(components)
    _drop_form_nulls(components)
    _document_hand_read_forms(schema)
    _require_sent_lists(schema)
    _nest_required_groups(schema)


def _flatten_forms(components: dict) -> None:
    """A form model plus its file field (FastAPI: allOf [$ref Params] + {image}) as one object: generators
    such as openapi-python-client keep only the $ref of such an allOf and lose the file."""
    for name, body in components.items():
        if not name.startswith("Body_"):
            continue
        for part in body.pop("allOf", []):
            model = components[part["$ref"].rsplit("/", 1)[1]] if "$ref" in part else part
            body["properties"] = {**model.get("properties", {}), **body.get("properties", {})}
            body["required"] = [*model.get("required", []), *body.get("required", [])]
            groups = [*model.get("allOf", []), *({g: model[g]} for g in ("anyOf", "oneOf") if g in model)]
            if groups:
                body.setdefault("allOf", []).extend(groups)
        body["properties"] = {key: dict(value) for key, value in body.get("properties", {}).items()}
        for field in body["properties"].values():
            if field.get("contentMediaType") == "application/octet-stream":  # a file: 3.0's spelling too
                field["format"] = "binary"


def _drop_form_nulls(components: dict) -> None:
    """A multipart form cannot send null (a field is sent or left out): `X | None` fields are documented as X."""
    for body in [body for name, body in components.items() if name.startswith("Body_")]:
        for field in body.get("properties", {}).values():
            variants = field.get("anyOf", [])
            others = [v for v in variants if v.get("type") != "null"]
            if variants and len(others) == 1 and len(others) < len(variants):
                del field["anyOf"]
                field.update(others[0])
                if field.get("default", 0) is None:
                    del field["default"]
            if field.get("items", {}).get("type") == "array":  # a list of boxes travels as JSON text
                field.pop("items")
                field.pop("maxItems", None)
                field.update(FORM_BOXES)


def _document_hand_read_forms(schema: dict) -> None:
    """Routes that read their multipart fields by hand: describe them from the models that validate them."""
    from importlib import import_module

    for path, (module, model_name, file_groups) in HAND_READ_FORMS.items():
        operation = schema["paths"].get(path, {}).get("post")
        if operation is None:
            continue
        form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
        body = {"Body_form": json_body_schema(getattr(import_module(f".{module}", __package__), model_name))}
        _drop_form_nulls(body)
        fields = {name: FORM_LISTS.get(name, field) for name, field in body["Body_form"]["properties"].items()}
        files = {name: field for name, field in form["properties"].items() if _is_file(field)}
        form["properties"] = {**files, **fields}
        groups = body["Body_form"].get("allOf", []) + ([{"oneOf": list(file_groups)}] if file_groups else [])
        if groups:
            form["allOf"] = groups
        if body["Body_form"].get("additionalProperties") is False:  # the model forbids other fields (extra=forbid)
            form["additionalProperties"] = False


def _is_file(field: dict) -> bool:
    return field.get("format") == "binary" or field.get("items", {}).get("format") == "binary"


def _require_sent_lists(schema: dict) -> None:
    """A form sends an empty list as no field at all: a list the server requires needs one item at least."""
    for operation in [op for methods in schema.get("paths", {}).values() for op in methods.values()]:
        form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data", {}).get("schema", {})
        form = _resolve(schema, form)
        groups = [form.get("required", [])] + [part.get("required", []) for part in form.get("allOf", [])]
        for name in {name for group in groups for name in group}:
            field = form.get("properties", {}).get(name, {})
            if field.get("type") == "array":
                field["minItems"] = max(1, field.get("minItems", 0))


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref", "")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else node


def _nest_required_groups(schema: dict) -> None:
    """{"properties", "anyOf": [{"required": ...}]} -> the same anyOf inside allOf: it means the same, and
    client generators read a top-level anyOf as a union of untyped schemas (their body type becomes Any)."""
    for node in objects_in(schema):
        for group in ("anyOf", "oneOf"):
            if "properties" in node and all(set(part) == {"required"} for part in node.get(group, [{}])):
                node.setdefault("allOf", []).append({group: node.pop(group)})
