"""Entry point: `python app.py` serves on HOST:PORT; `uvicorn app:app` works too."""

from sam3_api.config import Settings
from sam3_api.logs import configure_logging
from sam3_api.main import create_app
from sam3_api.serve import serve
from sam3_api.writable_dirs import require_writable_dirs

settings = Settings()
configure_logging(settings.log_level, settings.log_format)
require_writable_dirs(settings)  # before create_app() creates its job directories
app = create_app(settings)

if __name__ == "__main__":
    serve(app, settings)
