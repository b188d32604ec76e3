"""The /app page names its image for a scaled-out server: the sha256 of the file as `image_key` on its
WebSocket URL (with crypto.subtle or, where a plain-http page lacks it, the page's own SHA-256), and it
re-sends the image when a reconnected server no longer knows the image_id."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.test_web_app import CAT, HEIGHT, WIDTH, Frames, expect_object_result, open_with_cat

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CAT_SHA256 = hashlib.sha256(CAT.read_bytes()).hexdigest()
# Makes the page run as on a plain-http LAN address, where browsers hide crypto.subtle.
WITHOUT_SUBTLE = "Object.defineProperty(Crypto.prototype, 'subtle', { get: () => undefined });"


def socket_keys(page) -> list[str | None]:
    keys = []
    page.on("websocket", lambda ws: keys.append(parse_qs(urlparse(ws.url).query).get("image_key", [None])[0]))
    return keys


@pytest.mark.parametrize("subtle", [True, False], ids=["crypto.subtle", "fallback-sha256"])
def test_the_page_routes_its_socket_by_the_sha256_of_the_image_file(page, live_server, subtle):
    if not subtle:
        page.add_init_script(WITHOUT_SUBTLE)
    keys = socket_keys(page)
    open_with_cat(page, live_server)
    assert page.evaluate("() => Boolean(window.crypto.subtle)") is subtle
    # The first socket had no image to name; loading the cat reconnected with its key.
    assert keys == [None, CAT_SHA256]
    page.get_by_test_id("canvas").click(position={"x": 200, "y": 150})
    expect_object_result(page)


def test_the_fallback_sha256_matches_hashlib_across_block_boundaries(page, live_server):
    page.goto(f"{live_server}/app")
    for length in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_000):  # padding spills into a new block at 56
        data = bytes((i * 7 + 3) % 256 for i in range(length))
        digest = page.evaluate("(bytes) => window.sam3ImageKey.sha256Fallback(new Uint8Array(bytes))", list(data))
        assert digest == hashlib.sha256(data).hexdigest(), f"{length} bytes"


def test_an_image_url_is_keyed_by_the_sha256_of_the_url(page, live_server):
    page.goto(f"{live_server}/app")
    url = "https://example.org/photo.jpg"
    assert page.evaluate("(u) => window.sam3ImageKey.imageKey(u)", url) == hashlib.sha256(url.encode()).hexdigest()


def test_a_reconnected_page_sends_the_image_again_when_the_server_forgot_its_image_id(page, live_server):
    from playwright.sync_api import expect

    frames = Frames(page)
    keys = socket_keys(page)
    open_with_cat(page, live_server)
    # As after a replica died: the server the page reconnects to does not know the image_id it holds.
    page.evaluate("() => { window.sam3App.state.imageId = '0'.repeat(64); window.sam3App.state.ws.close(); }")
    # The status still says "ready" from the first load until the close is seen: wait for the reconnect first.
    expect(page.get_by_test_id("status")).to_contain_text("reconnecting")
    expect(page.get_by_test_id("status")).to_contain_text(re.compile(f"Image {WIDTH}×{HEIGHT} ready"), timeout=15_000)
    inits = frames.sent_of("init")
    assert [("image_id" in m, "image" in m) for m in inits[-2:]] == [(True, False), (False, True)], inits
    assert [e["code"] for e in frames.received_of("error")] == ["not_found"]
    assert keys[-1] == CAT_SHA256  # the reconnect names the image again
    page.get_by_test_id("canvas").click(position={"x": 200, "y": 150})
    expect_object_result(page)
