"""A closed /ws/video socket frees everything: 50 sessions opened, used and closed leave memory where it started."""

from __future__ import annotations

import ctypes
import gc
import time
import weakref
from pathlib import Path

import pytest

from tests.api.ws_video_helpers import app_client, click, opened, propagate, session, upload
from tests.videos import video_bytes

pytestmark = pytest.mark.timeout(300)
SESSIONS = 50
# One session over this clip holds about 2.5 MB (tracker state, preprocessed frames, cached backbone outputs,
# masks): keeping every session would add over 100 MB; allocator noise is a few MB.
RSS_GROWTH_LIMIT = 25 * 1024**2


def rss_bytes() -> int:
    """Resident memory after giving freed heap pages back to the system (glibc keeps them otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def use_a_session(client, video_id: str | None, clip: bytes, videos: list) -> str:
    """Open (by id, or the bytes themselves: a private copy), click two frames, track a few, close."""
    with session(client) as (ws, created):
        if video_id is None:
            ws.send_bytes(clip)
            video_id = ws.receive_json()["video_id"]
        else:
            opened(ws, video_id)
        videos.append(weakref.ref(client.app.state.services.ws_video_sessions.connections[created["session_id"]].session.video))
        click(ws, 0, 30, 30)
        click(ws, 6, 60, 40, label=0)
        assert propagate(ws, direction="forward", from_frame=6)[2]["status"] == "finished"
    return video_id


def wait_until_freed(videos: list, timeout: float = 10.0) -> list:
    """The videos still alive once the model thread has let go of its last job (it may be a moment behind)."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        alive = [ref for ref in videos if ref() is not None]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_fifty_sessions_opened_and_closed_leave_memory_where_it_started(tmp_path_factory):
    client = app_client(tmp_path_factory, ws_video_max_sessions=2)
    try:
        clip = video_bytes(frames=12, size=(320, 240))
        video_id = upload(client, clip)["video_id"]
        warm: list = []
        for _ in range(5):
            use_a_session(client, video_id, clip, warm)
        wait_until_freed(warm)
        before, videos, private = rss_bytes(), [], []
        for index in range(SESSIONS):
            own_copy = index % 10 == 0  # every tenth session decodes its own private copy
            private.append(use_a_session(client, None if own_copy else video_id, clip, videos))
        assert wait_until_freed(videos) == [], "a closed session's InteractiveVideo is still referenced"
        grown = rss_bytes() - before
        assert grown < RSS_GROWTH_LIMIT, f"RSS grew by {grown / 1024**2:.1f} MB over {SESSIONS} sessions"
        sources = client.app.state.services.video_sources
        assert len(client.app.state.services.ws_video_sessions) == 0 and len(sources) == 1
        assert [p.name for p in sources.root.iterdir()] == [video_id], "private copies are deleted with sessions"
        assert sources.get(video_id, None).users == 0
    finally:
        client.__exit__(None, None, None)
