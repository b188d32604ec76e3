"""API keys (SAM3_API_KEYS) on every route, native and drop-in, over the real app and dev-tiny engine.

Routes added after the fact (a probe route, a mounted ASGI app, a WebSocket) stand in for the routes other
engineers are adding: they must be protected without a line of their own.
"""

from __future__ import annotations

import base64

import pytest
from fastapi import Request, WebSocket
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocketDisconnect

from tests.api.conftest import client_over
from tests.conftest import SAMPLES

KEYS = ["key-one", "key-two"]
PHOTO = (SAMPLES / "chelsea.png").read_bytes()
PHOTO_B64 = base64.b64encode(PHOTO).decode()
OPEN = ["/", "/health", "/healthz", "/docs", "/redoc", "/openapi.json", "/app/", "/app/app.js",
        "/docs/assets/swagger-ui-bundle.js", "/docs/assets/redoc.standalone.js"]


async def _mounted(scope, receive, send):
    await PlainTextResponse("mounted app")(scope, receive, send)


def _add_probes(app) -> None:
    """Routes registered after create_app, with no auth code of their own."""

    @app.get("/probe/whoami")
    async def whoami(request: Request):
        return {"api_key": request.state.api_key}

    @app.websocket("/probe/ws")
    async def probe_ws(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_json({"api_key": websocket.state.api_key})
        await websocket.close()

    app.mount("/probe-mounted", _mounted)


@pytest.fixture(scope="module")
def keyed(engine):
    client = client_over(engine, api_keys=KEYS)
    _add_probes(client.app)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def open_client(engine):
    client = client_over(engine)
    _add_probes(client.app)
    yield client
    client.__exit__(None, None, None)


def test_without_keys_every_route_is_open_and_request_state_api_key_is_none(open_client):
    assert open_client.get("/probe/whoami").json() == {"api_key": None}
    assert open_client.get("/probe/whoami", headers={"X-API-Key": "anything"}).json() == {"api_key": None}
    response = open_client.post("/segment/box", files={"image": ("c.png", PHOTO)}, data={"x1": 10, "y1": 10,
                                                                                         "x2": 200, "y2": 200})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [{"X-API-Key": "key-two"}, {"Authorization": "Bearer key-two"},
                                     {"Authorization": "key-two"},
                                     {"Authorization": "Basic " + base64.b64encode(b"anyone:key-two").decode()}],
                         ids=["x-api-key", "bearer", "bare", "basic-password"])
def test_each_way_of_sending_a_key_is_accepted_and_recorded_in_request_state(keyed, headers):
    assert keyed.get("/probe/whoami", headers=headers).json() == {"api_key": "key-two"}


def test_a_native_route_without_a_key_is_401_in_the_native_envelope(keyed):
    response = keyed.post("/segment/text", files={"image": ("c.png", PHOTO)}, data={"text": "cat"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["status_code"] == 401 and body["code"] == "unauthorized" and "X-API-Key" in body["detail"]


def test_a_wrong_key_is_401_and_says_the_key_is_not_valid(keyed):
    response = keyed.get("/probe/whoami", headers={"X-API-Key": "key-three"})
    assert response.status_code == 401 and "not valid" in response.json()["detail"]


@pytest.mark.parametrize("path", OPEN)
def test_probes_docs_and_the_page_answer_without_a_key(keyed, path):
    assert keyed.get(path).status_code == 200


def test_routes_and_apps_added_later_are_protected_without_code_of_their_own(keyed):
    assert keyed.get("/probe/whoami").status_code == 401
    assert keyed.get("/probe-mounted/anything").status_code == 401
    assert keyed.get("/probe-mounted/anything", headers={"X-API-Key": "key-one"}).text == "mounted app"
    assert keyed.get("/no-such-route").status_code == 401  # nothing about the server leaks without a key


def test_a_query_key_is_accepted_only_where_the_foreign_api_sends_it(keyed):
    assert keyed.get("/probe/whoami?api_key=key-one").status_code == 401
    body = {"image": {"type": "base64", "value": PHOTO_B64}}
    assert keyed.post("/sam3/embed_image?api_key=key-one", json=body).status_code == 200
    assert keyed.post("/sam3/embed_image", json={**body, "api_key": "key-one"}).status_code == 200


@pytest.mark.parametrize("path, request_kwargs, envelope", [
    ("/segment", {"files": {"image": ("c.png", PHOTO)}, "data": {"prompts": "cat"}}, {"detail"}),
    ("/predict", {"json": {"image_base64": PHOTO_B64, "texts": [{"text": "cat"}]}}, {"detail"}),
    ("/sam3/concept_segment", {"json": {"image": {"type": "base64", "value": PHOTO_B64},
                                        "prompts": [{"text": "cat"}]}}, {"message"}),
    ("/sam3/visual_segment", {"json": {"api_key": "key-three"}}, {"message"}),
    ("/sam3/embed_image", {"content": b"not json", "headers": {"Content-Type": "application/json"}}, {"message"}),
])
def test_a_refused_request_gets_its_own_services_envelope(keyed, path, request_kwargs, envelope):
    response = keyed.post(path, **request_kwargs)
    assert response.status_code == 401
    assert set(response.json()) == envelope and "API key" in next(iter(response.json().values()))


def test_the_key_in_a_json_body_is_read_through_the_body_size_limit(engine):
    client = client_over(engine, api_keys=KEYS, max_upload_bytes=1024)
    try:
        big = {"image": {"type": "base64", "value": "A" * 4 * 1024**2}, "api_key": "key-one"}
        response = client.post("/sam3/embed_image", json=big)
        assert response.status_code == 413 and "SAM3_MAX_UPLOAD_BYTES" in response.json()["message"]
    finally:
        client.__exit__(None, None, None)


def test_a_websocket_without_a_key_is_told_why_and_closed_with_1008(keyed):
    with keyed.websocket_connect("/ws/realtime") as socket:
        event = socket.receive_json()
        assert event["type"] == "error" and event["code"] == "unauthorized" and "?api_key=" in event["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1008


@pytest.mark.parametrize("how", ["query", "header"])
def test_a_websocket_with_a_key_in_the_query_or_a_header_is_served(keyed, how):
    url, headers = ("/ws/realtime?api_key=key-one", {}) if how == "query" else \
        ("/ws/realtime", {"X-API-Key": "key-one"})
    with keyed.websocket_connect(url, headers=headers) as socket:
        assert socket.receive_json()["type"] == "session_created"
    with keyed.websocket_connect("/probe/ws?api_key=key-two") as socket:
        assert socket.receive_json() == {"api_key": "key-two"}


def test_a_websocket_with_a_wrong_key_is_refused(keyed):
    with keyed.websocket_connect("/ws/realtime?api_key=nope") as socket:
        assert "not valid" in socket.receive_json()["message"]


def test_the_docs_offer_an_authorize_button_for_the_key_only_when_keys_are_on(keyed, open_client):
    schema = keyed.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schema["security"] == [{"APIKey": []}]
    assert "security" not in open_client.get("/openapi.json").json()


def test_open_paths_stay_open_behind_a_proxy_root_path(engine):
    from fastapi.testclient import TestClient

    from sam3_api.main import create_app
    from tests.conftest import dev_settings

    # As uvicorn --root-path does (ASGI): scope["path"] carries the prefix, scope["root_path"] names it.
    with TestClient(create_app(dev_settings(api_keys=KEYS), engine=engine), root_path="/sam3-api") as client:
        assert client.get("/sam3-api/health").status_code == 200
        assert client.get("/sam3-api/segment/text").status_code == 401
        refused = client.post("/sam3-api/sam3/embed_image", json={})
        assert refused.status_code == 401 and "message" in refused.json()  # the adapter's envelope
