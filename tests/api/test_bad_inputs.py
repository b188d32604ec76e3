"""A table of bad inputs: each gets its documented 4xx in the one error envelope, never a 500 or a hang.

URL cases reach only the test server on 127.0.0.1 (allowed by SAM3_URL_ALLOW_HOSTS=127.0.0.1 for this
module) or are refused before any connection; internal addresses are exercised through a patched resolver.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

import httpx
import pytest
from PIL import Image

from tests.api.conftest import ready_client
from tests.conftest import SAMPLES, png_bytes, png_header_only, random_image

PNG = png_bytes(random_image(120, 160))
PNG_B64 = base64.b64encode(PNG).decode()
MAX_UPLOAD = 2 * 1024**2


def _jpeg(truncate: bool = False) -> bytes:
    buffer = io.BytesIO()
    Image.open(SAMPLES / "chelsea.png").convert("RGB").save(buffer, format="JPEG")
    data = buffer.getvalue()
    return data[: len(data) // 2] if truncate else data


@dataclass
class Case:
    name: str
    path: str
    status: int
    says: str  # a fragment the message must contain: it says what was wrong
    form: dict | None = None
    upload: tuple[str, bytes] | None = ("image.png", PNG)
    json: dict | str | None = None
    extra: dict = field(default_factory=dict)


def upload_case(name, path, status, says, form=None, upload=("image.png", PNG)):
    return Case(name, path, status, says, form=form or {}, upload=upload)


def json_case(name, path, status, says, body):
    return Case(name, path, status, says, upload=None, json=body)


def url_case(name, url, status, says):
    return json_case(name, "/segment/text/url", status, says, {"image_url": url, "text": "cat"})


BOX = {"x1": 10, "y1": 10, "x2": 50, "y2": 50}
CASES = [
    # --- images: upload ---
    upload_case("missing image field", "/segment/text", 422, "image", {"text": "cat"}, upload=None),
    upload_case("empty file", "/segment/text", 400, "empty", {"text": "cat"}, ("a.png", b"")),
    upload_case("pdf renamed jpg", "/segment/text", 400, "JPEG", {"text": "cat"},
                ("photo.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF")),
    upload_case("plain text file", "/segment/text", 400, "image", {"text": "cat"}, ("a.jpg", b"hello world" * 10)),
    upload_case("svg", "/segment/box", 400, "image", BOX, ("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")),
    upload_case("truncated jpeg", "/segment/text", 400, "truncated", {"text": "cat"}, ("a.jpg", _jpeg(True))),
    upload_case("30000x30000 png header", "/segment/text", 413, "SAM3_MAX_IMAGE_PIXELS", {"text": "cat"},
                ("bomb.png", png_header_only(30000, 30000))),
    upload_case("upload over the byte cap", "/segment/text", 413, "SAM3_MAX_UPLOAD_BYTES", {"text": "cat"},
                ("big.png", PNG + b"\0" * MAX_UPLOAD)),
    # --- images: base64 ---
    json_case("invalid base64", "/segment/text/base64", 400, "base64", {"image_base64": "!!!notbase64", "text": "x"}),
    json_case("base64 of text", "/segment/text/base64", 400, "image",
              {"image_base64": base64.b64encode(b"just some text").decode(), "text": "x"}),
    json_case("huge base64 string", "/segment/text/base64", 413, "SAM3_MAX_UPLOAD_BYTES",
              {"image_base64": "A" * (MAX_UPLOAD * 2), "text": "x"}),
    json_case("data url of garbage", "/segment/points/base64", 400, "image",
              {"image_base64": "data:image/png;base64,AAAA", "points_x": [1], "points_y": [1]}),
    json_case("missing image_base64", "/segment/text/base64", 422, "image_base64", {"text": "cat"}),
    json_case("image_base64 not a string", "/segment/text/base64", 422, "image_base64",
              {"image_base64": 12345, "text": "cat"}),
    json_case("body not json", "/segment/text/base64", 422, "JSON", "{not json"),
    # --- images: URL (SSRF) ---
    url_case("localhost", "http://localhost:8000/x.png", 400, "SAM3_URL_ALLOW_PRIVATE"),
    url_case("decimal loopback", "http://2130706433/x.png", 400, "SAM3_URL_ALLOW_PRIVATE"),
    url_case("hex loopback", "http://0x7f000001/x.png", 400, "SAM3_URL_ALLOW_PRIVATE"),
    url_case("octal loopback", "http://0177.0.0.1/x.png", 400, "0177.0.0.1"),
    url_case("short loopback", "http://127.1/x.png", 400, "SAM3_URL_ALLOW_PRIVATE"),
    url_case("other loopback address", "http://127.0.0.2/x.png", 400, "loopback"),
    url_case("ipv6 loopback", "http://[::1]/x.png", 400, "SAM3_URL_ALLOW_PRIVATE"),
    url_case("ipv4-mapped loopback", "http://[::ffff:127.0.0.1]/x.png", 400, "SAM3_URL_ALLOW_PRIVATE"),
    url_case("unspecified address", "http://0.0.0.0/x.png", 400, "SAM3_URL_ALLOW_PRIVATE"),
    url_case("file scheme", "file:///etc/passwd", 400, "scheme"),
    url_case("ftp scheme", "ftp://example.com/x.png", 400, "scheme"),
    url_case("no host", "http:///x.png", 400, "URL"),
    # --- prompts ---
    upload_case("inverted box", "/segment/box", 422, "inverted", {"x1": 50, "y1": 10, "x2": 10, "y2": 50}),
    upload_case("empty box", "/segment/box", 422, "x1 < x2", {"x1": 10, "y1": 10, "x2": 10, "y2": 50}),
    upload_case("box outside the image", "/segment/box", 422, "outside", {"x1": 10, "y1": 10, "x2": 500, "y2": 50}),
    upload_case("incomplete box", "/segment/box", 422, "x1, y1, x2, y2", {"x1": 10, "y1": 10, "x2": 50}),
    upload_case("nan coordinate", "/segment/box", 422, "finite", {"x1": "nan", "y1": 10, "x2": 50, "y2": 50}),
    upload_case("infinite coordinate", "/segment/box", 422, "finite", {"x1": 1, "y1": 10, "x2": "inf", "y2": 50}),
    upload_case("non-numeric coordinate", "/segment/box", 422, "x1", {"x1": "abc", "y1": 10, "x2": 50, "y2": 50}),
    upload_case("point outside the image", "/segment/points", 422, "outside", {"points_x": "10,900", "points_y": "5,5"}),
    upload_case("labels do not match points", "/segment/points", 422, "one label each",
                {"points_x": "10,20", "points_y": "5,5", "labels": "1"}),
    upload_case("label 2", "/segment/points", 422, "1 (positive) or 0", {"points_x": "10", "points_y": "5", "labels": "2"}),
    upload_case("x without y", "/segment/points", 422, "points_y", {"points_x": "10,20", "points_y": "5"}),
    upload_case("no points", "/segment/points", 422, "points_x", {}),
    upload_case("empty text", "/segment/text", 422, "text", {"text": "   "}),
    upload_case("over-long text", "/segment/text", 422, "SAM3_MAX_TEXT_LENGTH", {"text": "cat " * 300}),
    upload_case("missing text", "/segment/text", 422, "text is required", {}),
    upload_case("mask threshold above 1", "/segment/text", 422, "mask_threshold", {"text": "cat", "mask_threshold": 1.5}),
    upload_case("negative confidence", "/segment/text", 422, "confidence_threshold",
                {"text": "cat", "confidence_threshold": -0.1}),
    upload_case("unknown output format", "/segment/text", 422, "output_format", {"text": "cat", "output_format": "jpeg"}),
    upload_case("zero grid", "/segment/auto", 422, "points_per_side", {"points_per_side": 0}),
    upload_case("grid too dense", "/segment/auto", 422, "points_per_side", {"points_per_side": 1000}),
    upload_case("malformed boxes json", "/segment/box", 422, "JSON", {"boxes": "[[1,2,3"}),
    upload_case("box with three numbers", "/segment/box", 422, "4 numbers", {"boxes": "[[1,2,3]]"}),
    json_case("exemplar labels mismatch", "/segment/text/base64", 422, "exemplar_labels",
              {"image_base64": PNG_B64, "text": "cat", "exemplar_boxes": [[1, 1, 20, 20]], "exemplar_labels": [1, 0]}),
    json_case("too many boxes", "/segment/box/base64", 422, "SAM3_MAX_PROMPTS",
              {"image_base64": PNG_B64, "boxes": [[1, 1, 20, 20]] * 65}),
]
SERVER_CASES = [  # against the 127.0.0.1 test server, allowed by SAM3_URL_ALLOW_HOSTS for this module
    ("redirect to another loopback address", "/redirect-to-loopback", 400, "loopback"),
    ("redirect to the metadata address", "/to-metadata", 400, "169.254.169.254"),
    ("too many redirects", "/redirect/9", 400, "SAM3_URL_MAX_REDIRECTS"),
    ("slow-drip body", "/slow-drip", 400, "SAM3_URL_TIMEOUT_S"),
    ("oversize body", "/endless-without-length", 413, "SAM3_MAX_UPLOAD_BYTES"),
    ("not found", "/missing.png", 400, "404"),
    ("pdf body", "/document.pdf", 400, "image"),
]


@pytest.fixture(scope="module")
def strict_client():
    client = ready_client(url_allow_hosts=["127.0.0.1"], max_upload_bytes=MAX_UPLOAD, url_timeout_s=1.5)
    yield client
    client.__exit__(None, None, None)


def _send(client, case: Case) -> httpx.Response:
    if case.json is not None:
        if isinstance(case.json, str):
            return client.post(case.path, content=case.json, headers={"content-type": "application/json"})
        return client.post(case.path, json=case.json)
    files = {"image": (case.upload[0], case.upload[1], "application/octet-stream")} if case.upload else None
    return client.post(case.path, data=case.form, files=files or {"unused": ("x", b"")})


def _assert_envelope(response: httpx.Response, status: int, says: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"detail", "status_code", "code"}
    assert body["status_code"] == status
    assert says.lower() in body["detail"].lower(), body["detail"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_documented_4xx_and_a_message(strict_client, case):
    _assert_envelope(_send(strict_client, case), case.status, case.says)


@pytest.mark.parametrize("name,path,status,says", SERVER_CASES, ids=[c[0] for c in SERVER_CASES])
def test_bad_url_input_from_the_local_test_server_is_refused(strict_client, server, name, path, status, says):
    response = strict_client.post("/segment/text/url", json={"image_url": server + path, "text": "cat"})
    _assert_envelope(response, status, says)


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.5", "192.168.1.1", "100.64.0.1", "fd00::1"])
def test_names_resolving_to_internal_addresses_are_refused_before_connecting(strict_client, monkeypatch, address):
    import sam3_api.media.fetch as fetch

    async def resolve(host: str, port: int) -> list[str]:
        return [address]

    sent = []

    async def record(self, request, **kwargs):  # any connection attempt would pass through here
        sent.append(request)
        raise AssertionError("no request may be sent")

    monkeypatch.setattr(fetch, "_system_resolve", resolve)
    monkeypatch.setattr(httpx.AsyncClient, "send", record)
    response = strict_client.post("/segment/text/url", json={"image_url": "http://images.example.org/a.png",
                                                             "text": "cat"})
    _assert_envelope(response, 400, "SAM3_URL_ALLOW_PRIVATE")
    assert sent == []


def test_server_still_answers_normally_after_every_bad_input(strict_client, server):
    for case in CASES:
        assert _send(strict_client, case).status_code < 500
    response = strict_client.post("/segment/text/url", json={"image_url": server + "/chelsea.png", "text": "cat",
                                                             "confidence_threshold": 0})
    assert response.status_code == 200 and response.json()["image_size"] == [451, 300]
    ok = strict_client.post("/segment/box", files={"image": ("a.png", PNG)}, data=BOX)
    assert ok.status_code == 200 and ok.json()["num_masks"] == 1
