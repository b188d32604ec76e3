"""bench/gpu_report.py works the day a GPU appears: CI runs it on CPU with dev-tiny and a tiny budget, and its
one JSON object carries every figure the GPU run will fill in."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.gpu_report import Budget
from tests.conftest import CACHE_DIR, REPO

pytestmark = pytest.mark.timeout(600)
PROMPT_KINDS = {"text", "box", "points", "auto"}
VIDEO_RUNS = {"box_1", "box_4", "box_16", "text"}


def test_gpu_report_prints_every_figure_on_cpu_with_dev_tiny():
    command = [sys.executable, "bench/gpu_report.py", "--model", "dev-tiny", "--device", "cpu", "--frames", "2",
               "--clicks", "3", "--repeats", "1", "--auto-points-per-side", "2", "--backbone-repeats", "1",
               "--budget-s", "300", "--cache-dir", str(CACHE_DIR)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["skipped"] == [] and report["failed"] == {}
    assert report["device"] == "cpu" and report["precision"] in {"fp32", "bf16"}
    assert report["precision_reason"]
    assert set(report["prompts"]) == PROMPT_KINDS
    for kind in PROMPT_KINDS:
        assert 0 < report["prompts"][kind]["cached_ms"] and 0 < report["prompts"][kind]["cold_ms"]
    assert 0 < report["click_ms"]["p50"] <= report["click_ms"]["p95"] and report["click_ms"]["clicks"] == 3
    assert set(report["video"]) == VIDEO_RUNS | {"warm_up_s"} and report["video"]["warm_up_s"] > 0
    assert all(report["video"][run]["frames_per_s"] > 0 for run in VIDEO_RUNS)
    assert report["backbone_s"] > 0 and report["load_s"] > 0 and report["cache_bytes_per_image"] > 0
    assert set(report["batch_backbone"]["seconds_per_image"]) == {"1", "2", "4"}
    assert set(report["versions"]) >= {"torch", "cuda", "driver", "gpu"} and report["versions"]["torch"]
    # GPU-only figures are present, null on a CPU run.
    assert report["peak_gpu_memory_bytes"] is None and report["versions"]["driver"] is None


def test_sections_past_the_budget_are_skipped_and_named():
    now = [0.0]
    budget = Budget(10.0, clock=lambda: now[0])
    assert budget.run("first", lambda: 1) == 1
    now[0] = 10.5
    assert budget.run("second", lambda: 2) is None
    assert budget.skipped == ["second"] and budget.elapsed() == 10.5


def test_a_failing_section_is_named_with_its_error_and_the_next_one_runs():
    budget = Budget(10.0, clock=lambda: 0.0)
    assert budget.run("broken", lambda: 1 / 0) is None
    assert budget.run("next", lambda: 3) == 3
    assert budget.failed == {"broken": "ZeroDivisionError: division by zero"} and budget.skipped == []
