"""The routes Label Studio's ML client calls, under /label-studio (parse -> predict.py / segment.py -> render)."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from ...api.deps import ApiKeyDep, EngineDep, ServicesDep, SettingsDep
from ...api.errors import Surface
from ...api.services import Services
from ...errors import InvalidPrompt
from . import segment
from .labeling import EXAMPLE, parse_config
from .predict import PredictCall
from .task_images import SETTING, LabelStudioSource, label_studio_client

log = logging.getLogger(__name__)
PREFIX = "/label-studio"
NO_TRAINING = ("this backend does not train: SAM 3 segments by label name and by clicks as it is; turn off "
               "'Start model training on annotation submission' in the project's model settings")
router = APIRouter(prefix=PREFIX, tags=["drop-in: Label Studio ML backend"])
PREDICT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {  # what /predict reads
    "type": "object", "required": ["tasks", "label_config"], "properties": {
        "tasks": {"type": "array", "items": {},
                  "description": 'Label Studio tasks, e.g. [{"id": 1, "data": {"image": "/data/..."}}]'},
        "label_config": {"type": "string", "minLength": 1, "example": EXAMPLE,
                         "description": "The project's labeling config (XML with BrushLabels, PolygonLabels or "
                                        "RectangleLabels bound to an Image)"},
        "params": {"description": "Label Studio's params; params.context (or context) holds the editor's clicks"},
        "project": {"description": "The project's id"}}}}}}}


def error_envelope(status_code: int, message: str, code: str, headers: dict | None = None) -> JSONResponse:
    """The ML backend's error answer ({"status": "error", "error"}); Label Studio shows the HTTP status."""
    return JSONResponse({"status": "error", "error": message, "code": code}, status_code=status_code, headers=headers)


SURFACE = Surface("label-studio", error_envelope, paths=frozenset({PREFIX}), prefixes=(f"{PREFIX}/",))


class Tokens(OrderedDict):
    """(API key scope, project uid) -> the access_token /setup sent; the oldest go first beyond MAX."""

    MAX = 1024

    def remember(self, scope: tuple[str, str], token: str) -> None:
        self[scope] = token
        self.move_to_end(scope)
        while len(self) > self.MAX:
            self.popitem(last=False)


TOKENS = "label_studio_tokens"  # services.adapters key


def install_state(services: Services) -> None:
    services.adapters[TOKENS] = Tokens()


def _tokens(services: Services) -> Tokens:
    return services.adapters[TOKENS]


@router.get("/health", summary="Label Studio's health probe (answers at once, even while the model works)")
@router.get("/", include_in_schema=False)
async def health(engine: EngineDep):
    status = engine.status
    body = {"status": "UP" if status.state != "failed" else "DOWN", "model_state": status.state,
            "model_version": segment.model_version(engine), "v2": True}
    return JSONResponse(body, status_code=503 if status.state == "failed" else 200)


@router.post("/setup", summary="Label Studio connects a project: answers the model version")
async def setup(services: ServicesDep, api_key: ApiKeyDep, engine: EngineDep, settings: SettingsDep,
                body: dict = Body(...)):
    hostname = body.get("hostname")
    if hostname and settings.label_studio_url and _origin(hostname) != _origin(settings.label_studio_url):
        raise InvalidPrompt(f"Label Studio says it is at {hostname!r} but {SETTING} is {settings.label_studio_url!r}:"
                            f" set {SETTING} to Label Studio's address (or LABEL_STUDIO_HOST in Label Studio to "
                            "the same URL); files are only read from the configured one", field="hostname")
    token = body.get("access_token")
    if isinstance(token, str) and token:
        _tokens(services).remember(_scope(api_key, body.get("project")), token)
    return {"model_version": segment.model_version(engine)}


@router.post("/predict", openapi_extra=PREDICT_BODY,
             summary="Pre-label tasks by label name, or segment the object at the editor's clicks")
async def predict(services: ServicesDep, api_key: ApiKeyDep, engine: EngineDep, settings: SettingsDep,
                  body: dict = Body(...)):
    tasks = body.get("tasks")
    if not isinstance(tasks, list):
        raise InvalidPrompt("tasks must be a list of Label Studio tasks ({\"id\", \"data\": {\"image\": ...}})",
                            field="tasks")
    config = parse_config(body.get("label_config"), settings.label_studio_prompts)
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    context = params.get("context") or body.get("context") or {}
    clicks = context.get("result") if isinstance(context, dict) else None
    token = _tokens(services).get(_scope(api_key, body.get("project")))
    source = LabelStudioSource(settings.label_studio_url,
                               tuple(t for t in (token, settings.label_studio_api_key) if t))
    version = segment.model_version(engine)
    async with label_studio_client(settings) as client:
        call = PredictCall(engine, settings, config, source, client, version)
        results = await call.tasks(tasks, clicks or None)
    return {"results": results, "model_version": version}


@router.post("/webhook", status_code=201, summary="Label Studio's event webhook: accepted, nothing to do")
async def webhook(body: dict = Body(default={})):
    action = body.get("action") if isinstance(body, dict) else None
    return {"status": "accepted", "action": action, "training": NO_TRAINING if action == "START_TRAINING" else None}


@router.post("/train", summary="Training request: this backend does not train")
async def train():
    return error_envelope(400, NO_TRAINING, "training_not_supported")


@router.get("/versions", summary="The model versions this backend serves")
async def versions(engine: EngineDep):
    return {"versions": [segment.model_version(engine)], "message": ""}


def _origin(url: str) -> tuple:
    import httpx

    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        return (url,)
    return parsed.scheme, parsed.host, parsed.port


def _scope(api_key: str | None, project) -> tuple[str, str]:
    key = api_key or ""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest(), str(project)
