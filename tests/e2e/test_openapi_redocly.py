"""`redocly lint` (Redocly's recommended rules, as redocly.yaml configures them) passes on /openapi.json.

Redocly CLI comes from npm, pinned, installed once into .cache/npm-tools/ (SAM3_NPM_TOOLS elsewhere, as CI's
cache) and reused, like the SDK venvs of tests/e2e/sdk_venv.py. The document is the one the app serves,
with API keys off and on (keys on adds the security scheme). Lint is offline: telemetry is turned off.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sam3_api.main import create_app
from tests.conftest import REPO, dev_settings

pytestmark = pytest.mark.e2e
REDOCLY = "@redocly/cli@2.77.0"
TOOLS = Path(os.environ.get("SAM3_NPM_TOOLS", REPO / ".cache" / "npm-tools"))
OFFLINE = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redocly() -> Path:
    """The redocly executable, installed by npm on first use (a second or two) and reused after."""
    if shutil.which("npm") is None:
        _unavailable("npm is not installed (Debian: apt-get install nodejs npm)")
    prefix = TOOLS / REDOCLY.replace("@", "").replace("/", "-")
    executable = prefix / "node_modules" / ".bin" / "redocly"
    TOOLS.mkdir(parents=True, exist_ok=True)
    with open(TOOLS / f"{prefix.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not executable.exists():
            done = subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                                   "--loglevel=error", REDOCLY], capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                shutil.rmtree(prefix, ignore_errors=True)
                _unavailable(f"npm install {REDOCLY} failed (is the registry reachable?):\n{done.stderr[-3000:]}")
    return executable


@pytest.mark.parametrize("keys", [[], ["a-key"]], ids=["keys-off", "keys-on"])
def test_redocly_lint_passes_with_the_recommended_rules(redocly, keys, tmp_path):
    document = TestClient(create_app(dev_settings(api_keys=keys))).get("/openapi.json").json()
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    done = subprocess.run([str(redocly), "lint", str(spec), "--config", str(REPO / "redocly.yaml"),
                           "--format", "json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **OFFLINE})
    report = json.loads(done.stdout[done.stdout.index("{"):])
    problems = [f"{p['ruleId']} ({p['severity']}): {p['message']}" for p in report["problems"]]
    assert done.returncode == 0 and report["totals"]["errors"] == 0, "\n".join(problems)
    # the one warning left, until the project names a license (README: "The OpenAPI contract")
    assert {p["ruleId"] for p in report["problems"]} <= {"info-license"}, "\n".join(problems)
