"""Fixtures and helpers of the /ws/video tests: an app with its own data directory, uploaded clips, a local
HTTP server holding the clip, and small functions that send a message and read its answer."""

from __future__ import annotations

import contextlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from sam3_api.main import create_app
from tests.conftest import dev_settings
from tests.videos import video_bytes

WIDTH, HEIGHT, FRAMES = 160, 120, 24
LONG_FRAMES = 96


def app_client(tmp_path_factory, **overrides) -> TestClient:
    """An entered TestClient (lifespan started, engine ready) with a data directory of its own."""
    settings = dev_settings(data_dir=tmp_path_factory.mktemp("ws-video-data"), url_allow_hosts=["127.0.0.1"],
                            **overrides)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.__enter__()
    assert client.app.state.services.engine.wait_ready(timeout=300).ready
    return client


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    client = app_client(tmp_path_factory, video_max_objects=4)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def clip24() -> bytes:
    return video_bytes(frames=FRAMES)


@pytest.fixture(scope="module")
def clip_id(client, clip24) -> str:
    return upload(client, clip24)["video_id"]


@pytest.fixture(scope="module")
def long_clip_id(client) -> str:
    return upload(client, video_bytes(frames=LONG_FRAMES))["video_id"]


@pytest.fixture(scope="module")
def clip_server(tmp_path_factory, clip24):
    """http://127.0.0.1:PORT/clip24.mp4 (the apps of these tests allow 127.0.0.1 in URLs)."""
    folder = tmp_path_factory.mktemp("clip-server")
    (folder / "clip24.mp4").write_bytes(clip24)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def upload(client, video: bytes, **fields) -> dict:
    response = client.post("/video/uploads", files={"video": ("clip.mp4", video, "video/mp4")},
                           data={k: str(v) for k, v in fields.items()})
    assert response.status_code == 201, response.text
    return response.json()


@contextlib.contextmanager
def session(client, path: str = "/ws/video"):
    """An open /ws/video socket and its session_created event."""
    with client.websocket_connect(path) as ws:
        created = ws.receive_json()
        assert created["type"] == "session_created", created
        yield ws, created


def opened(ws, video_id: str) -> dict:
    ws.send_json({"type": "open", "video_id": video_id})
    event = ws.receive_json()
    assert event["type"] == "video_opened", event
    return event


def click(ws, frame: int, x: float, y: float, label: int = 1, **extra) -> dict:
    ws.send_json({"type": "click", "frame": frame, "x": x, "y": y, "label": label, **extra})
    return ws.receive_json()


def receive_until(ws, kind: str) -> list[dict]:
    """Events up to and including the first of `kind`."""
    events = []
    while not events or events[-1]["type"] != kind:
        events.append(ws.receive_json())
    return events


def propagate(ws, **options) -> tuple[dict, list[dict], dict]:
    """(propagation_started, frame_results, propagation_done)."""
    ws.send_json({"type": "propagate", **options})
    events = receive_until(ws, "propagation_done")
    assert events[0]["type"] == "propagation_started", events[0]
    return events[0], [e for e in events if e["type"] == "frame_result"], events[-1]


def assert_still_open(ws) -> None:
    ws.send_json({"type": "ping"})
    assert ws.receive_json() == {"type": "pong"}


def error_of(ws, message) -> dict:
    ws.send_text(message) if isinstance(message, str) else ws.send_json(message)
    event = ws.receive_json()
    assert event["type"] == "error", event
    return event
