"""Settings come from the documented variables; the dev checkpoint is deterministic and hub-shaped."""

from __future__ import annotations

import hashlib
import json

import pytest
from fastapi.testclient import TestClient

from sam3_api.config import Settings
from sam3_api.engine.devmodel import MARKER_FILE, dev_tiny_config, dev_tokenizer, write_checkpoint
from sam3_api.main import create_app
from tests.conftest import dev_settings


@pytest.mark.parametrize("variable", ["HF_TOKEN", "HUGGINGFACE_HUB_TOKEN"])
def test_both_hugging_face_token_variables_are_honoured(monkeypatch, variable):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv(variable, "hf_secret")
    settings = Settings()
    assert settings.hf_token == "hf_secret"
    assert "hf_secret" not in repr(settings), "the token must never appear in logs"


def test_process_variables_and_lists_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("SAM3_MODEL", "dev-tiny")
    monkeypatch.setenv("SAM3_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SAM3_URL_ALLOW_HOSTS", "images.internal")
    monkeypatch.setenv("TORCH_NUM_THREADS", "3")
    settings = Settings()
    assert settings.port == 9001 and settings.is_dev_model and settings.torch_num_threads == 3
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.url_allow_hosts == ["images.internal"]


def test_invalid_settings_are_refused_at_start(monkeypatch):
    monkeypatch.setenv("SAM3_DEVICE", "tpu")
    with pytest.raises(ValueError):
        Settings()


def _weights_digest(path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_dev_checkpoint_is_deterministic_and_laid_out_like_the_hub(tmp_path):
    tokenizer = dev_tokenizer()
    write_checkpoint(tmp_path / "a", dev_tiny_config(tokenizer), tokenizer)
    write_checkpoint(tmp_path / "b", dev_tiny_config(tokenizer), tokenizer)
    assert _weights_digest(tmp_path / "a") == _weights_digest(tmp_path / "b")
    files = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", MARKER_FILE} <= files
    assert json.loads((tmp_path / "a" / "config.json").read_text())["model_type"] == "sam3_video"


def test_cors_allows_every_origin_by_default_without_credentials():
    with TestClient(create_app(dev_settings())) as client:
        response = client.options("/segment/text", headers={"Origin": "https://app.example",
                                                             "Access-Control-Request-Method": "POST"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_cors_origins_are_configurable():
    with TestClient(create_app(dev_settings(cors_origins=["https://app.example"]))) as client:
        allowed = client.get("/health", headers={"Origin": "https://app.example"})
        other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers


def test_an_app_and_its_engine_share_one_settings_object_and_a_drifting_copy_is_refused(engine):
    from sam3_api.main import create_app

    settings = dev_settings(url_allow_hosts=["127.0.0.1"])  # app-only fields may differ from the engine's
    app = create_app(settings, engine=engine)
    assert app.state.services.settings is settings and engine.settings is settings
    with pytest.raises(ValueError, match="max_prompts"):
        create_app(dev_settings(max_prompts=3), engine=engine)  # the engine checks prompts against its own
