"""Pieces of /openapi.json that routes declare by hand (openapi_extra), built so the document stays whole."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .openapi_limits import apply_setting_caps, require_values
from .state import services_of

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


# ---- The contract pass: one place that writes operation ids, error responses and links for every route ----

ERROR_SCHEMAS = {  # each surface's error envelope, as its renderer (api/errors.py, compat/common.py) writes it
    "native": ("ErrorResponse", {"type": "object", "required": ["detail", "status_code"], "properties": {
        "detail": {"type": "string"}, "status_code": {"type": "integer"},
        "code": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}),
    "sam3-service": ("DetailError", {"type": "object", "required": ["detail"],
                                     "properties": {"detail": {"type": "string"}}}),
    "runpod": ("RunpodError", {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}),
    "roboflow": ("RoboflowError", {"type": "object", "required": ["message"],
                                   "properties": {"message": {"type": "string"}}}),
}
ERROR_SCHEMAS["annotation-service"] = ERROR_SCHEMAS["sam3-service"]
ERROR_SCHEMAS["label-studio"] = ("LabelStudioError", {"type": "object", "required": ["status", "error"], "properties": {
    "status": {"const": "error"}, "error": {"type": "string"}, "code": {"type": "string"}}})
STATUS_TEXT = {400: ("The request was understood but cannot be served as sent", "invalid_request"),
               401: ("A valid API key is required", "unauthorized"),
               404: ("No such resource (or it belongs to another API key)", "not_found"),
               409: ("The resource is not in a state that allows this", "conflict"),
               413: ("The body is over the server's size limit", "request_too_large"),
               422: ("The body or a parameter does not match the schema", "validation_error"),
               429: ("Too many requests: wait Retry-After seconds", "rate_limited"),
               503: ("The model is not ready, or the queue is full: retry later", "unavailable")}
OPERATION_IDS = {  # "METHOD path" -> a name generated clients can use as a method name
    "GET /": "root_health", "GET /health": "health", "GET /health/live": "live", "GET /health/ready": "ready",
    "GET /metrics": "metrics",
    "GET /video/jobs": "list_video_jobs", "POST /video/jobs": "create_video_job",
    "GET /video/jobs/{job_id}": "get_video_job", "DELETE /video/jobs/{job_id}": "delete_video_job",
    "GET /video/jobs/{job_id}/frames": "get_video_job_frames", "GET /video/jobs/{job_id}/events": "get_video_job_events",
    "POST /video/jobs/{job_id}/cancel": "cancel_video_job", "GET /video/jobs/{job_id}/video.mp4": "get_video_job_video",
    "POST /video/uploads": "upload_video", "GET /video/sources/{video_id}": "get_video_source",
    "GET /video/sources/{video_id}/frames/{frame}.jpg": "get_video_source_frame",
    "DELETE /video/uploads/{video_id}": "delete_video_upload",
    "POST /segment": "sam3_service_segment", "GET /healthz": "sam3_service_healthz",
    "POST /predict": "annotation_predict", "POST /predict_video": "annotation_predict_video",
    "POST /predict_video_text": "annotation_predict_video_text",
    "POST /sam3/concept_segment": "roboflow_concept_segment", "POST /sam3/visual_segment": "roboflow_visual_segment",
    "POST /sam3/embed_image": "roboflow_embed_image",
    "GET /batch/jobs": "list_batch_jobs", "POST /batch/jobs": "create_batch_job",
    "GET /batch/jobs/{job_id}": "get_batch_job", "DELETE /batch/jobs/{job_id}": "delete_batch_job",
    "GET /batch/jobs/{job_id}/results": "get_batch_job_results",
    "GET /batch/jobs/{job_id}/events": "get_batch_job_events",
    "POST /batch/jobs/{job_id}/cancel": "cancel_batch_job", "GET /batch/jobs/{job_id}/export": "export_batch_job",
}
JOB_ID, VIDEO_ID, RUNPOD_ID = ({name: f"$response.body#/{field}"} for name, field in
                               (("job_id", "job_id"), ("video_id", "video_id"), ("job_id", "id")))
ENDPOINT = {"endpoint_id": "$request.path.endpoint_id"}
LINKS = {  # operation creating a resource -> (status, link parameters, operations taking them)
    "create_video_job": ("202", JOB_ID, ("get_video_job", "get_video_job_frames", "get_video_job_events",
                                         "get_video_job_video", "cancel_video_job", "delete_video_job")),
    "upload_video": ("201", VIDEO_ID, ("get_video_source", "delete_video_upload")),
    "create_batch_job": ("202", JOB_ID, ("get_batch_job", "get_batch_job_results", "get_batch_job_events",
                                         "cancel_batch_job", "export_batch_job", "delete_batch_job")),
    "runpod_run_post": ("200", {**RUNPOD_ID, **ENDPOINT}, ("runpod_status_get", "runpod_status_post",
                                                          "runpod_cancel_post")),
    "runpod_run_post_bare": ("200", RUNPOD_ID, ("runpod_status_get_bare", "runpod_status_post_bare",
                                                "runpod_cancel_post_bare")),
}
EXTRA_STATUSES = {  # statuses a route answers beyond what its shape implies
    "annotation_predict": {403},  # image_path while SAM3_IMAGE_ROOT is unset
    "roboflow_concept_segment": {404}, "roboflow_visual_segment": {404},  # an image_id not held
    "roboflow_embed_image": {404},
    "label_studio_train": {400},  # always: this backend does not train
}
REQUEST_ID = {  # asgi-correlation-id reads it on every route (api/operations.py); declared where work is sent
    "name": "X-Request-ID", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "Your id for this request (up to 128 of A-Z a-z 0-9 . _ : / + = -; another value is replaced "
                   "by a fresh id): the server logs it and answers it in X-Request-ID."}
ENGINE_TAGS = ("segmentation", "video", "interactive video", "drop-in")


def operation_id(route) -> str:
    """FastAPI's generate_unique_id_function: the table's readable id, else the endpoint's name."""
    for method in sorted(route.methods):
        if (name := OPERATION_IDS.get(f"{method} {route.path_format}")):
            return name
    if route.path_format.startswith("/label-studio/"):  # its /health must not clash with the native one
        return f"label_studio_{route.name}"
    return route.name


def install_contract(app) -> None:
    """Wrap app.openapi so the document gets every route's error statuses, in its surface's envelope, and links."""
    build_schema = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document_contract(app, build_schema())
        return app.openapi_schema

    app.openapi = openapi


def document_contract(app, schema: dict) -> dict:
    from .errors import surface_for  # here, not at import: errors.py is imported by much of the app
    from .openapi_forms import shape_forms

    settings = services_of(app).settings
    keys_on = bool(settings.api_keys)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path, operations in schema.get("paths", {}).items():
        surface = surface_for(app, path).name
        name, envelope = ERROR_SCHEMAS.get(surface, ERROR_SCHEMAS["native"])
        components[name] = envelope
        for operation in operations.values():
            statuses = _error_statuses(path, operation, keys_on)
            for status in statuses:
                operation["responses"][str(status)] = _error_response(app, path, status, name)
            _add_links(operation)
            if "requestBody" in operation:
                operation.setdefault("parameters", []).append(REQUEST_ID)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    shape_forms(schema)
    apply_setting_caps(schema, settings)
    require_values(schema)
    _drop_unused(components, schema)
    schema.setdefault("servers", [{"url": "/", "description": "This server"}])
    return schema


def _drop_unused(components: dict, schema: dict) -> None:
    """Form parameter models are written out into their forms (_flatten_forms): nothing points at them now."""
    import json

    for name in list(components):
        if f'"#/components/schemas/{name}"' not in json.dumps(schema):
            del components[name]


def _error_statuses(path: str, operation: dict, keys_on: bool) -> set[int]:
    statuses = {int(code) for code in operation["responses"] if code.isdigit() and int(code) >= 400}
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if "{" in path:
        statuses |= {404, 422}
    if "requestBody" in operation and any(operation.get("tags", [""])[0].startswith(tag) for tag in ENGINE_TAGS):
        statuses |= {503}
    statuses |= EXTRA_STATUSES.get(operation.get("operationId"), set()) | {429}
    if keys_on:
        statuses |= {401}
    return statuses


def _error_response(app, path: str, status: int, schema_name: str) -> dict:
    """The status's response: the surface's envelope, with an example its own renderer wrote."""
    import json

    from .errors import surface_for

    description, code = STATUS_TEXT.get(status, ("Error", "error"))
    example = json.loads(surface_for(app, path).render_error(status, description, code, None).body)
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema_name}"}, "example": example}}}


def _add_links(operation: dict) -> None:
    if operation.get("operationId") not in LINKS:
        return
    status, parameters, targets = LINKS[operation["operationId"]]
    response = operation["responses"].get(status)
    if response is not None:
        response["links"] = {target: {"operationId": target, "parameters": parameters} for target in targets}


