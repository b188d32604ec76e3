"""Entry point: `python app.py` serves on HOST:PORT; `uvicorn app:app` works too."""

import logging

import uvicorn

from sam3_api.api.limits import body_limit_for
from sam3_api.config import Settings
from sam3_api.main import create_app

settings = Settings()
logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(settings)

if __name__ == "__main__":
    # WebSocket init frames carry a base64 image: allow as much as an HTTP body may carry.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                ws_max_size=body_limit_for(settings.max_upload_bytes))
