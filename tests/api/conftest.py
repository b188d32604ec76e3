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
    status = app.state.engine.wait_ready(timeout=300)
    assert status.ready, status.error
    return client


@pytest.fixture(scope="module")
def client():
    client = ready_client(url_allow_hosts=["127.0.0.1"], max_upload_bytes=8 * 1024**2)
    yield client
    client.__exit__(None, None, None)
