"""The one reader of `app.state`: the app's Services object (api/services.py), stored there by create_app.

Apart from services.py, which imports much of the app, so that errors.py and the middleware can read the
services without an import cycle. Routes, sockets and adapters use the aliases of api/deps.py instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .services import Services


def services_of(app) -> "Services":
    return app.state.services
