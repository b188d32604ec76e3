"""Drop-in Label Studio ML backend: the URL for Label Studio's "Connect model" is http://<host>:8000/label-studio.

Routes (as Label Studio 1.23's ML client, label_studio/ml/api_connector.py, and HumanSignal's
label_studio_ml/api.py call them; all under /label-studio):
  GET  /health, GET /    {"status": "UP", "model_state", "model_version"} at once, even while the model
                          works or loads (Label Studio allows 1 s); 503 "DOWN" only when loading failed.
  POST /setup            {"project", "schema", "hostname", "access_token"} -> {"model_version"} (3 s allowed);
                          keeps the access_token for the project's file reads; a hostname other than
                          SAM3_LABEL_STUDIO_URL is a 422 naming that setting.
  POST /predict          {"tasks", "label_config", "project", "params": {"context"}} -> {"results": [one
                          prediction per task, in task order], "model_version"}.
  POST /webhook          accepted (201); POST /train: 400, this backend does not train. GET /versions.
Pre-labelling (no context): every label of each <BrushLabels>/<PolygonLabels> (or, alone, <RectangleLabels>)
is a concept prompt (labeling.py); one region per instance with its score. Interactive (a context of
keypointlabels clicks and/or a rectanglelabels box): the one object there, in the click's label.
Tasks run in order while the images of the next SAM3_BATCH_PREFETCH tasks are fetched (predict.py); each
image's backbone runs once for all its labels. An unreadable image gives that task an empty prediction and a
log line. Brush masks are written by label-studio-sdk's converter (render.py). Errors: {"status": "error",
"error": "<message>"}. API keys (SAM3_API_KEYS) come as the password of Label Studio's "Basic auth" fields
(api/auth.py).
"""

from .routes import SURFACE, install_state, router

__all__ = ["SURFACE", "install_state", "router"]
