"""schemathesis, every check and every phase (stateful included), against the real dev-tiny server.

The server and schemathesis run together in a network namespace of their own (`unshare -n`, loopback
only), so no URL the fuzzer makes up can reach another host. The run is bounded (--max-examples 2, a fixed
seed) to fit CI; its JUnit report is read back and must hold no failure and no 5xx. The deliberate
exceptions live in tests/e2e/schemathesis.toml and are listed with their reasons in README.md.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.conftest import CACHE_DIR, REPO

pytestmark = pytest.mark.e2e
PORT = 18817
SEED = 17
ST = Path(sys.executable).with_name("st")
RUN_LIMIT_S = 600


def _in_own_network(script: str) -> list[str]:
    """`unshare -n` as root (CI); elsewhere a user namespace gives the same private network (`-r`)."""
    flags = "-n" if os.geteuid() == 0 else "-rn"
    return ["unshare", flags, "bash", "-c", "ip link set lo up && " + script]


def _script(workdir: Path) -> str:
    env = (f"SAM3_MODEL=dev-tiny SAM3_CACHE_DIR={shlex.quote(str(CACHE_DIR))} "
           f"SAM3_DATA_DIR={shlex.quote(str(workdir / 'data'))}")
    base = f"http://127.0.0.1:{PORT}"
    server = (f"(cd {shlex.quote(str(REPO))} && {env} exec {shlex.quote(sys.executable)} -m uvicorn app:app "
              f"--host 127.0.0.1 --port {PORT} --log-level warning) > server.log 2>&1 & SERVER=$!")
    ready = (f"for i in $(seq 1 240); do curl -sf {base}/health/ready >/dev/null && break; sleep 0.5; done")
    fuzz = (f"{shlex.quote(str(ST))} run {base}/openapi.json --checks all --max-examples 2 --seed {SEED} "
            f"--workers 1 --request-timeout 120 --report junit --report-junit-path junit.xml "
            f"--no-color > st.out 2>&1; echo $? > st.rc")
    return f"{server}; {ready}; {fuzz}; kill $SERVER; wait $SERVER || true"


def _cases(junit: Path) -> list[tuple[str, str]]:
    """(operation, failure text) for every failed test case of the report."""
    failed = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        for problem in [*case.iter("failure"), *case.iter("error")]:
            failed.append((case.get("name", "?"), (problem.get("message") or "") + (problem.text or "")))
    return failed


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for a private network")
def test_schemathesis_finds_no_failure_and_no_server_error(tmp_path):
    shutil.copy(REPO / "tests" / "e2e" / "schemathesis.toml", tmp_path / "schemathesis.toml")
    subprocess.run(_in_own_network(_script(tmp_path)), cwd=tmp_path, timeout=RUN_LIMIT_S, check=True)
    output = (tmp_path / "st.out").read_text()
    assert (tmp_path / "junit.xml").exists(), f"schemathesis wrote no report:\n{output[-4000:]}"
    failed = _cases(tmp_path / "junit.xml")
    assert not failed, "\n\n".join(f"{name}: {text[:1500]}" for name, text in failed) + f"\n\n{output[-3000:]}"
    assert " 5" not in output.split("Test cases:")[-1] or "Server error" not in output, output[-3000:]
    assert (tmp_path / "st.rc").read_text().strip() == "0", output[-4000:]
