"""What the WebSocket benches share: uvicorn serving create_app() in this process, and reading socket events."""

from __future__ import annotations

import json
import threading
import time

import uvicorn

from sam3_api.config import Settings
from sam3_api.main import create_app


def start_server(settings: Settings):
    """(app, server, thread, "127.0.0.1:<port>"): uvicorn on a free loopback port, in a background thread."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                          ws_max_size=64 * 1024**2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return app, server, thread, f"127.0.0.1:{port}"


def receive(ws, kind: str) -> dict:
    """Next event of `kind`, skipping others (e.g. point_added); an error event aborts the run."""
    while True:
        event = json.loads(ws.recv())
        if event["type"] == kind:
            return event
        if event["type"] == "error":
            raise RuntimeError(f"server error: {event}")
