"""One settings class for the whole server (pydantic-settings).

Every SAM3_* environment variable maps to a field here (SAM3_MODEL -> model, ...). HOST, PORT, LOG_LEVEL,
HF_TOKEN / HUGGINGFACE_HUB_TOKEN and TORCH_NUM_THREADS keep their conventional unprefixed names.
Tests override settings by passing Settings(...) to create_app(); nothing else reads os.environ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
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
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast where the GPU or CPU (AMX / AVX-512 BF16) computes bf16 natively, "
                            "else fp32. Under bf16 the ViT and text encoder keep bf16 matmul weights, the rest fp32; "
                            "cached features use the compute dtype.")
    warmup: bool = Field(True, description="Run one blank image through the model before reporting ready, so the "
                                           "first request does not pay one-off costs (engine/warmup.py).")
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

    # --- video input (sam3_api/media/video: decoded in a child process under these limits) ---
    video_max_bytes: int = Field(256 * 1024**2, ge=1024, description="Largest video file.")
    video_max_frames: int = Field(3000, ge=1, description="Frames processed after start/end/stride.")
    video_max_duration_s: float = Field(600.0, gt=0, description="Longest stretch of video decoded.")
    video_max_pixels: int = Field(4096 * 2160, ge=1024, description="Width x height of a frame (8K refused).")
    video_max_store_bytes: int = Field(8 * 1024**3, ge=1024**2, description="Decoded RGB frames kept per video.")
    video_decode_timeout_s: float = Field(300.0, gt=0, description="Wall-clock deadline of one decode.")
    video_decoder_memory_bytes: int = Field(3 * 1024**3, ge=512 * 1024**2, description="Decoder address space.")

    # --- URL inputs (SSRF protection) ---
    url_allow_private: bool = False
    url_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    url_timeout_s: float = Field(15.0, gt=0, le=600)
    url_max_redirects: int = Field(5, ge=0, le=20)

    # --- HTTP ---
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])

    # --- access (API keys; off when empty) and the drop-in adapters ---
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False,
                                                     description="Keys a request must carry; empty: no keys needed.")
    image_root: Path | None = Field(None, description="Directory seed 002's image_path may read below; unset: 403.")
    image_id_entries: int = Field(32, ge=0, le=10_000, description="Client image_ids (seed 004) remembered.")
    image_id_bytes: int = Field(512 * 1024**2, ge=0, description="Pixel bytes those remembered images may hold.")
    compat_video_max_frames: int = Field(300, ge=1, description="Frames seed 002's /predict_video(_text) track "
                                                               "(each comes back as a JPEG in one answer).")
    runpod_max_queued_jobs: int = Field(64, ge=1, le=100_000, description="Seed 003 jobs waiting beyond this: 503.")
    runpod_job_ttl_s: float = Field(1800.0, gt=0, description="Seed 003 jobs are deleted this long after they end.")
    runpod_max_wait_s: float = Field(300.0, ge=0, le=3600, description="Longest ?wait= a seed 003 /runsync gets.")

    # --- WebSocket sessions ---
    ws_max_sessions: int = Field(32, ge=1, le=10_000)
    ws_idle_ttl_s: float = Field(600.0, gt=0)

    # --- video tracking and jobs ---
    data_dir: Path | None = Field(None, description="Jobs, their results and decoded videos (default: <cache_dir>/data).")
    video_max_objects: int = Field(32, ge=1, le=1000, description="Picked objects in one video job.")
    video_max_queued_jobs: int = Field(8, ge=1, le=10_000, description="Video jobs waiting beyond this answer 503.")
    video_job_ttl_s: float = Field(7 * 24 * 3600, gt=0, description="Finished jobs are deleted after this long.")

    # --- interactive video (/ws/video) and uploaded videos (/video/uploads) ---
    ws_video_max_sessions: int = Field(8, ge=1, le=10_000, description="Concurrent /ws/video sessions.")
    ws_video_max_frames: int = Field(1800, ge=1, description="Most frames of a video an interactive session opens.")
    video_max_uploads: int = Field(16, ge=1, le=10_000, description="Uploaded videos held at once (LRU beyond).")
    video_upload_ttl_s: float = Field(3600.0, gt=0, description="An uploaded video is deleted this long after last use.")

    # --- operations: scheduling, deadlines, shutdown, load retries, rate limits, logs ---
    request_timeout_s: float = Field(300.0, ge=0, description="Longest wait for the model before 504; 0: none.")
    priority_burst: int = Field(4, ge=1, le=1000, description="Jobs that may run ahead of a waiting lower one.")
    body_timeout_s: float = Field(30.0, gt=0, description="A request body silent this long answers 408.")
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600, description="In-flight requests get this long at SIGTERM.")
    load_retries: int = Field(5, ge=0, le=100, description="Retries of a model load that failed transiently.")
    load_retry_backoff_s: float = Field(2.0, gt=0, le=600, description="First retry delay; doubles, max 60 s.")
    rate_limit: str | None = Field(None, description="Per API key, e.g. 120/minute; needs SAM3_API_KEYS.")
    metrics_require_key: bool = Field(False, description="GET /metrics needs a valid API key.")
    log_format: Literal["text", "json"] = Field("text", validation_alias=AliasChoices("LOG_FORMAT", "SAM3_LOG_FORMAT"))

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
            for key in ("cors_origins", "url_allow_hosts", "api_keys"):
                value = data.get(key)
                if isinstance(value, str):
                    data[key] = [item.strip() for item in value.split(",") if item.strip()]
        return data

    @field_validator("rate_limit")
    @classmethod
    def _parse_rate_limit(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"SAM3_RATE_LIMIT={value!r} is not a rate; write it like 120/minute or 10/second") \
                from None
        return value.strip()

    @model_validator(mode="after")
    def _default_data_dir(self) -> "Settings":
        if self.data_dir is None:
            self.data_dir = self.cache_dir / "data"
        return self

    @model_validator(mode="after")
    def _check_cache_budget(self) -> "Settings":
        if self.embedding_cache_entries > 0 and self.embedding_cache_bytes == 0:
            raise ValueError("SAM3_EMBEDDING_CACHE_BYTES=0 with entries > 0 would cache nothing; set both to 0")
        return self

    @property
    def is_dev_model(self) -> bool:
        return self.model == DEV_MODEL_NAME

    # --- batch labeling jobs (issue 18): archives and folders of images ---
    batch_max_images: int = Field(10_000, ge=1, le=1_000_000, description="Images in one batch job: 413 beyond.")
    batch_max_archive_members: int = Field(50_000, ge=1, le=10_000_000,
                                           description="Entries an archive or image_dir may hold (files, folders, "
                                                       "skipped ones): 413 beyond, counted before reading.")
    batch_max_archive_bytes: int = Field(4 * 1024**3, ge=1024,
                                         description="Uncompressed bytes of an archive (declared and counted): "
                                                     "413 beyond, before it is expanded.")
    batch_max_upload_bytes: int = Field(2 * 1024**3, ge=1024, description="Largest body of POST /batch/jobs "
                                                                        "(an archive or several images).")
    batch_prefetch: int = Field(4, ge=1, le=64, description="Images read and decoded ahead of the model.")
    batch_backbone_images: int = Field(0, ge=0, le=32, description="Images of a batch job per backbone step "
                                                                    "(one model step); 0: per device.")
    batch_max_queued_jobs: int = Field(8, ge=1, le=10_000, description="Batch jobs waiting beyond this answer 503.")
    batch_job_ttl_s: float = Field(7 * 24 * 3600, gt=0, description="Finished batch jobs are deleted after this long.")

    # --- Label Studio ML backend (/label-studio, compat/label_studio) ---
    label_studio_url: str | None = Field(None, description="Label Studio's address; its relative file URLs are "
                                                           "read from here only.")
    label_studio_api_key: str | None = Field(None, repr=False, description="Token for Label Studio's files when "
                                             "/setup's is missing or refused (legacy or personal access token).")
    label_studio_prompts: dict[str, str] = Field(default_factory=dict, description="Label -> comma-separated text "
                                                                                    "prompts, as JSON.")
    label_studio_threshold: float = Field(0.5, ge=0, le=1, description="Lowest score of a pre-labelled instance.")

    @field_validator("label_studio_url")
    @classmethod
    def _check_label_studio_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.strip().lower().startswith(("http://", "https://")):
            raise ValueError(f"SAM3_LABEL_STUDIO_URL={value!r} must be an http(s) URL like http://localhost:8080")
        return value.strip().rstrip("/")
