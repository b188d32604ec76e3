"""The fault-injection server (tests/faultapp.py) as a real process, and small clients for the ops tests.

`launch(log_dir, env)` starts `python -m tests.faultapp` (app.py's server plus /_test/faults) on 127.0.0.1
and a free port, waits until the model is loaded and returns a FaultServer: base URL, process, log file,
and helpers to set faults, scrape /metrics with prometheus-client's parser, and send raw HTTP requests that
can be abandoned half-way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CACHE_DIR, REPO, png_bytes, random_image
from tests.e2e.conftest import _free_port, _wait_until_ready


@dataclass
class FaultServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def faults(self, **plan) -> dict:
        """Replace the fault plan (mode, on, seconds, times); returns the primitive call counts so far."""
        response = requests.post(f"{self.base_url}/_test/faults", json=plan, timeout=10)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict:
        return requests.get(f"{self.base_url}/_test/faults", timeout=10).json()

    def metrics(self) -> dict[tuple, float]:
        """Every sample of /metrics, keyed by (name, sorted label items), parsed by prometheus-client."""
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=10) as response:
            text = response.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def sample(metrics: dict[tuple, float], name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def launch(log_dir: Path, env: dict[str, str] | None = None) -> FaultServer:
    port = _free_port()
    log_path = log_dir / "server.log"
    server_env = {**os.environ, "SAM3_MODEL": "dev-tiny", "SAM3_CACHE_DIR": str(CACHE_DIR), "PYTHONUNBUFFERED": "1",
                  "HOST": "127.0.0.1", "PORT": str(port), **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "tests.faultapp"], cwd=REPO, env=server_env, stdout=log,
                                   stderr=subprocess.STDOUT)
    server = FaultServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_ready(process, server.base_url, log_path)
    except BaseException:
        server.stop()
        raise
    return server


# JSON logs; short deadlines so the tests of them stay short; a queue long enough for twelve abandoned requests.
FAULT_SERVER_ENV = {"LOG_FORMAT": "json", "SAM3_REQUEST_TIMEOUT_S": "3", "SAM3_BODY_TIMEOUT_S": "1",
                    "SAM3_MAX_QUEUE": "32"}


@pytest.fixture(scope="session")
def fault_server(tmp_path_factory):
    """One fault-injection server for the session's fault and load tests (they reset faults themselves)."""
    server = launch(tmp_path_factory.mktemp("fault-server"), FAULT_SERVER_ENV)
    yield server
    server.stop()


def image_upload(seed: int, height: int = 48, width: int = 64) -> dict:
    """A distinct small PNG per seed: a new image means a new encode (heavy work)."""
    return {"image": (f"img{seed}.png", png_bytes(random_image(height, width, seed=seed)), "image/png")}


BOX = {"x1": 2, "y1": 2, "x2": 40, "y2": 30}


def raw_request(server: FaultServer, path: str, files: dict, data: dict) -> socket.socket:
    """Send a complete multipart POST over a raw socket and return the socket unread (to abandon it)."""
    prepared = requests.Request("POST", f"{server.base_url}{path}", files=files, data=data).prepare()
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in prepared.headers.items()]
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + prepared.body)
    return sock


def wait_for(condition, timeout: float = 15.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
