"""WebSocket /ws/realtime (placeholder until the click-to-segment channel lands)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter()


async def close_all_sessions(app: FastAPI) -> None:
    """Close every open session at shutdown."""
    return None
