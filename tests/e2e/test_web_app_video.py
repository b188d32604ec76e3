"""The video mode of /app in a real Chromium against the real server (dev-tiny): load a 24-frame MP4, click an
object on frame 0, Track to 24 / 24, scrub to frame 20 and see the object's colour, right-click, correct and
re-track, export the masks as COCO-RLE JSON and the annotated MP4, on a desktop and a phone-sized screen.

Screenshots land in each test's tmp_path (e.g. /tmp/pytest-of-<user>/pytest-<N>/
test_click_track_scrub_correct_and_export_0/3_frame_20.png).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs, urlparse

import av
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from tests.e2e.test_web_app import CAT, CHANGED_PIXELS, HEIGHT as CAT_HEIGHT, SNAPSHOT, WIDTH as CAT_WIDTH, Frames
from tests.e2e.test_web_app import expect_object_result
from tests.videos import make_video, square_box

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

WIDTH, HEIGHT, FRAMES = 160, 120, 24
OBJECT_1 = (60, 180, 75)  # masks.PALETTE[1]: the page, the MP4 and the exports use the server's palette
CANVAS_PIXELS = """() => { const c = document.querySelector('[data-testid=canvas]');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("video-page") / "clip24.mp4", frames=FRAMES)


def open_video(page, live_server: str, clip) -> None:
    from playwright.sync_api import expect

    page.goto(f"{live_server}/app")
    page.get_by_test_id("mode-video").click()
    status = page.get_by_test_id("video-status")
    expect(status).to_contain_text("Connected")
    page.get_by_test_id("video-input").set_input_files(clip)
    expect(status).to_contain_text(f"Video {WIDTH}×{HEIGHT}, {FRAMES} frames")
    expect(page.get_by_test_id("canvas")).to_have_attribute("data-frame", "0")


def click_video(page, x: float, y: float, button: str = "left") -> None:
    """Click the canvas at video pixel (x, y), whatever size it is displayed at."""
    box = page.get_by_test_id("canvas").bounding_box()
    page.get_by_test_id("canvas").click(position={"x": x * box["width"] / WIDTH, "y": y * box["height"] / HEIGHT},
                                        button=button)


def square_centre(frame: int) -> tuple[float, float]:
    x1, y1, x2, y2 = square_box(frame)
    return (x1 + x2) / 2, (y1 + y2) / 2


def show_frame(page, frame: int) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("frame-slider").fill(str(frame))
    expect(page.get_by_test_id("canvas")).to_have_attribute("data-frame", str(frame))


def canvas_pixels(page) -> np.ndarray:
    return np.array(page.evaluate(CANVAS_PIXELS), dtype=np.int32).reshape(HEIGHT, WIDTH, 4)[:, :, :3]


def received_mask(frames: Frames, frame: int, object_id: int = 1) -> np.ndarray:
    """The latest mask of the object on that frame, as the page received it."""
    for event in reversed(frames.received):
        if event.get("frame") == frame and event["type"] in ("frame_result", "prompt_result"):
            [obj] = [o for o in event["objects"] if o["object_id"] == object_id]
            return coco_mask.decode({"size": obj["mask"]["size"], "counts": obj["mask"]["counts"].encode()}) > 0
    raise AssertionError(f"no result for frame {frame}")


def outline(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a pixel outside the mask (or the frame) among their 8 neighbours."""
    padded = np.pad(mask, 1, constant_values=False)
    inside = np.ones_like(mask)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            inside &= padded[1 + dy:1 + dy + HEIGHT, 1 + dx:1 + dx + WIDTH]
    return mask & ~inside


def assert_overlay_colour(pixels: np.ndarray, mask: np.ndarray) -> None:
    """The mask's outline is drawn in the object's colour, its inside tinted towards it, the rest untouched."""
    edge = outline(mask)
    assert edge.sum() > 10 and (pixels[edge] == OBJECT_1).all(axis=1).mean() > 0.99
    inside, outside = mask & ~edge, ~mask
    green_over_red = pixels[:, :, 1] - pixels[:, :, 0]  # the clip is grey and white: green shows the tint
    assert green_over_red[inside].mean() > 40 and np.abs(green_over_red[outside]).mean() < 15


def track(page) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("track").click()
    expect(page.get_by_test_id("video-status")).to_contain_text("Tracking finished")
    expect(page.get_by_test_id("progress")).to_have_text(f"{FRAMES} / {FRAMES}")


def correct_frame_20_and_retrack(page, frames: Frames) -> None:
    """A right click (negative point) and a click on the square on frame 20, then Track again."""
    from playwright.sync_api import expect

    status = page.get_by_test_id("video-status")
    click_video(page, 150, 110, button="right")
    expect(status).to_contain_text("Object 1 on frame 20")
    expect(status).to_contain_text("0 positive, 1 negative")
    assert frames.sent_of("click")[-1] | {"x": 0, "y": 0} == {"type": "click", "frame": 20, "object_id": 1,
                                                              "label": 0, "x": 0, "y": 0}
    click_video(page, *square_centre(20))
    expect(status).to_contain_text("1 positive, 1 negative")
    started = len(frames.received)
    track(page)
    [retrack] = [e for e in frames.received[started:] if e["type"] == "propagation_started"]
    assert retrack["from_frame"] == 20, "the correction re-tracks from its frame"
    assert {e["frame"] for e in frames.received[started:] if e["type"] == "frame_result"} == set(range(FRAMES))


def export_json(page) -> dict:
    with page.expect_download() as download_info:
        page.get_by_test_id("export-json").click()
    return json.loads(open(download_info.value.path()).read())


def test_click_track_scrub_correct_and_export(page, live_server, clip, tmp_path):
    from playwright.sync_api import expect

    frames = Frames(page)
    open_video(page, live_server, clip)
    click_video(page, *square_centre(0))
    expect(page.get_by_test_id("video-status")).to_contain_text("Object 1 on frame 0")
    page.screenshot(path=str(tmp_path / "1_clicked_frame_0.png"), full_page=True)
    track(page)
    page.screenshot(path=str(tmp_path / "2_tracked.png"), full_page=True)
    show_frame(page, 20)
    assert_overlay_colour(canvas_pixels(page), received_mask(frames, 20))
    page.screenshot(path=str(tmp_path / "3_frame_20.png"), full_page=True)
    correct_frame_20_and_retrack(page, frames)
    page.screenshot(path=str(tmp_path / "4_corrected.png"), full_page=True)
    exported = export_json(page)
    assert [f["frame_index"] for f in exported["frames"]] == list(range(FRAMES))
    for frame in exported["frames"]:
        [obj] = frame["objects"]
        rle = obj["mask"]
        assert obj["object_id"] == 1 and coco_mask.decode({**rle, "counts": rle["counts"].encode()}).shape == (HEIGHT, WIDTH)
    assert exported["video"]["frame_count"] == FRAMES and exported["objects"] == [{"object_id": 1, "label": "Object 1"}]
    expect(page.get_by_test_id("video-status")).to_contain_text(f"Exported {FRAMES} frames")


def test_the_annotated_mp4_export_downloads_a_playable_video(page, live_server, clip, tmp_path):
    from playwright.sync_api import expect

    open_video(page, live_server, clip)
    click_video(page, *square_centre(0))
    expect(page.get_by_test_id("video-status")).to_contain_text("Object 1 on frame 0")
    track(page)
    with page.expect_download() as download_info:
        page.get_by_test_id("export-mp4").click()
    path = tmp_path / "annotated.mp4"
    download_info.value.save_as(path)
    with av.open(str(path)) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == FRAMES and decoded[0].shape == (HEIGHT, WIDTH, 3)


def test_objects_get_their_own_colours_and_can_be_renamed_and_removed(page, live_server, clip):
    from playwright.sync_api import expect

    frames = Frames(page)
    open_video(page, live_server, clip)
    click_video(page, *square_centre(0))
    expect(page.get_by_test_id("video-status")).to_contain_text("Object 1 on frame 0")
    page.get_by_test_id("video-new-object").click()
    show_frame(page, 5)
    click_video(page, 120, 90)
    expect(page.get_by_test_id("video-status")).to_contain_text("Object 2 on frame 5")
    items = page.locator("[data-testid=video-objects] li")
    expect(items).to_have_count(2)
    colours = page.locator("[data-testid=video-objects] .swatch").evaluate_all("s => s.map(e => e.style.background)")
    assert colours == ["rgb(60, 180, 75)", "rgb(0, 130, 200)"]
    name = items.nth(1).locator("input")
    name.fill("ball")
    name.press("Enter")
    assert {"type": "rename_object", "object_id": 2, "label": "ball"} in frames.sent
    expect(page.locator("[data-testid=video-objects] li input").nth(1)).to_have_value("ball")
    items.nth(0).get_by_title("Remove object 1").click()
    expect(items).to_have_count(1)
    assert frames.received_of("object_removed")[-1]["object_id"] == 1


def test_the_image_mode_still_works_after_visiting_the_video_mode(page, live_server):
    from playwright.sync_api import expect

    frames = Frames(page)
    page.goto(f"{live_server}/app#video")
    expect(page.get_by_test_id("video-status")).to_contain_text("Connected")
    page.get_by_test_id("mode-image").click()
    expect(page.get_by_test_id("status")).to_contain_text("Connected")
    assert page.get_by_test_id("canvas").get_attribute("id") == "canvas"  # the image canvas is "the canvas" again
    expect(page.get_by_test_id("video-status")).to_be_hidden()
    page.get_by_test_id("image-input").set_input_files(CAT)
    expect(page.get_by_test_id("status")).to_contain_text(f"Image {CAT_WIDTH}×{CAT_HEIGHT} ready")
    page.evaluate(SNAPSHOT)
    page.get_by_test_id("canvas").click(position={"x": 200, "y": 150})
    expect_object_result(page)
    assert page.evaluate(CHANGED_PIXELS) > 500, "the image mode drew a mask"
    result = frames.received_of("segmentation_result")[-1]
    assert result["object_id"] == 1 and result["num_points"] == 1 and result["area"] > 0, result


def test_a_phone_screen_fits_the_video_and_a_tap_lands_on_the_right_pixel(browser, live_server, clip, tmp_path):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        frames = Frames(page)
        open_video(page, live_server, clip)
        box = page.get_by_test_id("canvas").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
        page.get_by_test_id("canvas").tap(position={"x": box["width"] / 2, "y": box["height"] / 2})
        expect(page.get_by_test_id("video-status")).to_contain_text("Object 1 on frame 0")
        [sent] = frames.sent_of("click")
        assert abs(sent["x"] - WIDTH / 2) <= 1 and abs(sent["y"] - HEIGHT / 2) <= 1
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    finally:
        context.close()


def test_the_upload_its_frames_and_the_socket_carry_the_sha256_of_the_video_file(page, live_server, clip):
    """What a scaled-out server routes on (X-Sam3-Image-Key, ?image_key=): all three reach one replica."""
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    requests, sockets = [], []
    page.on("request", lambda request: requests.append(request))
    page.on("websocket", lambda ws: sockets.append(parse_qs(urlparse(ws.url).query).get("image_key", [None])[0])
            if urlparse(ws.url).path == "/ws/video" else None)
    open_video(page, live_server, clip)
    [upload] = [r for r in requests if r.url.endswith("/video/uploads")]
    frames = [r for r in requests if "/frames/" in r.url]
    assert upload.headers["x-sam3-image-key"] == digest and frames
    assert all(r.headers["x-sam3-image-key"] == digest for r in frames)
    assert sockets == [None, digest], "the first socket had no video to name; the upload reconnected it"


def test_a_reconnected_page_uploads_the_video_again_when_the_server_no_longer_holds_it(page, live_server, clip):
    from playwright.sync_api import expect

    frames = Frames(page)
    open_video(page, live_server, clip)
    # As after a replica died: the server the page reconnects to does not know the video_id it holds.
    page.evaluate("() => { window.sam3Video.state.video.video_id = '0'.repeat(32); window.sam3Video.state.ws.close(); }")
    # The status still says "ready" from the first open until the close is seen: wait for the reconnect first.
    expect(page.get_by_test_id("video-status")).to_contain_text("reconnecting")
    expect(page.get_by_test_id("video-status")).to_contain_text(f"{FRAMES} frames, ready", timeout=15_000)
    assert [e["code"] for e in frames.received_of("error")] == ["not_found"]
    opens = frames.sent_of("open")
    assert opens[-2]["video_id"] == "0" * 32 and opens[-1]["video_id"] != "0" * 32
    click_video(page, *square_centre(0))
    expect(page.get_by_test_id("video-status")).to_contain_text("Object 1 on frame 0")
