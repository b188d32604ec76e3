"""The /app page in a real Chromium against the real server: load, click, right-click, drag, text, phone width.

Screenshots land in each test's tmp_path (e.g. /tmp/pytest-of-<user>/pytest-<N>/
test_left_click_draws_a_mask_a0/after_click.png) for a human to look at.
"""

from __future__ import annotations

import json
import re

import pytest
from pycocotools import mask as coco_mask

from tests.conftest import SAMPLES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CAT = SAMPLES / "chelsea.png"  # 451 x 300
WIDTH, HEIGHT = 451, 300
LATENCY = re.compile(r"\d+(\.\d+)? ms")

SNAPSHOT = """() => { const c = document.querySelector('[data-testid=canvas]');
  window.__before = c.getContext('2d').getImageData(0, 0, c.width, c.height).data.slice(); }"""
CHANGED_PIXELS = """() => { const c = document.querySelector('[data-testid=canvas]');
  const now = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < now.length; i += 4) if (now[i] !== window.__before[i] || now[i + 1] !== window.__before[i + 1]
      || now[i + 2] !== window.__before[i + 2]) n++;
  return n; }"""


class Frames:
    """JSON messages the page sent and received over its WebSocket."""

    def __init__(self, page):
        self.sent: list[dict] = []
        self.received: list[dict] = []
        page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        ws.on("framesent", lambda payload: self.sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: self.received.append(json.loads(payload)))

    def sent_of(self, kind: str) -> list[dict]:
        return [frame for frame in self.sent if frame.get("type") == kind]

    def received_of(self, kind: str) -> list[dict]:
        return [frame for frame in self.received if frame.get("type") == kind]


def open_with_cat(page, live_server: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{live_server}/app")
    status = page.get_by_test_id("status")
    expect(status).to_contain_text("Connected")
    page.get_by_test_id("image-input").set_input_files(CAT)
    expect(status).to_contain_text(f"Image {WIDTH}×{HEIGHT} ready")
    canvas = page.get_by_test_id("canvas")
    assert canvas.evaluate("c => [c.width, c.height]") == [WIDTH, HEIGHT]
    page.evaluate(SNAPSHOT)


def expect_object_result(page, object_id: int = 1) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("status")).to_have_text(re.compile(rf"Object {object_id}: score .*{LATENCY.pattern}"))


def test_the_page_is_served_at_app_and_connects(page, live_server):
    from playwright.sync_api import expect

    page.goto(f"{live_server}/app")
    expect(page.get_by_test_id("status")).to_contain_text("Connected")
    assert page.title().startswith("SAM 3")
    # The live server runs dev-tiny: the page must warn that its masks are meaningless.
    expect(page.get_by_test_id("model-note")).to_contain_text("random weights")


def test_left_click_draws_a_mask_and_shows_the_latency(page, live_server, tmp_path):
    frames = Frames(page)
    open_with_cat(page, live_server)
    page.get_by_test_id("canvas").click(position={"x": 200, "y": 150})
    expect_object_result(page)
    assert page.evaluate(CHANGED_PIXELS) > 500  # the overlay (and the point marker) were drawn
    assert LATENCY.search(page.get_by_test_id("status").inner_text())
    [sent] = frames.sent_of("click")
    assert sent["label"] == 1 and 0 <= sent["x"] <= WIDTH and 0 <= sent["y"] <= HEIGHT
    page.screenshot(path=str(tmp_path / "after_click.png"), full_page=True)


def test_right_click_adds_a_negative_point(page, live_server):
    from playwright.sync_api import expect

    frames = Frames(page)
    open_with_cat(page, live_server)
    canvas = page.get_by_test_id("canvas")
    canvas.click(position={"x": 200, "y": 150})
    expect_object_result(page)
    canvas.click(position={"x": 60, "y": 40}, button="right")
    expect(page.get_by_test_id("points")).to_have_text("Object 1: 1 positive, 1 negative")
    assert [frame["label"] for frame in frames.sent_of("click")] == [1, 0]
    expect(page.get_by_test_id("status")).to_contain_text("1 negative")


def test_dragging_draws_a_box_prompt(page, live_server):
    from playwright.sync_api import expect

    frames = Frames(page)
    open_with_cat(page, live_server)
    box = page.get_by_test_id("canvas").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 150, box["y"] + 120, steps=5)
    page.mouse.up()
    expect_object_result(page)
    [sent] = frames.sent_of("box")
    assert sent["x1"] < sent["x2"] and sent["y1"] < sent["y2"] and not frames.sent_of("click")
    expect(page.get_by_test_id("points")).to_contain_text("1 box")


def test_a_text_prompt_draws_masks(page, live_server, tmp_path):
    from playwright.sync_api import expect

    open_with_cat(page, live_server)
    # The dev model's random weights score everything low: accept every instance.
    page.get_by_test_id("confidence").fill("0")
    prompt = page.get_by_test_id("text-prompt")
    prompt.fill("cat")
    prompt.press("Enter")
    expect(page.get_by_test_id("status")).to_have_text(re.compile(rf"“cat”: [1-9]\d* mask\(s\) · {LATENCY.pattern}"))
    assert page.evaluate(CHANGED_PIXELS) > 500
    page.screenshot(path=str(tmp_path / "after_text.png"), full_page=True)


def test_new_object_gets_a_new_colour_and_undo_removes_its_point(page, live_server):
    from playwright.sync_api import expect

    open_with_cat(page, live_server)
    canvas = page.get_by_test_id("canvas")
    canvas.click(position={"x": 100, "y": 100})
    expect_object_result(page, 1)
    page.get_by_test_id("new-object").click()
    expect(page.get_by_test_id("status")).to_contain_text("Object 2")
    canvas.click(position={"x": 300, "y": 200})
    expect_object_result(page, 2)
    swatches = page.locator("[data-testid=objects] .swatch")
    expect(swatches).to_have_count(2)
    colours = swatches.evaluate_all("items => items.map(s => s.style.background)")
    assert colours[0] != colours[1]
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("points")).to_have_text("Object 2: 0 positive, 0 negative")


def test_the_rle_download_decodes_to_the_image_size(page, live_server):
    frames = Frames(page)
    open_with_cat(page, live_server)
    page.get_by_test_id("canvas").click(position={"x": 200, "y": 150})
    expect_object_result(page)
    with page.expect_download() as download_info:
        page.get_by_test_id("download-rle").click()
    body = json.loads(open(download_info.value.path()).read())
    [annotation] = body["annotations"]
    rle = {"size": annotation["segmentation"]["size"], "counts": annotation["segmentation"]["counts"].encode()}
    mask = coco_mask.decode(rle)
    assert mask.shape == (HEIGHT, WIDTH)
    assert int(mask.sum()) == annotation["area"] == frames.received_of("segmentation_result")[-1]["area"]


def test_a_375_pixel_wide_phone_screen_fits_the_canvas_and_a_tap_lands_where_it_should(browser, live_server,
                                                                                        tmp_path):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    try:
        page = context.new_page()
        frames = Frames(page)
        open_with_cat(page, live_server)
        box = page.get_by_test_id("canvas").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["width"] < WIDTH
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
        page.get_by_test_id("canvas").tap(position={"x": box["width"] / 2, "y": box["height"] / 2})
        expect_object_result(page)
        [sent] = frames.sent_of("click")
        assert abs(sent["x"] - WIDTH / 2) <= 2 and abs(sent["y"] - HEIGHT / 2) <= 2  # CSS px -> image px
        page.screenshot(path=str(tmp_path / "phone_after_tap.png"), full_page=True)
    finally:
        context.close()
