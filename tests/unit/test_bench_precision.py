"""bench/precision.py, the check that starts the server the newcomer's way twice (SAM3_PRECISION=fp32, then the
default), keeps working: CI runs it on dev-tiny; at full size it is the same script with --full."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import CACHE_DIR, REPO

pytestmark = pytest.mark.timeout(600)
KINDS = ("box", "points", "text")


def test_precision_check_starts_the_server_twice_and_prints_both_runs_and_their_ratios():
    env = {**os.environ, "SAM3_CACHE_DIR": str(CACHE_DIR), "SAM3_DATA_DIR": tempfile.mkdtemp(prefix="sam3-bench-")}
    command = [sys.executable, "bench/precision.py", "--model", "dev-tiny", "--clicks", "3", "--load-timeout", "300",
               "--rounds", "2"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    fp32, default, comparison = report["fp32"], report["default"], report["comparison"]
    assert fp32["health"]["precision"] == "fp32" and fp32["health"]["precision_reason"] == "SAM3_PRECISION=fp32"
    assert default["health"]["precision"] in {"fp32", "bf16"}
    assert default["health"]["precision_reason"].startswith("auto: ")
    for run in (fp32, default):
        assert all(run[f"{kind}_cold_ms"] >= run[f"{kind}_cold_model_ms"] > 0 for kind in KINDS)
        for kind in KINDS:  # two cold samples of each kind, and their median compared
            samples = run[f"{kind}_cold_model_ms_samples"]
            assert len(samples) == 2 and run[f"{kind}_cold_model_ms"] == pytest.approx(sum(samples) / 2, abs=0.1)
        assert 0 < run["click_p50_ms"] <= run["click_p95_ms"] and run["cache_bytes_per_image"] > 0
    expected_bytes = 0.5 if default["health"]["precision"] == "bf16" else 1.0  # bf16 caches hold half the bytes
    assert comparison["cache_bytes_per_image_default_over_fp32"] == expected_bytes
    assert all(comparison[f"{kind}_cold_ms_default_over_fp32"] > 0 for kind in KINDS)
    assert all(0 <= comparison[f"{kind}_mask_iou"] <= 1 for kind in ("box", "points"))
    assert 0 <= comparison["text_mask_iou_mean_best_match"] <= 1
