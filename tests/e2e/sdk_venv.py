"""Real client SDKs as judges, each in a virtual environment of its own (their pins clash with ours).

`sdk_fixture("inference-sdk==1.8.3")` makes a session-scoped pytest fixture whose value is an SdkVenv;
`venv.run(script, env)` runs a Python script with that venv's interpreter (in a subprocess, so nothing of
ours is importable there) and returns the JSON object the script printed on a line starting with RESULT:.
Adding an SDK is one line in tests/e2e/conftest.py: `runpod_sdk = sdk_fixture("runpod==1.12.0")`.

Venvs live in .cache/sdk-venvs/<requirement>-py<major><minor>/, made with `python -m venv` and pip from
the package registry, and are reused between runs: a marker file naming the requirement is written only
once pip succeeded, and a file lock keeps two pytest processes from building the same venv at once.
When the registry cannot be reached the SDK tests are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

VENVS = Path(os.environ.get("SAM3_SDK_VENVS", REPO / ".cache" / "sdk-venvs"))
INSTALL_TIMEOUT_S = 600
RESULT = "RESULT:"


@dataclass(frozen=True)
class SdkVenv:
    requirement: str
    path: Path
    build_seconds: float | None  # None: reused from an earlier run

    @property
    def python(self) -> Path:
        return self.path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    def run(self, script: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> dict:
        """Run `script` in this venv; return the JSON after its RESULT: line (fail with its stderr if none)."""
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        done = subprocess.run([str(self.python), "-c", script], cwd=cwd, env={**clean_env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
        assert lines, f"{self.requirement} script printed no {RESULT} line (exit {done.returncode}):\n" \
                      f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        return json.loads(lines[-1][len(RESULT):])


def venv_dir(requirement: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", requirement)
    return VENVS / f"{slug}-py{sys.version_info.major}{sys.version_info.minor}"


def ensure_venv(requirement: str) -> SdkVenv:
    """The venv for `requirement`, built on first use (about 30 s for inference-sdk) and reused after."""
    path = venv_dir(requirement)
    marker = path / "sam3-sdk-requirement.txt"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text().strip() == requirement:
            return SdkVenv(requirement, path, None)
        started = time.monotonic()
        shutil.rmtree(path, ignore_errors=True)  # a half-built venv from an interrupted run
        _check(subprocess.run([sys.executable, "-m", "venv", str(path)], capture_output=True, text=True),
               requirement, "python -m venv")
        venv = SdkVenv(requirement, path, None)
        pip = [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
               requirement]
        _check(subprocess.run(pip, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S), requirement,
               "pip install")
        marker.write_text(requirement + "\n")
        return SdkVenv(requirement, path, round(time.monotonic() - started, 1))


def _check(done: subprocess.CompletedProcess, requirement: str, step: str) -> None:
    if done.returncode == 0:
        return
    reason = f"{step} for {requirement} failed (is the package registry reachable?):\n{done.stderr[-3000:]}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def sdk_fixture(requirement: str):
    """A session-scoped fixture yielding the SdkVenv of `requirement` (built once, reused across runs)."""

    @pytest.fixture(scope="session")
    def fixture() -> SdkVenv:
        venv = ensure_venv(requirement)
        if venv.build_seconds is not None:
            print(f"\n[sdk-venv] built {requirement} in {venv.build_seconds} s at {venv.path}")
        return venv

    return fixture
