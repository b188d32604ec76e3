"""A real HTTP server on 127.0.0.1 for URL-input tests: images, redirects, slow and endless bodies.

Only ever bound to the loopback address; tests reach nothing else.
"""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

PAYLOAD = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
DATA = Path(__file__).resolve().parent / "data"
# Real files served as-is: a photo for the positive cases, a PDF for "not an image".
EXTRA_FILES = {
    "/chelsea.png": (DATA / "chelsea.png").read_bytes(),
    "/astronaut.png": (DATA / "astronaut.png").read_bytes(),
    "/document.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
}
# The photos seed 003's examples name (https://example.com/room.jpg, an images.unsplash.com photo with a
# ?w=800 query, ...), as real JPEGs; the query string is ignored.
SEED_PHOTOS = {"/image.jpg": "chelsea.png", "/room.jpg": "astronaut.png", "/photo-1560448204-e02f11c3d0e2": "coffee.png"}


def _jpeg(name: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(DATA / name).convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


SEED_JPEGS = {path: _jpeg(name) for path, name in SEED_PHOTOS.items()}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        path = self.path
        try:
            if path == "/image.png":
                self._send(200, PAYLOAD)
            elif path == "/echo-host":
                self._send(200, self.headers["Host"].encode())
            elif path.startswith("/redirect/"):
                left = int(path.rsplit("/", 1)[1])
                self._redirect(f"/redirect/{left - 1}" if left > 1 else "../image.png")  # last one relative
            elif path == "/redirect-to-loopback":
                self._redirect(f"http://127.0.0.2:{self.server.server_address[1]}/image.png")
            elif path == "/to-metadata":
                self._redirect("http://169.254.169.254/latest/meta-data/")
            elif path == "/to-file":
                self._redirect("file:///etc/passwd")
            elif path == "/big-with-length":
                self._send(200, b"x" * 5000)
            elif path == "/endless-without-length":
                self._endless()
            elif path == "/slow-drip":
                self._slow_drip()
            elif path in EXTRA_FILES:
                self._send(200, EXTRA_FILES[path])
            elif path.split("?", 1)[0] in SEED_JPEGS:
                self._send(200, SEED_JPEGS[path.split("?", 1)[0]])
            elif path == "/garbage":
                self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            else:
                self._send(404, b"not found")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up on purpose (cap or deadline)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _endless(self) -> None:
        # HTTP/1.0 with no Content-Length: the body ends only when the server closes. It never does
        # within the test, so only a byte cap can end the download.
        self.send_response(200)
        self.end_headers()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.wfile.write(b"y" * 65536)

    def _slow_drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            self.wfile.write(b"z")
            self.wfile.flush()
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
