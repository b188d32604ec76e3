"""X-Sam3-Replica and X-Sam3-Cache on the single-process server: which replica answered, and hit or miss."""

from __future__ import annotations

import os
import socket

import pytest
from fastapi.testclient import TestClient

from sam3_api.api.replica_headers import replica_id_for
from sam3_api.main import create_app
from tests.api.conftest import ready_client
from tests.conftest import dev_settings, png_bytes, random_image


@pytest.fixture(scope="module")
def named_client():
    client = ready_client(replica_id="replica-a")
    yield client
    client.__exit__(None, None, None)


def _image(seed: int) -> dict:
    return {"image": ("a.png", png_bytes(random_image(48, 64, seed=seed)), "image/png")}


def test_first_prompt_on_an_image_is_a_miss_and_later_prompts_of_any_kind_are_hits(named_client):
    image = _image(seed=101)
    first = named_client.post("/segment/points", files=image, data={"points_x": "10", "points_y": "12"})
    second = named_client.post("/segment/box", files=image, data={"x1": 1, "y1": 2, "x2": 30, "y2": 40})
    third = named_client.post("/segment/text", files=image, data={"text": "cat"})
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert [r.headers["X-Sam3-Cache"] for r in (first, second, third)] == ["miss", "hit", "hit"]
    # The header says what the body's timing says.
    assert [r.json()["timing"]["cached"] for r in (first, second, third)] == [False, True, True]


def test_every_answer_names_the_replica_from_sam3_replica_id(named_client):
    for response in (named_client.get("/health"), named_client.post("/segment/text", files=_image(102), data={})):
        assert response.headers["X-Sam3-Replica"] == "replica-a"


def test_answers_that_used_no_image_carry_no_cache_header(named_client):
    assert "X-Sam3-Cache" not in named_client.get("/health").headers
    rejected = named_client.post("/segment/box", files=_image(103), data={"x1": 50, "y1": 10, "x2": 10, "y2": 50})
    assert rejected.status_code == 422 and "X-Sam3-Cache" not in rejected.headers
    assert rejected.headers["X-Sam3-Replica"] == "replica-a"


def test_replica_id_defaults_to_hostname_and_pid():
    assert replica_id_for(dev_settings()) == f"{socket.gethostname()}:{os.getpid()}"
    assert replica_id_for(dev_settings(replica_id="gpu-3")) == "gpu-3"


def test_browser_scripts_on_other_origins_may_read_both_headers(named_client):
    response = named_client.get("/health", headers={"Origin": "https://example.org"})
    exposed = {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-sam3-replica", "x-sam3-cache"} <= exposed


def test_the_websocket_upgrade_names_the_replica():
    with TestClient(create_app(dev_settings(replica_id="replica-ws"))) as client:
        with client.websocket_connect("/ws/realtime?image_key=abc") as socket_session:
            assert socket_session.receive_json()["type"] == "session_created"
            assert (b"x-sam3-replica", b"replica-ws") in (socket_session.extra_headers or [])
