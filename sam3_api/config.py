"""One settings class for the whole server (pydantic-settings).

Every SAM3_* environment variable maps to a field here (SAM3_MODEL -> model, ...). HOST, PORT, LOG_LEVEL,
HF_TOKEN / HUGGINGFACE_HUB_TOKEN and TORCH_NUM_THREADS keep their conventional unprefixed names.
Tests override settings by passing Settings(...) to create_app(); nothing else reads os.environ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

DEV_MODEL_NAME = "dev-tiny"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "sam3-api"


class Settings(BaseSettings):
    """Server configuration; see the README's settings table for each variable."""

    model_config = SettingsConfigDict(env_prefix="SAM3_", env_file=None, extra="ignore", populate_by_name=True)

    # --- model ---
    model: str = Field("facebook/sam3", description="Hub id or local directory of a SAM 3 checkpoint, or dev-tiny.")
    device: Literal["auto", "cuda", "cpu"] = "auto"
    hf_token: str | None = Field(
        None, validation_alias=AliasChoices("HF_TOKEN", "HUGGINGFACE_HUB_TOKEN", "SAM3_HF_TOKEN"), repr=False
    )
    torch_num_threads: int | None = Field(None, ge=1, le=512, validation_alias=AliasChoices("TORCH_NUM_THREADS"))
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="Where dev-tiny is generated.")

    # --- model worker and embedding cache ---
    max_queue: int = Field(16, ge=1, le=10_000, description="Model jobs waiting beyond this answer 503.")
    embedding_cache_entries: int = Field(8, ge=0, le=10_000)
    embedding_cache_bytes: int = Field(2 * 1024**3, ge=0)

    # --- input limits ---
    max_upload_bytes: int = Field(25 * 1024**2, ge=1024)
    max_image_pixels: int = Field(50_000_000, ge=1024, description="Width x height, checked before decoding.")
    max_text_length: int = Field(200, ge=1, le=10_000)
    max_prompts: int = Field(64, ge=1, le=10_000, description="Boxes, points or texts in one request.")
    max_masks: int = Field(256, ge=1, le=100_000, description="Most masks one answer carries (best first).")

    # --- URL inputs (SSRF protection) ---
    url_allow_private: bool = False
    url_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    url_timeout_s: float = Field(15.0, gt=0, le=600)
    url_max_redirects: int = Field(5, ge=0, le=20)

    # --- HTTP ---
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])

    # --- WebSocket sessions ---
    ws_max_sessions: int = Field(32, ge=1, le=10_000)
    ws_idle_ttl_s: float = Field(600.0, gt=0)

    # --- scale-out ---
    replica_id: str | None = Field(None, description="Names this replica in X-Sam3-Replica; default hostname:pid.")

    # --- process ---
    host: str = Field("0.0.0.0", validation_alias=AliasChoices("HOST", "SAM3_HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=AliasChoices("PORT", "SAM3_PORT"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL", "SAM3_LOG_LEVEL"))

    @model_validator(mode="before")
    @classmethod
    def _split_comma_lists(cls, data):
        """Accept comma-separated strings for list settings (SAM3_CORS_ORIGINS=a,b)."""
        if isinstance(data, dict):
            for key in ("cors_origins", "url_allow_hosts"):
                value = data.get(key)
                if isinstance(value, str):
                    data[key] = [item.strip() for item in value.split(",") if item.strip()]
        return data

    @model_validator(mode="after")
    def _check_cache_budget(self) -> "Settings":
        if self.embedding_cache_entries > 0 and self.embedding_cache_bytes == 0:
            raise ValueError("SAM3_EMBEDDING_CACHE_BYTES=0 with entries > 0 would cache nothing; set both to 0")
        return self

    @property
    def is_dev_model(self) -> bool:
        return self.model == DEV_MODEL_NAME
