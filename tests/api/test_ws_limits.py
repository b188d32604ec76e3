"""WebSocket /ws/realtime limits: the session count, the idle TTL, the pixel limit, and a model that failed to load."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sam3_api.main import create_app
from tests.api.conftest import ready_client
from tests.api.test_ws_protocol import CAT_DATA_URL, assert_still_open, session
from tests.conftest import dev_settings

pytestmark = pytest.mark.timeout(120)


def test_init_while_the_model_failed_to_load_is_an_error_event(tmp_path):
    app = create_app(dev_settings(model=str(tmp_path / "missing-checkpoint")))
    with TestClient(app) as client:
        assert app.state.services.engine.wait_ready(timeout=120).state == "failed"
        with session(client) as ws:
            ws.send_json({"type": "init", "image": CAT_DATA_URL})
            event = ws.receive_json()
            assert event["type"] == "error" and event["code"] == "model_not_ready"
            assert_still_open(ws)


@pytest.fixture(scope="module")
def limited():
    client = ready_client(ws_max_sessions=1, ws_idle_ttl_s=1.5, max_image_pixels=100 * 100)
    yield client
    client.__exit__(None, None, None)


def test_a_socket_beyond_the_session_limit_gets_an_error_and_close_1013(limited):
    with session(limited) as first:
        with limited.websocket_connect("/ws/realtime") as second:
            event = second.receive_json()
            assert event["type"] == "error" and event["code"] == "too_many_sessions"
            with pytest.raises(WebSocketDisconnect) as closed:
                second.receive_json()
            assert closed.value.code == 1013
        assert_still_open(first)
    with session(limited) as third:  # the first session was freed when its socket closed
        assert_still_open(third)


def test_an_idle_session_is_closed(limited):
    with session(limited) as ws:
        assert ws.receive_json() == {"type": "session_closed", "reason": "idle"}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000


def test_an_image_over_the_pixel_limit_is_an_error_event(limited):
    with session(limited) as ws:
        ws.send_json({"type": "init", "image": CAT_DATA_URL})
        event = ws.receive_json()
        assert event["type"] == "error" and event["code"] == "image_too_large"
        assert_still_open(ws)
