"""Entry point: `python app.py` serves on HOST:PORT; `uvicorn app:app` works too."""

import logging

import uvicorn

from sam3_api.config import Settings
from sam3_api.main import create_app

settings = Settings()
logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(settings)

if __name__ == "__main__":
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower())
