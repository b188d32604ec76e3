"""SIGTERM on the real server (`python -m tests.faultapp`: app.py's serve(), SAM3_SHUTDOWN_GRACE_S wired into
uvicorn): new connections are refused, the request in flight completes, and the process exits in the grace."""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest
import requests

from tests.e2e.ops_server import BOX, image_upload, launch, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _in_flight(server, results: list) -> threading.Thread:
    """Start a request whose encode is slowed down, and return once the model is working on it."""
    encodes = server.state()["calls"].get("encode", 0)
    thread = threading.Thread(target=lambda: results.append(_post(server)), daemon=True)
    thread.start()
    wait_for(lambda: server.state()["calls"].get("encode", 0) > encodes)
    return thread


def _post(server):
    try:
        return requests.post(f"{server.base_url}/segment/box", files=image_upload(7), data=BOX, timeout=60)
    except requests.RequestException as exc:
        return exc


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_sigterm_lets_the_request_in_flight_finish_and_exits_within_the_grace_period(tmp_path):
    server = launch(tmp_path, {"SAM3_SHUTDOWN_GRACE_S": "10"})
    try:
        server.faults(mode="slow", on="encode", seconds=2.0)
        results: list = []
        thread = _in_flight(server, results)
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        wait_for(lambda: _refuses_connections(server.port), timeout=5)  # no new connections while draining
        server.process.wait(timeout=15)
        exited = time.monotonic() - sent
        thread.join(5)
    finally:
        server.stop()
    assert isinstance(results[0], requests.Response) and results[0].status_code == 200
    assert results[0].json()["num_masks"] == 1
    # uvicorn re-raises the signal once its shutdown is complete, so the status reports SIGTERM
    assert server.process.returncode in (0, -signal.SIGTERM) and exited < 10
    assert "Waiting for connections to close" in server.log() and "Application shutdown complete" in server.log()


def test_a_request_longer_than_the_grace_period_is_cut_and_the_process_still_exits(tmp_path):
    server = launch(tmp_path, {"SAM3_SHUTDOWN_GRACE_S": "1"})
    try:
        server.faults(mode="slow", on="encode", seconds=3.0)
        results: list = []
        thread = _in_flight(server, results)
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=20)
        exited = time.monotonic() - sent
        thread.join(5)
    finally:
        server.stop()
    assert not (isinstance(results[0], requests.Response) and results[0].status_code == 200)
    # the grace (1 s), then the lifespan's shutdown waits for the model thread's current step (at most 5 s)
    assert exited < 1 + 5 + 2, exited
    assert "timeout graceful shutdown exceeded" in server.log()
