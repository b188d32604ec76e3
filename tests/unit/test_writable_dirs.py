"""The start-up check of the directories the server writes (sam3_api/writable_dirs.py).

Tests run as root, which may write anywhere, so a directory is made unwritable by putting it under a regular
file (mkdir fails with "Not a directory"); the container tests show the real case, a root-owned bind mount.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sam3_api.config import Settings
from sam3_api.writable_dirs import directories_to_write, require_writable_dirs
from tests.conftest import REPO


def test_writable_directories_are_created_and_pass(tmp_path):
    settings = Settings(model="dev-tiny", cache_dir=tmp_path / "cache", data_dir=tmp_path / "data" / "jobs")
    require_writable_dirs(settings)
    assert (tmp_path / "data" / "jobs").is_dir() and (tmp_path / "cache").is_dir()


def test_hub_model_adds_the_hugging_face_cache_and_a_local_checkpoint_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    names = [name for name, _ in directories_to_write(Settings(model="facebook/sam3", cache_dir=tmp_path))]
    assert names == ["SAM3_DATA_DIR", "SAM3_CACHE_DIR", "HF_HOME"]
    local = [name for name, _ in directories_to_write(Settings(model=str(tmp_path), cache_dir=tmp_path))]
    assert local == ["SAM3_DATA_DIR", "SAM3_CACHE_DIR"]


def test_unwritable_data_dir_exits_with_the_directory_the_uid_and_the_chown(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where a directory should be")
    settings = Settings(model="dev-tiny", cache_dir=tmp_path / "cache", data_dir=blocker / "jobs")
    with pytest.raises(SystemExit) as exited:
        require_writable_dirs(settings)
    message = str(exited.value.code)
    assert f"cannot write {blocker / 'jobs'} (SAM3_DATA_DIR): Not a directory" in message
    assert f"runs as uid {os.getuid()}" in message and f"sudo chown -R {os.getuid()}:{os.getgid()}" in message


def test_app_py_exits_with_status_1_and_no_traceback(tmp_path):
    (tmp_path / "data").write_text("not a directory")
    env = {**os.environ, "SAM3_MODEL": "dev-tiny", "SAM3_CACHE_DIR": str(tmp_path / "cache"),
           "SAM3_DATA_DIR": str(tmp_path / "data" / "jobs")}
    done = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot write" in done.stderr and "SAM3_DATA_DIR" in done.stderr
