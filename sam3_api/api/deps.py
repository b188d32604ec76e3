"""FastAPI dependencies: the engine and settings live on app.state, created by create_app()."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..config import Settings
from ..engine.engine import Sam3Engine


def get_engine(request: Request) -> Sam3Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Sam3Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
