"""One generic registry of live socket sessions: bounded in number, closed together at shutdown.

Each socket kind (/ws/realtime, /ws/video) gets its own instance from create_app (api/services.py); a
connection registers itself on accept and is released in its `finally`.
"""

from __future__ import annotations

import logging
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class HasSessionId(Protocol):
    session_id: str


class Closable(Protocol):
    """A live connection: its session, and how to close it (code, reason)."""

    session: HasSessionId

    async def shutdown(self, code: int, reason: str) -> None: ...


C = TypeVar("C", bound=Closable)


class SessionRegistry(Generic[C]):
    """Live connections of one socket kind, at most `max_sessions` (named by `setting` in refusals)."""

    def __init__(self, max_sessions: int, *, name: str, setting: str):
        self.max_sessions, self.name, self.setting = max_sessions, name, setting
        self.connections: dict[str, C] = {}

    def __len__(self) -> int:
        return len(self.connections)

    def add(self, connection: C) -> bool:
        """Register a connection; False when the server already holds max_sessions."""
        if len(self.connections) >= self.max_sessions:
            log.warning("refusing a %s session: %d of %d in use", self.name, len(self), self.max_sessions)
            return False
        self.connections[connection.session.session_id] = connection
        log.info("%s session %s opened (%d of %d)", self.name, connection.session.session_id, len(self),
                 self.max_sessions)
        return True

    def release(self, session_id: str) -> None:
        if self.connections.pop(session_id, None) is not None:
            log.info("%s session %s closed (%d of %d)", self.name, session_id, len(self), self.max_sessions)

    async def close_all(self, code: int = 1001, reason: str = "server shutting down") -> None:
        for connection in list(self.connections.values()):
            try:
                await connection.shutdown(code, reason)
            except Exception:  # a socket that is already gone must not stop the shutdown of the others
                log.debug("closing a %s session failed", self.name, exc_info=True)
