"""WebSocket /ws/realtime over the real dev-tiny engine: seed 000's flow, the extensions, every error event."""

from __future__ import annotations

import base64
import contextlib
import io
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pycocotools import mask as coco_mask
from starlette.websockets import WebSocketDisconnect

from sam3_api.errors import EngineBusy
from tests.conftest import SAMPLES, png_bytes, random_image

pytestmark = pytest.mark.timeout(120)

CAT_PNG = (SAMPLES / "chelsea.png").read_bytes()  # 451 x 300
CAT_DATA_URL = "data:image/png;base64," + base64.b64encode(CAT_PNG).decode()
WIDTH, HEIGHT = 451, 300


@contextlib.contextmanager
def session(client: TestClient):
    """An open /ws/realtime socket whose session_created event was already read."""
    with client.websocket_connect("/ws/realtime") as ws:
        created = ws.receive_json()
        assert created["type"] == "session_created" and created["session_id"]
        yield ws


def loaded(ws, image: str = CAT_DATA_URL, **extra) -> dict:
    ws.send_json({"type": "init", "image": image, **extra})
    event = ws.receive_json()
    assert event["type"] == "image_loaded", event
    return event


def assert_still_open(ws) -> None:
    ws.send_json({"type": "ping"})
    assert ws.receive_json() == {"type": "pong"}


def png_mask(event: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(event["mask"]))))


def click(ws, x: float, y: float, label: int = 1, **extra) -> tuple[dict, dict]:
    ws.send_json({"type": "click", "x": x, "y": y, "label": label, **extra})
    return ws.receive_json(), ws.receive_json()


def test_session_created_is_sent_right_after_accept(client):
    with client.websocket_connect("/ws/realtime") as ws:
        event = ws.receive_json()
    assert event["type"] == "session_created" and len(event["session_id"]) == 32 and event["idle_ttl_s"] > 0


def test_seed_000_flow_init_click_segment_reset_close(client):
    with session(client) as ws:
        image = loaded(ws)
        assert (image["width"], image["height"]) == (WIDTH, HEIGHT) and image["image_id"] and image["object_id"] == 1
        added, result = click(ws, 200, 150, 1)
        assert added == {"type": "point_added", "x": 200, "y": 150, "label": 1, "total_points": 1, "object_id": 1}
        assert result["type"] == "segmentation_result" and 0.0 <= result["score"] <= 1.0
        assert png_mask(result).shape == (HEIGHT, WIDTH) and result["num_points"] == 1
        assert result["latency_ms"] > 0 and result["image_id"] == image["image_id"] and result["object_id"] == 1
        ws.send_json({"type": "segment"})
        again = ws.receive_json()
        assert again["type"] == "segmentation_result" and again["mask"] == result["mask"]
        ws.send_json({"type": "reset"})
        assert ws.receive_json() == {"type": "points_cleared", "object_id": None, "current_object_id": 1}
        ws.send_json({"type": "close"})
        assert ws.receive_json() == {"type": "session_closed", "reason": "closed by client"}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000


def test_five_clicks_run_the_backbone_exactly_once(client):
    engine = client.app.state.services.engine
    fresh = "data:image/png;base64," + base64.b64encode(png_bytes(random_image(90, 120, seed=7))).decode()
    with session(client) as ws:
        before = engine.backbone_runs
        loaded(ws, fresh)
        for i in range(5):
            _, result = click(ws, 10 + 20 * i, 40, label=i % 2)
            assert result["type"] == "segmentation_result"
        assert engine.backbone_runs == before + 1


def test_a_negative_click_is_echoed_with_label_0(client):
    with session(client) as ws:
        loaded(ws)
        added, result = click(ws, 100, 100, 0)
        assert added["label"] == 0 and result["type"] == "segmentation_result"


def test_box_is_combined_with_the_objects_points(client):
    with session(client) as ws:
        loaded(ws)
        ws.send_json({"type": "box", "x1": 50, "y1": 40, "x2": 300, "y2": 250})
        assert ws.receive_json() == {"type": "box_added", "x1": 50, "y1": 40, "x2": 300, "y2": 250, "object_id": 1}
        box_only = ws.receive_json()
        assert box_only["type"] == "segmentation_result" and box_only["num_points"] == 0
        _, with_point = click(ws, 120, 100)
        assert with_point["num_points"] == 1 and png_mask(with_point).shape == (HEIGHT, WIDTH)


def test_text_prompt_returns_every_instance_with_masks_scores_and_boxes(client):
    with session(client) as ws:
        image = loaded(ws)
        ws.send_json({"type": "text", "text": "cat", "confidence_threshold": 0.0, "max_masks": 5})
        event = ws.receive_json()
    assert event["type"] == "text_result" and event["text"] == "cat" and event["image_id"] == image["image_id"]
    assert 1 <= event["num_masks"] <= 5 and len(event["masks"]) == len(event["scores"]) == len(event["boxes"])
    assert png_mask({"mask": event["masks"][0]}).shape == (HEIGHT, WIDTH) and event["latency_ms"] > 0


def test_new_objects_get_their_own_ids_and_results_name_them(client):
    with session(client) as ws:
        loaded(ws)
        _, first = click(ws, 100, 100)
        ws.send_json({"type": "new_object"})
        assert ws.receive_json() == {"type": "object_created", "object_id": 2}
        added, second = click(ws, 300, 200)
        assert added["object_id"] == 2 and added["total_points"] == 1 and second["object_id"] == 2
        added, again = click(ws, 110, 110, object_id=1)
        assert added["object_id"] == 1 and added["total_points"] == 2 and again["object_id"] == 1
        ws.send_json({"type": "segment", "object_id": 2})
        assert ws.receive_json()["object_id"] == 2


def test_reset_of_one_object_keeps_the_others(client):
    with session(client) as ws:
        loaded(ws)
        click(ws, 100, 100)
        ws.send_json({"type": "new_object"})
        ws.receive_json()
        click(ws, 300, 200)
        ws.send_json({"type": "reset", "object_id": 1})
        assert ws.receive_json() == {"type": "points_cleared", "object_id": 1, "current_object_id": 1}
        ws.send_json({"type": "segment", "object_id": 2})
        assert ws.receive_json()["num_points"] == 1


def test_undo_removes_the_last_point_then_the_box_and_resegments(client):
    with session(client) as ws:
        loaded(ws)
        ws.send_json({"type": "box", "x1": 10, "y1": 10, "x2": 200, "y2": 200})
        ws.receive_json(), ws.receive_json()
        click(ws, 50, 50)
        click(ws, 60, 60, 0)
        ws.send_json({"type": "undo"})
        removed = ws.receive_json()
        assert removed == {"type": "prompt_removed", "object_id": 1, "kind": "point", "total_points": 1,
                           "has_box": True}
        assert ws.receive_json()["num_points"] == 1
        ws.send_json({"type": "undo"})
        ws.receive_json(), ws.receive_json()
        ws.send_json({"type": "undo"})
        assert ws.receive_json()["kind"] == "box"
        ws.send_json({"type": "undo"})  # nothing left: an error, not a result
        event = ws.receive_json()
        assert event["type"] == "error" and event["code"] == "nothing_to_undo"
        assert_still_open(ws)


def test_rle_masks_decode_with_pycocotools_to_the_image_size(client):
    with session(client) as ws:
        loaded(ws, mask_format="rle")
        _, result = click(ws, 200, 150)
        assert result["mask_format"] == "rle"
        rle = {"size": result["mask"]["size"], "counts": result["mask"]["counts"].encode()}
        mask = coco_mask.decode(rle)
        assert mask.shape == (HEIGHT, WIDTH) and int(mask.sum()) == result["area"]
        ws.send_json({"type": "set_options", "mask_format": "png", "mask_threshold": 0.4})
        assert ws.receive_json() == {"type": "options_set", "mask_format": "png", "mask_threshold": 0.4}
        ws.send_json({"type": "segment"})
        assert png_mask(ws.receive_json()).shape == (HEIGHT, WIDTH)


def test_init_by_image_id_reuses_the_image_without_upload_or_backbone(client):
    engine = client.app.state.services.engine
    with session(client) as ws:
        image_id = loaded(ws)["image_id"]
    runs = engine.backbone_runs
    with session(client) as ws:
        ws.send_json({"type": "init", "image_id": image_id})
        event = ws.receive_json()
        assert event["type"] == "image_loaded" and event["image_id"] == image_id and event["width"] == WIDTH
        assert click(ws, 10, 10)[1]["type"] == "segmentation_result"
    assert engine.backbone_runs == runs


@pytest.fixture(scope="module")
def image_server():
    """A local HTTP server with the test images (the module's app trusts 127.0.0.1)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(SAMPLES)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_init_by_image_url_downloads_the_image(client, image_server):
    with session(client) as ws:
        ws.send_json({"type": "init", "image_url": f"{image_server}/chelsea.png"})
        event = ws.receive_json()
    assert event["type"] == "image_loaded" and (event["width"], event["height"]) == (WIDTH, HEIGHT)


BAD_MESSAGES = {
    "not JSON": ("{oops", "invalid_json"),
    "unknown type": ({"type": "teleport"}, "unknown_type"),
    "missing type": ({"x": 1, "y": 2}, "unknown_type"),
    "missing field": ({"type": "click", "x": 10}, "invalid_message"),
    "invalid label": ({"type": "click", "x": 10, "y": 10, "label": 7}, "invalid_message"),
    "two image sources": ({"type": "init", "image": "aGk=", "image_id": "x"}, "invalid_message"),
    "click before init": ({"type": "click", "x": 10, "y": 10, "label": 1}, "no_image"),
    "segment before init": ({"type": "segment"}, "no_image"),
    "text before init": ({"type": "text", "text": "cat"}, "no_image"),
    "invalid base64 image": ({"type": "init", "image": "data:image/png;base64,@@not base64@@"}, "invalid_image"),
    "base64 that is not an image": ({"type": "init", "image": base64.b64encode(b"hello").decode()}, "invalid_image"),
    "unknown image_id": ({"type": "init", "image_id": "0" * 32}, "not_found"),
    "private image_url": ({"type": "init", "image_url": "http://10.0.0.1/cat.png"}, "url_not_allowed"),
    "file image_url": ({"type": "init", "image_url": "file:///etc/passwd"}, "url_not_allowed"),
}


@pytest.mark.parametrize("frame, code", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_a_bad_message_gets_an_error_event_and_the_socket_stays_open(client, frame, code):
    with session(client) as ws:
        ws.send_text(frame) if isinstance(frame, str) else ws.send_json(frame)
        event = ws.receive_json()
        assert event["type"] == "error" and event["code"] == code and event["message"]
        assert_still_open(ws)


AFTER_INIT_ERRORS = {
    "click outside the image": ({"type": "click", "x": WIDTH + 5, "y": 10, "label": 1}, "invalid_prompt"),
    "negative click": ({"type": "click", "x": -1, "y": 10}, "invalid_prompt"),
    "inverted box": ({"type": "box", "x1": 100, "y1": 10, "x2": 50, "y2": 60}, "invalid_prompt"),
    "unknown object": ({"type": "click", "x": 1, "y": 1, "object_id": 9}, "unknown_object"),
    "segment without prompts": ({"type": "segment"}, "no_prompts"),
    "empty text": ({"type": "text", "text": "   "}, "invalid_prompt"),
}


@pytest.mark.parametrize("frame, code", AFTER_INIT_ERRORS.values(), ids=AFTER_INIT_ERRORS.keys())
def test_a_bad_prompt_after_init_gets_an_error_event_and_the_session_goes_on(client, frame, code):
    with session(client) as ws:
        loaded(ws)
        ws.send_json(frame)
        event = ws.receive_json()
        assert event["type"] == "error" and event["code"] == code, event
        assert click(ws, 5, 5)[1]["type"] == "segmentation_result"


def test_engine_busy_becomes_an_error_event_and_the_socket_stays_open(client, monkeypatch):
    async def busy(*args, **kwargs):
        raise EngineBusy("The model is busy: retry in 1 s.")

    with session(client) as ws:
        loaded(ws)
        monkeypatch.setattr(client.app.state.services.engine, "segment_points", busy)
        added, event = click(ws, 10, 10)
        assert added["type"] == "point_added" and event["type"] == "error" and event["code"] == "engine_busy"
        monkeypatch.undo()
        ws.send_json({"type": "segment"})  # the point stayed: a retry answers
        assert ws.receive_json()["type"] == "segmentation_result"
