"""Drop-in adapters: clients of other SAM 3 services work against this server by changing one base URL.

One module per foreign API; each only translates (its request -> the engine, media and input code the
native routes use -> its answer) and lists its routes and deliberate differences in its docstring:
  sam3_service.py        seed 001, "sam3-service" (Cloud Run): POST /segment, GET /healthz
  annotation_service.py  seed 002, the annotation service: POST /predict, /predict_video, /predict_video_text
  runpod.py              seed 003, a Runpod serverless worker: runsync, run, status, cancel, health (+ /v2/{id}/)
  roboflow.py            seed 004, Roboflow's hosted API: POST /sam3/{concept_segment,visual_segment,embed_image}
  label_studio/          a Label Studio ML backend under /label-studio: /health, /setup, /predict, /webhook, /train
Each registers a Surface (api/errors.py) so its errors, 413s and 401s come in its own envelope.
Nothing but main.py imports this package.
"""

from __future__ import annotations

from fastapi import FastAPI

from ..api.errors import register_surface
from ..api.services import Services
from . import annotation_service, label_studio, roboflow, runpod, sam3_service

ADAPTERS = (sam3_service, annotation_service, runpod, roboflow, label_studio)


def install_compat(app: FastAPI, services: Services) -> None:
    """Mount every adapter's router and register its error envelope; adapter state joins the services."""
    roboflow.install_state(services)
    runpod.install_state(services)
    label_studio.install_state(services)
    for adapter in ADAPTERS:
        register_surface(app, adapter.SURFACE)
        app.include_router(adapter.router)
