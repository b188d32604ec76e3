"""An in-process app over the real dev-tiny engine (TestClient runs the lifespan)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sam3_api.main import create_app
from tests.conftest import dev_settings


def ready_client(**overrides) -> TestClient:
    """Enter a TestClient (lifespan started) and wait until the engine has loaded."""
    app = create_app(dev_settings(**overrides))
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    status = app.state.services.engine.wait_ready(timeout=300)
    assert status.ready, status.error
    return client


@pytest.fixture(scope="module")
def client():
    client = ready_client(url_allow_hosts=["127.0.0.1"], max_upload_bytes=8 * 1024**2)
    yield client
    client.__exit__(None, None, None)


def client_over(engine, **overrides) -> TestClient:
    """An entered TestClient of an app with its own settings over an already loaded engine (no second load).

    The app and the engine then share the app's settings; create_app refuses overrides of what the engine
    reads itself (queue, cache, prompt limits: engine.SETTINGS_READ), which would drift from the engine's.
    """
    client = TestClient(create_app(dev_settings(**overrides), engine=engine), raise_server_exceptions=False)
    client.__enter__()
    return client
