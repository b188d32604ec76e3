"""The /app page on a server with SAM3_API_KEYS, in a real Chromium: it forwards the key to its WebSocket."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import start_server
from tests.e2e.test_web_app import CAT, HEIGHT, WIDTH

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
KEY = "page-key"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    yield from start_server(tmp_path_factory, {"SAM3_API_KEYS": KEY})


def test_the_page_opened_with_api_key_connects_segments_and_remembers_the_key(page, keyed_server):
    from playwright.sync_api import expect

    page.goto(f"{keyed_server}/app/?api_key={KEY}")
    status = page.get_by_test_id("status")
    expect(status).to_contain_text("Connected")
    page.get_by_test_id("image-input").set_input_files(CAT)
    expect(status).to_contain_text(f"Image {WIDTH}×{HEIGHT} ready")
    page.get_by_test_id("canvas").click(position={"x": 200, "y": 120})
    expect(status).to_contain_text("Object 1: score")
    page.goto(f"{keyed_server}/app/")  # no key in the URL now: the page kept it in localStorage
    expect(status).to_contain_text("Connected")


def test_the_page_without_a_key_says_how_to_give_one_and_stops_retrying(page, keyed_server):
    from playwright.sync_api import expect

    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.goto(f"{keyed_server}/app/")
    status = page.get_by_test_id("status")
    expect(status).to_contain_text("/app/?api_key=YOUR_KEY")
    page.wait_for_timeout(2500)  # longer than the page's reconnect delay (1.5 s)
    assert len(sockets) == 1
    expect(status).to_contain_text("API key")
