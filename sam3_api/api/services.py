"""The services of one app, held by one object on `app.state.services` (create_app builds it): everything
app-wide lives here, nowhere else on app.state.

Routes, sockets and adapters reach each service through the typed aliases of api/deps.py; middleware and
error handlers through `services_of(app)` (api/state.py). The lifespan (main.py) alone starts and stops the
job runners in `runners`, and at shutdown calls `drain()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from ..config import Settings
from ..engine.engine import SETTINGS_READ, Sam3Engine
from ..jobs.batch import BatchJobRunner
from ..jobs.runner import BackgroundRunner
from ..jobs.short import ShortJobRunner
from ..jobs.sources import VideoSources
from ..jobs.store import JobStore
from ..jobs.video import VideoJobRunner
from .errors import Surface
from .state import services_of  # noqa: F401 - the accessor, re-exported for middleware
from .ws.registry import SessionRegistry
from .ws_sessions import RealtimeRegistry

if TYPE_CHECKING:  # ratelimit.py reads the services through deps.py
    from .ratelimit import KeyRateLimiter

log = logging.getLogger(__name__)
ShutdownHook = Callable[[], Awaitable[None]]


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
    batch_jobs: BatchJobRunner | None = None  # batch labeling jobs, on the video jobs' store
    rate_limiter: KeyRateLimiter | None = None  # SAM3_RATE_LIMIT, per API key (api/ratelimit.py)
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)  # what GET /metrics reads
    surfaces: list[Surface] = field(default_factory=list)  # adapters' error envelopes (api/errors.py)
    shutdown_hooks: list[ShutdownHook] = field(default_factory=list)  # run by drain()
    draining: bool = False  # shutdown began: /health/ready answers 503
    # How a socket waits out SAM3_WS_IDLE_TTL_S; tests pass one driven by a manual clock.
    idle_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    @classmethod
    def build(cls, settings: Settings, engine: Sam3Engine) -> "Services":
        """The services over `engine`, which from now on reads `settings` (the one settings object)."""
        share_settings(engine, settings)
        video_jobs = VideoJobRunner(engine, JobStore(settings.data_dir, settings.video_job_ttl_s),
                                    settings.video_max_queued_jobs)
        batch_jobs = BatchJobRunner(engine, video_jobs.store, settings)
        return cls(settings, engine, video_jobs,
                   VideoSources(settings.data_dir, settings.video_upload_ttl_s, settings.video_max_uploads),
                   RealtimeRegistry(settings.ws_max_sessions),
                   SessionRegistry(settings.ws_video_max_sessions, name="video", setting="SAM3_WS_VIDEO_MAX_SESSIONS"),
                   runners=[video_jobs, batch_jobs], batch_jobs=batch_jobs)

    def add_runner(self, runner: BackgroundRunner) -> None:
        self.runners.append(runner)

    def on_shutdown(self, hook: ShutdownHook) -> None:
        """Run `hook` at shutdown, after in-flight requests drained and before the model thread stops."""
        self.shutdown_hooks.append(hook)

    async def drain(self) -> None:
        """Mark the server draining (readiness answers 503) and run the hooks; one failing never stops the rest."""
        self.draining = True
        for hook in self.shutdown_hooks:
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook %s failed", getattr(hook, "__qualname__", hook))


def share_settings(engine: Sam3Engine, settings: Settings) -> None:
    """Make `settings` the engine's too; refused when they differ on what the engine reads (its queue, cache,
    model and prompt limits were built from its own), since the two would then drift apart."""
    differ = [name for name in SETTINGS_READ if getattr(settings, name) != getattr(engine.settings, name)]
    if differ:
        raise ValueError(f"the engine was built with other values of {', '.join(differ)}; build the app's engine "
                         "from the app's settings, or give the app settings that agree with the engine's")
    engine.settings = settings
