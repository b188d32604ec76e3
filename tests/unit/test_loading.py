"""Model loading: transient failures are retried with backoff (and shown in /health), permanent ones fail at once."""

from __future__ import annotations

import threading

import httpx2
import pytest
from fastapi.testclient import TestClient
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

import sam3_api.engine.loading as loading_module
from sam3_api.engine.loading import backoff_delay, is_transient
from sam3_api.main import create_app
from tests.conftest import dev_settings


def _hub_error(cls, status: int):
    request = httpx2.Request("GET", "https://huggingface.co/facebook/sam3/resolve/main/config.json")
    return cls(f"{status} error", response=httpx2.Response(status, request=request))


def _wrapped(cause: BaseException) -> OSError:
    """What transformers raises: an OSError whose cause is the hub's own error."""
    try:
        raise OSError("transformers could not load the checkpoint") from cause
    except OSError as exc:
        return exc


@pytest.mark.parametrize("cause", [ConnectionResetError("reset"), TimeoutError("timed out"),
                                   httpx2.ConnectError("refused"), LocalEntryNotFoundError("no network"),
                                   _hub_error(HfHubHTTPError, 503), _hub_error(HfHubHTTPError, 429)])
def test_network_failures_and_overloaded_hubs_are_transient(cause):
    assert is_transient(_wrapped(cause)) and is_transient(cause)


@pytest.mark.parametrize("cause", [_hub_error(GatedRepoError, 401), _hub_error(HfHubHTTPError, 403),
                                   FileNotFoundError("no config.json"), ValueError("not a SAM 3 config")])
def test_gated_repos_missing_files_and_bad_checkpoints_are_permanent(cause):
    assert not is_transient(_wrapped(cause)) and not is_transient(cause)


def test_backoff_doubles_from_the_setting_and_is_capped_at_a_minute():
    assert [backoff_delay(attempt, 2.0) for attempt in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_delay(20, 2.0) == 60.0


def test_a_transient_load_failure_is_retried_and_health_shows_the_retry(monkeypatch):
    real_load = loading_module.load_runtime
    second_attempt, resume = threading.Event(), threading.Event()
    calls = []

    def flaky_load(settings):
        calls.append(len(calls) + 1)
        if len(calls) == 2:
            second_attempt.set()
            resume.wait(10)
        if len(calls) <= 2:
            raise _wrapped(ConnectionResetError("connection reset by peer"))
        return real_load(settings)

    monkeypatch.setattr(loading_module, "load_runtime", flaky_load)
    app = create_app(dev_settings(load_retry_backoff_s=0.05))
    with TestClient(app) as client:
        assert second_attempt.wait(10)
        health = client.get("/health").json()
        assert health["state"] == "loading" and health["load_attempts"] == 1
        assert "attempt 1 of 6 failed" in health["message"] and "retrying in" in health["message"]
        assert client.get("/health/ready").status_code == 503
        resume.set()
        assert app.state.services.engine.wait_ready(120).ready
        assert client.get("/health").json()["load_attempts"] == 3 and calls == [1, 2, 3]


def test_a_permanent_load_failure_fails_at_once_with_its_hint(monkeypatch):
    calls = []

    def gated(settings):
        calls.append(1)
        raise _wrapped(_hub_error(GatedRepoError, 401))

    monkeypatch.setattr(loading_module, "load_runtime", gated)
    app = create_app(dev_settings(load_retry_backoff_s=0.05))
    with TestClient(app) as client:
        assert app.state.services.engine.wait_ready(30).state == "failed"
        health = client.get("/health").json()
    assert calls == [1] and health["status"] == "error" and "HF_TOKEN" in health["message"]


def test_retries_stop_after_the_configured_number(monkeypatch):
    calls = []

    def offline(settings):
        calls.append(1)
        raise _wrapped(ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(loading_module, "load_runtime", offline)
    app = create_app(dev_settings(load_retries=2, load_retry_backoff_s=0.01))
    with TestClient(app):
        status = app.state.services.engine.wait_ready(30)
    assert len(calls) == 3 and status.state == "failed" and "check network access" in status.error
