"""The services of one app, held by one object on `app.state.services` (create_app builds it).

Routes reach each service through the typed aliases of api/deps.py; sockets and middleware through
`services_of(app)`. The lifespan (main.py) alone starts and stops the job runners in `runners`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..engine.engine import SETTINGS_READ, Sam3Engine
from ..jobs.runner import BackgroundRunner
from ..jobs.short import ShortJobRunner
from ..jobs.sources import VideoSources
from ..jobs.store import JobStore
from ..jobs.video import VideoJobRunner
from .ws.registry import SessionRegistry
from .ws_sessions import RealtimeRegistry


@dataclass
class Services:
    """Everything an app serves with: one settings object, shared with the engine."""

    settings: Settings
    engine: Sam3Engine
    video_jobs: VideoJobRunner
    video_sources: VideoSources  # uploads and sessions' private copies
    ws_sessions: RealtimeRegistry  # /ws/realtime (with its image_id map)
    ws_video_sessions: SessionRegistry  # /ws/video
    runners: list[BackgroundRunner] = field(default_factory=list)  # started and stopped by the lifespan
    runpod_jobs: ShortJobRunner | None = None  # seed 003's jobs, when its adapter is installed
    adapters: dict[str, Any] = field(default_factory=dict)  # other adapter state (Roboflow's image ids)

    @classmethod
    def build(cls, settings: Settings, engine: Sam3Engine) -> "Services":
        """The services over `engine`, which from now on reads `settings` (the one settings object)."""
        share_settings(engine, settings)
        video_jobs = VideoJobRunner(engine, JobStore(settings.data_dir, settings.video_job_ttl_s),
                                    settings.video_max_queued_jobs)
        return cls(settings, engine, video_jobs,
                   VideoSources(settings.data_dir, settings.video_upload_ttl_s, settings.video_max_uploads),
                   RealtimeRegistry(settings.ws_max_sessions),
                   SessionRegistry(settings.ws_video_max_sessions, name="video", setting="SAM3_WS_VIDEO_MAX_SESSIONS"),
                   runners=[video_jobs])

    def add_runner(self, runner: BackgroundRunner) -> None:
        self.runners.append(runner)


def share_settings(engine: Sam3Engine, settings: Settings) -> None:
    """Make `settings` the engine's too; refused when they differ on what the engine reads (its queue, cache,
    model and prompt limits were built from its own), since the two would then drift apart."""
    differ = [name for name in SETTINGS_READ if getattr(settings, name) != getattr(engine.settings, name)]
    if differ:
        raise ValueError(f"the engine was built with other values of {', '.join(differ)}; build the app's engine "
                         "from the app's settings, or give the app settings that agree with the engine's")
    engine.settings = settings


def services_of(app) -> Services:
    return app.state.services
