"""/docs (Swagger UI) and /redoc (ReDoc) in a real Chromium with every other host cut off.

The server is reached by a name (docs.sam3.test, mapped to 127.0.0.1 inside Chromium) rather than 127.0.0.1,
as it is on a real private network: Swagger UI treats loopback addresses apart (it never shows its online
validator badge, an image from validator.swagger.io, for them), so a loopback URL could hide a request. Every
request of the page to another origin is aborted and recorded; the tests assert there was none, that both
pages list the operations, and that Swagger's "Try it out" reaches the server.

ReDoc's side menu always tries Redocly's logo from cdn.redoc.ly: the pages' Content-Security-Policy stops it
inside the browser (Playwright reports the failure as "csp") before any network request, so the route never
sees it. Such attempts are recorded too, and must all have been stopped that way. Without the policy the
route sees the logo request and the ReDoc test fails.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest

from tests.conftest import SAMPLES
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, _browser_missing

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

HOST = "docs.sam3.test"
MIN_OPERATIONS = 40  # the server has ~60 operations; a page that failed to read /openapi.json shows none
BOX_ROUTE = "/segment/box/base64"
CAT = SAMPLES / "chelsea.png"  # 451 x 300


@pytest.fixture(scope="module")
def named_browser():
    """Chromium (as tests/e2e/conftest.py's `browser`) resolving HOST to 127.0.0.1 and nothing else."""
    if not CHROMIUM.exists():
        _browser_missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_missing("the playwright package is missing (pip install playwright)")
    rules = f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules])
        yield browser
        browser.close()


class CutOffPage:
    """A page where every request to an origin other than the server's is aborted and remembered."""

    def __init__(self, browser, server_url: str):
        port = urlsplit(server_url).port
        self.origin = f"http://{HOST}:{port}"
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.foreign: list[str] = []  # requests that reached the network layer (aborted by _route)
        self.stopped_in_browser: dict[str, str] = {}  # URL -> why the browser itself failed it
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("requestfailed", self._failed)

    def _route(self, route) -> None:
        if self._is_foreign(route.request.url):
            self.foreign.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def _is_foreign(self, url: str) -> bool:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" != self.origin and parts.scheme not in ("data", "blob")

    def _failed(self, request) -> None:
        if self._is_foreign(request.url) and request.url not in self.foreign:
            self.stopped_in_browser[request.url] = request.failure

    def assert_nothing_left(self) -> None:
        self.page.wait_for_load_state("networkidle")
        assert self.foreign == []
        assert all(why == "csp" for why in self.stopped_in_browser.values()), self.stopped_in_browser

    def open(self, path: str) -> None:
        self.page.goto(self.origin + path)


@pytest.fixture
def cut_off(named_browser, live_server):
    page = CutOffPage(named_browser, live_server)
    yield page
    page.context.close()
    assert not page.errors, f"the page threw: {page.errors}"


def cat_base64() -> str:
    return base64.b64encode(CAT.read_bytes()).decode()


def test_swagger_ui_lists_every_operation_without_another_host(cut_off):
    cut_off.open("/docs")
    operations = cut_off.page.locator(".opblock")
    operations.first.wait_for()
    assert operations.count() > MIN_OPERATIONS
    assert cut_off.page.locator(f'.opblock-summary-path[data-path="{BOX_ROUTE}"]').count() == 1
    cut_off.assert_nothing_left()


def test_redoc_lists_every_operation_without_another_host(cut_off):
    cut_off.open("/redoc")
    operations = cut_off.page.locator('[data-section-id*="/operation/"]')
    operations.first.wait_for()
    assert operations.count() > MIN_OPERATIONS
    assert BOX_ROUTE in cut_off.page.locator("body").inner_text()
    cut_off.assert_nothing_left()


def test_swagger_try_it_out_segments_a_box_on_the_server(cut_off):
    from playwright.sync_api import expect

    page = cut_off.page
    cut_off.open("/docs")
    operation = page.locator(".opblock", has=page.locator(f'.opblock-summary-path[data-path="{BOX_ROUTE}"]'))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    body = {"image_base64": cat_base64(), "x1": 100, "y1": 50, "x2": 300, "y2": 250}
    operation.locator("textarea.body-param__text").fill(json.dumps(body))
    with page.expect_response(lambda response: urlsplit(response.url).path == BOX_ROUTE) as answer:
        operation.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200
    assert answer.value.json()["masks"]  # one mask for the one box
    expect(operation.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")
    cut_off.assert_nothing_left()
