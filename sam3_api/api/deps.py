"""Typed dependency aliases: every route reaches the app's services (api/services.py) through these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ..config import Settings
from ..engine.engine import Sam3Engine
from ..jobs.batch import BatchJobRunner
from ..jobs.short import ShortJobRunner
from ..jobs.sources import VideoSources
from ..jobs.video import VideoJobRunner
from .services import Services
from .state import services_of


def get_services(connection: HTTPConnection) -> Services:
    return services_of(connection.app)


def get_engine(connection: HTTPConnection) -> Sam3Engine:
    return services_of(connection.app).engine


def get_settings(connection: HTTPConnection) -> Settings:
    return services_of(connection.app).settings


def get_video_jobs(connection: HTTPConnection) -> VideoJobRunner:
    return services_of(connection.app).video_jobs


def get_video_sources(connection: HTTPConnection) -> VideoSources:
    return services_of(connection.app).video_sources


def get_runpod_jobs(connection: HTTPConnection) -> ShortJobRunner:
    return services_of(connection.app).runpod_jobs


def get_batch_jobs(connection: HTTPConnection) -> BatchJobRunner:
    return services_of(connection.app).batch_jobs


def api_key(connection: HTTPConnection) -> str | None:
    """The key that authenticated this request or socket (api/auth.py records it); None when keys are off."""
    return getattr(connection.state, "api_key", None)


ServicesDep = Annotated[Services, Depends(get_services)]
EngineDep = Annotated[Sam3Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
VideoJobsDep = Annotated[VideoJobRunner, Depends(get_video_jobs)]
VideoSourcesDep = Annotated[VideoSources, Depends(get_video_sources)]
RunpodJobsDep = Annotated[ShortJobRunner, Depends(get_runpod_jobs)]
BatchJobsDep = Annotated[BatchJobRunner, Depends(get_batch_jobs)]
ApiKeyDep = Annotated[str | None, Depends(api_key)]
