"""A small stand-in for Label Studio's file and token routes on 127.0.0.1, for tests/api/test_compat_label_studio.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.conftest import SAMPLES

PHOTO = (SAMPLES / "chelsea.png").read_bytes()
LEGACY, JWT, ACCESS = "legacy-token-1", "eyJhbGciOi.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.sig", "access-token-9"
SECOND_ASKED = threading.Event()  # the gate of the prefetch test
GATE_WAIT_S = 20  # how long the gated file waits before it answers 404


class FakeLabelStudio(BaseHTTPRequestHandler):
    """Label Studio's file and token routes as far as this backend uses them."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        allowed = self.headers.get("Authorization") in (f"Token {LEGACY}", f"Bearer {ACCESS}")
        if self.path == "/data/upload/gate/second.png":
            SECOND_ASKED.set()
        if self.path == "/data/upload/gate/first.png" and not SECOND_ASKED.wait(GATE_WAIT_S):
            self._send(404, b'{"detail": "the second task\'s file was not asked for while this one waited"}')
        elif self.path.startswith("/presign"):
            self._send(302, b"", {"Location": "http://localhost:9/elsewhere.png"})
        elif self.path.startswith(("/data/upload/", "/data/local-files/?d=")) and allowed:
            self._send(200, PHOTO, {"Content-Type": "image/png"})
        else:
            self._send(401, b'{"detail": "Authentication credentials were not provided."}')

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/token/refresh/" and body.get("refresh") == JWT:
            self._send(200, json.dumps({"access": ACCESS}).encode())
        else:
            self._send(401, b"{}")

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_fake_studio() -> Iterator[str]:
    """Serve FakeLabelStudio on a free port of 127.0.0.1; yields its URL (a fixture's body)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLabelStudio)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
