"""schemathesis, every check and every phase (stateful included), against the real dev-tiny server.

The server and schemathesis run together in a network namespace of their own (`unshare -n`, loopback
only), so no URL the fuzzer makes up can reach another host. The run is bounded (--max-examples 2, a fixed
seed) to fit CI, then the stateful phase runs again with 20 scenarios, which must follow at least one link
from a creating operation; both JUnit reports are read back and must hold no failure and no 5xx. The deliberate
exceptions live in tests/e2e/schemathesis.toml and are listed with their reasons in README.md.
"""

from __future__ import annotations

import os
import re
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
STATEFUL_SCENARIOS = 20
# Deliberate exceptions, each (operation, schemathesis code) with why; README.md ("The OpenAPI contract") lists
# them too. Anything else, and any 5xx, fails the test. ST201: invalid data accepted; ST202: valid data refused.
CROSS_FIELD = "a rule across fields, which JSON Schema cannot state: "
FORM_TEXT = "a multipart value is text, read as a form sends it: "
DELIBERATE = {
    ("POST /sam3/concept_segment", "ST202"): CROSS_FIELD + "one box_labels entry per box (equal lengths)",
    ("POST /segment/points", "ST202"): CROSS_FIELD + "points refine exactly one box",
    ("POST /segment/points/base64", "ST202"): CROSS_FIELD + "points refine exactly one box",
    ("POST /segment/box", "ST202"): CROSS_FIELD + "a box is not empty or inverted (x1 < x2, y1 < y2)",
    ("POST /segment/text", "ST202"): CROSS_FIELD + "an exemplar box is not empty or inverted (x1 < x2)",
    ("POST /video/jobs", "ST202"): CROSS_FIELD + "end_frame >= start_frame",
    ("POST /video/uploads", "ST202"): CROSS_FIELD + "end_frame >= start_frame",
    ("POST /segment/box/base64", "ST202"): CROSS_FIELD + "a box is not empty or inverted (x1 < x2, y1 < y2)",
    ("POST /batch/jobs", "ST202"): FORM_TEXT + "`annotations` must be valid JSON text, which a pattern can only "
                                   "approximate (it checks for braces)",
    ("POST /label-studio/predict", "ST202"): "label_config must be a Label Studio labeling config (XML with a "
                                             "BrushLabels, PolygonLabels or RectangleLabels bound to an Image)",
    ("POST /segment", "ST201"): FORM_TEXT + "an object sent as seed 001's `prompts` arrives as the text '{}', "
                                "a valid prompt",
    ("POST /segment/auto", "ST201"): FORM_TEXT + "'0' / '1' are booleans, as HTML forms and curl users send them",
    ("POST /segment/text", "ST201"): FORM_TEXT + "an empty field is no field (exemplar_boxes='' with a text)",
    ("POST /segment/text/base64", "ST201"): "list fields also take comma-separated text ('cat,dog'), as seed 000's "
                                            "clients send them",
}


def _in_own_network(script: str) -> list[str]:
    """`unshare -n` as root (CI); elsewhere a user namespace gives the same private network (`-r`). A process
    namespace of its own too (`-pf`): when the script ends, the kernel ends every process it left, such as
    a worker the server forked, which a SIGTERM to the server alone leaves behind."""
    flags = "-npf" if os.geteuid() == 0 else "-rnpf"
    return ["unshare", flags, "bash", "-c", "ip link set lo up && " + script]


def _script(workdir: Path) -> str:
    env = (f"SAM3_MODEL=dev-tiny SAM3_CACHE_DIR={shlex.quote(str(CACHE_DIR))} "
           f"SAM3_DATA_DIR={shlex.quote(str(workdir / 'data'))}")
    base = f"http://127.0.0.1:{PORT}"
    server = (f"(cd {shlex.quote(str(REPO))} && {env} exec {shlex.quote(sys.executable)} -m uvicorn app:app "
              f"--host 127.0.0.1 --port {PORT} --log-level warning) > server.log 2>&1 & SERVER=$!")
    ready = (f"for i in $(seq 1 240); do curl -sf {base}/health/ready >/dev/null && break; sleep 0.5; done")
    run = f"{shlex.quote(str(ST))} run {base}/openapi.json --checks all --seed {SEED} --workers 1 --request-timeout 120"
    fuzz = f"{run} --max-examples 2 --report junit --report-junit-path junit.xml --no-color > st.out 2>&1"
    # The stateful phase again with more scenarios (seconds), enough to create jobs and follow their links, with
    # the X-Request-ID parameter out of schemathesis' sight (schemathesis_hooks.py says why).
    hooks = f"PYTHONPATH={shlex.quote(str(Path(__file__).parent))} SCHEMATHESIS_HOOKS=schemathesis_hooks"
    stateful = (f"{hooks} {run} --phases stateful --max-examples {STATEFUL_SCENARIOS} --report junit "
                f"--report-junit-path junit-stateful.xml --no-color > st-stateful.out 2>&1")
    return f"{server}; {ready}; {fuzz}; {stateful}; kill $SERVER; wait $SERVER || true"


def _failures(junit: Path) -> dict[tuple[str, str], str]:
    """(operation, schemathesis code, e.g. ST202) -> the report's text, for every failure in the report."""
    failed = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        for problem in [*case.iter("failure"), *case.iter("error")]:
            text = (problem.get("message") or "") + "\n" + (problem.text or "")
            for code in set(re.findall(r"\b(ST\d{3}|E\d{3})\b", text)) or {"error"}:
                failed[(case.get("name", "?"), code)] = text
    return failed


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for a private network")
def test_schemathesis_finds_no_failure_and_no_server_error(tmp_path):
    shutil.copy(REPO / "tests" / "e2e" / "schemathesis.toml", tmp_path / "schemathesis.toml")
    subprocess.run(_in_own_network(_script(tmp_path)), cwd=tmp_path, timeout=RUN_LIMIT_S, check=True)
    for report, out in (("junit.xml", "st.out"), ("junit-stateful.xml", "st-stateful.out")):
        output = (tmp_path / out).read_text()
        assert (tmp_path / report).exists(), f"schemathesis wrote no report:\n{output[-4000:]}"
        failed = _failures(tmp_path / report)
        new = {key: text for key, text in failed.items() if key not in DELIBERATE}
        assert not new, "\n\n".join(f"{key}: {text[:1500]}" for key, text in new.items())
        assert "Server error" not in output and "ST100" not in output, output[-4000:]  # no 5xx anywhere
        assert "Test cases:" in output, output[-4000:]  # the run got to its summary
    # Scenarios start from the creating operations and follow their links to the routes that take the new ids
    stateful = (tmp_path / "st-stateful.out").read_text()
    covered = re.search(r"API Links:\s+(\d+) covered", stateful)
    assert covered and int(covered.group(1)) > 0, stateful[-4000:]
