"""Entry point: `python app.py` serves on HOST:PORT; `uvicorn app:app` works too."""

from sam3_api.config import Settings
from sam3_api.logs import configure_logging
from sam3_api.main import create_app
from sam3_api.serve import serve

settings = Settings()
configure_logging(settings.log_level, settings.log_format)
app = create_app(settings)

if __name__ == "__main__":
    serve(app, settings)
