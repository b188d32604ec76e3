"""`SAM3_MODEL=dev-tiny ./start_server.sh` (the README's offline start) serves /health with the model loaded."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.conftest import CACHE_DIR, REPO
from tests.e2e.conftest import _free_port, _health

pytestmark = pytest.mark.e2e


def test_start_server_script_serves_health_with_the_dev_model(tmp_path):
    port = _free_port()
    env = {**os.environ, "SAM3_MODEL": "dev-tiny", "SAM3_CACHE_DIR": str(CACHE_DIR), "PORT": str(port),
           "HOST": "127.0.0.1"}
    log = open(tmp_path / "server.log", "wb")
    process = subprocess.Popen(["bash", "./start_server.sh"], cwd=REPO, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        body = None
        deadline = time.monotonic() + 300  # on a machine without .venv the first run installs
        while time.monotonic() < deadline and process.poll() is None:
            body = _health(f"http://127.0.0.1:{port}")
            if body and body["model_loaded"]:
                break
            time.sleep(0.5)
        assert body is not None, (tmp_path / "server.log").read_text(errors="replace")[-3000:]
        assert body["model_loaded"] is True and body["model"] == "dev-tiny" and body["status"] == "running"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
