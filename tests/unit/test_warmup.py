"""The warm-up (engine/warmup.py) runs every image path once before ready, outside the caches and metrics;
SAM3_WARMUP=false skips it; a model that cannot run one blank image is reported failed, with the reason."""

from __future__ import annotations

import pytest

from sam3_api.engine import warmup
from sam3_api.engine.engine import Sam3Engine
from tests.conftest import dev_settings


def loaded(**overrides) -> Sam3Engine:
    engine = Sam3Engine(dev_settings(**overrides))
    engine.wait_ready(timeout=300)
    return engine


@pytest.mark.parametrize("enabled", [True, False])
def test_the_warm_up_runs_the_model_before_ready_and_leaves_no_trace_in_caches_or_metrics(enabled, monkeypatch):
    calls = []
    original = warmup.warm_up
    monkeypatch.setattr(warmup, "warm_up", lambda runtime: calls.append(runtime) or original(runtime))
    engine = loaded(warmup=enabled)
    try:
        assert engine.status.ready
        assert len(calls) == int(enabled)
        # the text path ran (its features are kept: "object" is also automatic mode's category)
        assert (warmup.WARMUP_TEXT in engine.runtime._text_cache) is enabled
        assert len(engine.cache) == 0 and engine.backbone_runs == 0  # no user's image was cached or counted
    finally:
        engine.stop()


def test_a_model_that_fails_its_warm_up_is_reported_failed_with_the_reason(monkeypatch):
    def out_of_memory(runtime):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(warmup, "warm_up", out_of_memory)
    engine = loaded()
    try:
        assert engine.status.state == "failed" and "out of memory" in engine.status.error
        assert engine.status.attempts == 1  # not retried: a model that cannot run one image will not next time
    finally:
        engine.stop()
