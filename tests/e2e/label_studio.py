"""A real Label Studio (the `label-studio` package, in a venv of its own) on 127.0.0.1, for the ML-backend judge.

`LabelStudio.start(venv, data_dir, files_root)` runs `label-studio start` on sqlite in `data_dir` with a
legacy API token (`--enable-legacy-api-token`), ML_BLOCK_LOCAL_IP=false and SSRF_PROTECTION_ENABLED=false (so
it accepts a backend on 127.0.0.1), LATEST_VERSION_CHECK=false (no call out at start), LABEL_STUDIO_HOST set
to its own URL (the `hostname` it sends in /setup) and, given `files_root`, local-files serving from that
folder (a local storage's tasks then carry `<LABEL_STUDIO_HOST>/data/local-files/?d=<path under it>`).
`.api` is a requests session with that token. The first start on a fresh database runs Django's migrations
(about 2 minutes on 2 busy cores); the database as it stands right after that start (migrated, the judge user
and its token, nothing else) is kept beside the venv and copied into each later run's data directory, which
then starts in about 10-25 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import requests

from tests.e2e.conftest import _free_port, _tail
from tests.e2e.sdk_venv import SdkVenv

TOKEN = "sam3judge0123456789abcdef0123456789abcdef"
STARTUP_TIMEOUT_S = 420
DATABASE = "label_studio.sqlite3"
TEMPLATE = "migrated-label-studio.sqlite3"  # in the venv's directory: one per Label Studio version


class LabelStudio:
    def __init__(self, process: subprocess.Popen, url: str, log_path: Path):
        self.process, self.url, self.log_path = process, url, log_path
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Token {TOKEN}"

    @classmethod
    def start(cls, venv: SdkVenv, data_dir: Path, files_root: Path | None = None) -> "LabelStudio":
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "SAM3_"))}
        env.update(LABEL_STUDIO_BASE_DATA_DIR=str(data_dir), ML_BLOCK_LOCAL_IP="false", LABEL_STUDIO_HOST=url,
                   SSRF_PROTECTION_ENABLED="false", LATEST_VERSION_CHECK="false", PYTHONUNBUFFERED="1")
        if files_root is not None:
            env.update(LOCAL_FILES_SERVING_ENABLED="true", LOCAL_FILES_DOCUMENT_ROOT=str(files_root))
        command = [str(venv.path / "bin" / "label-studio"), "start", "--no-browser", "--data-dir", str(data_dir),
                   "--internal-host", "127.0.0.1", "--port", str(port), "--username", "judge@example.com",
                   "--password", "judge-password-1", "--user-token", TOKEN, "--enable-legacy-api-token"]
        log_path = data_dir / "label-studio.log"
        template = venv.path / TEMPLATE
        if template.exists():
            shutil.copyfile(template, data_dir / DATABASE)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data_dir,
                                       start_new_session=True)
        studio = cls(process, url, log_path)
        studio._wait_until_up()
        if not template.exists():
            _snapshot(data_dir / DATABASE, template)
        return studio

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.process.returncode}:\n{_tail(self.log_path)}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"Label Studio was not up within {STARTUP_TIMEOUT_S} s:\n{_tail(self.log_path)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> dict | list:
        response = self.api.request(method, f"{self.url}{path}", timeout=300, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response.json()

    def project(self, title: str, label_config: str, images: list[Path]) -> int:
        """A project with one task per uploaded image."""
        project = self.call("POST", "/api/projects", 201, json={"title": title, "label_config": label_config})
        files = [(f"file{i}", (path.name, path.read_bytes(), "image/png")) for i, path in enumerate(images)]
        if files:
            self.call("POST", f"/api/projects/{project['id']}/import", 201, files=files)
        return project["id"]

    def local_storage(self, project: int, folder: Path, regex: str) -> None:
        """A local-files import storage on `folder` (under files_root), synced: one task per matching file."""
        storage = self.call("POST", "/api/storages/localfiles", 201, json={
            "project": project, "title": "samples", "path": str(folder), "regex_filter": regex,
            "use_blob_urls": True})
        self.call("POST", f"/api/storages/localfiles/{storage['id']}/sync")

    def personal_access_token(self) -> str:
        """A new personal access token of the judge user (a JWT refresh token)."""
        return self.call("POST", "/api/token/", 201)["token"]

    def connect(self, project: int, backend_url: str, password: str, expect: int = 201) -> dict:
        """Label Studio's "Connect model" with Basic auth (user name unused, the API key as password)."""
        return self.call("POST", "/api/ml", expect, json={
            "url": backend_url, "project": project, "title": "SAM 3", "auth_method": "BASIC_AUTH",
            "basic_auth_user": "label-studio", "basic_auth_pass": password, "is_interactive": True})

    def retrieve_predictions(self, project: int) -> list[dict]:
        """The data manager's "Retrieve predictions" on every task, then the predictions Label Studio stored."""
        self.call("POST", "/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": project},
                  json={"selectedItems": {"all": True, "excluded": []}})
        return self.call("GET", "/api/predictions", params={"project": project})

    def tasks(self, project: int) -> list[dict]:
        return self.call("GET", "/api/tasks", params={"project": project, "page_size": 100})["tasks"]


def _snapshot(database: Path, template: Path) -> None:
    """A consistent copy of the live database (sqlite's backup API), moved into place only once complete."""
    partial = template.with_suffix(".partial")
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(partial)) as target:
        source.backup(target)
    partial.replace(template)
