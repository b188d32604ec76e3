"""Decoded videos held for interactive sessions: uploads (POST /video/uploads) and sessions' private copies.

    <data_dir>/sources/<video_id>/frames/   the decoded frames (media.video.FrameStore)

A video is decoded once; sessions open it by id and the page reads its frames as JPEGs. Two kinds:
* an upload lives SAM3_VIDEO_UPLOAD_TTL_S after its last use; at most SAM3_VIDEO_MAX_UPLOADS are held (the
  least recently used one that no session has open makes room for a new one);
* a private copy (a video sent inside the /ws/video socket) belongs to one session and is deleted when the
  session closes it or ends.
A video job's frames (<data_dir>/jobs/<id>/frames) can be opened too: `find_job_frames`. Sources are not
kept across restarts (the directory is emptied at start-up); jobs are. Event-loop thread only, except the
decode itself (decode_video in a thread, under the job runner's decoding semaphore).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineBusy, VideoTooLarge
from ..media.video import FrameSelection, FrameStore, VideoLimits, decode_video
from .video_io import FRAMES_DIR

log = logging.getLogger(__name__)
SESSION_FRAMES_SETTING = "SAM3_WS_VIDEO_MAX_FRAMES"


@dataclass
class VideoSource:
    """One decoded video: its frames, who may read it, and who has it open."""

    video_id: str
    directory: Path
    frames: FrameStore
    owner: str | None
    private: bool
    last_used: float
    users: int = 0

    @property
    def frames_dir(self) -> Path:
        return self.directory / FRAMES_DIR


def session_limits(settings) -> VideoLimits:
    """The decode limits of a video for an interactive session: SAM3_WS_VIDEO_MAX_FRAMES when it is tighter."""
    limits = VideoLimits.from_settings(settings)
    if settings.ws_video_max_frames < limits.max_frames:
        limits = dataclasses.replace(limits, max_frames=settings.ws_video_max_frames,
                                     frames_setting=SESSION_FRAMES_SETTING)
    return limits


def check_session_frames(frame_count: int, settings) -> None:
    """A video decoded for a job may be longer than a session may open."""
    if frame_count > settings.ws_video_max_frames:
        raise VideoTooLarge(f"the video has {frame_count} frames, over the limit of {settings.ws_video_max_frames} "
                            f"for an interactive session ({SESSION_FRAMES_SETTING}); upload part of it (end_frame, "
                            "frame_stride) or use a video job", field="video_id")


class VideoSources:
    """video_id -> VideoSource, bounded by count (uploads) and time (uploads' TTL)."""

    def __init__(self, data_dir: Path, ttl_s: float, max_uploads: int, clock: Callable[[], float] = time.time):
        self.root = Path(data_dir) / "sources"
        self.root.mkdir(parents=True, exist_ok=True)
        self.ttl_s, self.max_uploads = ttl_s, max_uploads
        self.clock = clock  # wall-clock seconds; tests pass their own to cross the TTL without waiting it out
        self._sources: dict[str, VideoSource] = {}
        self._pending: set[str] = set()  # scratch directories still being written or decoded
        self._swept_leftovers = 0.0
        self._remove_leftovers()

    def __len__(self) -> int:
        return len(self._sources)

    def scratch(self) -> Path:
        """A fresh directory for one video (becomes the source's directory once decoded; else `discard` it)."""
        path = self.root / uuid.uuid4().hex
        path.mkdir(parents=True)
        self._pending.add(path.name)
        return path

    def discard(self, directory: Path) -> None:
        """A scratch directory whose video was refused (blocking: a thread, or small files only)."""
        self._pending.discard(directory.name)
        shutil.rmtree(directory, ignore_errors=True)

    async def decode(self, directory: Path, source_file: Path, settings, selection: FrameSelection,
                     decoding: asyncio.Semaphore | None, *, owner: str | None, private: bool) -> VideoSource:
        """Decode `source_file` into directory/frames (isolated, session limits) and register it.

        The caller removes `directory` when this raises. The file itself is deleted once decoded."""
        if not private:
            self._make_room()
        limits = session_limits(settings)
        async with decoding or asyncio.Semaphore(1):
            await asyncio.to_thread(decode_video, source_file, directory / FRAMES_DIR, limits, selection)
        source_file.unlink(missing_ok=True)
        frames = await asyncio.to_thread(FrameStore, directory / FRAMES_DIR)
        source = VideoSource(directory.name, directory, frames, owner, private, self.clock())
        self._sources[source.video_id] = source
        self._pending.discard(directory.name)
        log.info("video %s decoded (%d frames, %s)", source.video_id, len(frames), "private" if private else "upload")
        return source

    def get(self, video_id: str, owner: str | None) -> VideoSource | None:
        """The source, if it exists and belongs to `owner` (the API key; None when keys are off)."""
        self.sweep()
        source = self._sources.get(video_id)
        if source is None or source.owner != owner:
            return None
        source.last_used = self.clock()
        return source

    def acquire(self, source: VideoSource) -> None:
        source.users += 1
        source.last_used = self.clock()

    def release(self, source: VideoSource) -> None:
        """A session is done with it: a private copy is deleted at once, an upload waits for its TTL."""
        source.users = max(0, source.users - 1)
        source.last_used = self.clock()
        if source.private and source.users == 0:
            self.delete(source.video_id)

    def delete(self, video_id: str) -> None:
        source = self._sources.pop(video_id, None)
        if source is not None:
            source.frames.close()
            shutil.rmtree(source.directory, ignore_errors=True)

    def sweep(self, now: float | None = None) -> None:
        """Delete uploads unused for the TTL (a source open in a session is in use)."""
        now = self.clock() if now is None else now
        for source in list(self._sources.values()):
            if not source.private and source.users == 0 and source.last_used + self.ttl_s < now:
                log.info("uploaded video %s expired", source.video_id)
                self.delete(source.video_id)
        if now - self._swept_leftovers > self.ttl_s:
            self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Directories of an earlier process (nobody can name them now) once they are older than the TTL; a
        younger one may belong to another server sharing the data directory, or to tests."""
        self._swept_leftovers = self.clock()
        cutoff = self._swept_leftovers - self.ttl_s
        for path in self.root.iterdir():
            try:
                known = path.name in self._sources or path.name in self._pending
                if not known and path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                continue

    def _make_room(self) -> None:
        self.sweep()
        uploads = [s for s in self._sources.values() if not s.private]
        while len(uploads) >= self.max_uploads:
            idle = [s for s in uploads if s.users == 0]
            if not idle:
                raise EngineBusy(f"{len(uploads)} uploaded videos are open in sessions (SAM3_VIDEO_MAX_UPLOADS="
                                 f"{self.max_uploads}); retry when one is closed", retry_after_s=30)
            oldest = min(idle, key=lambda s: s.last_used)
            self.delete(oldest.video_id)
            uploads.remove(oldest)


def find_job_frames(runner, video_id: str, owner: str | None) -> Path | None:
    """The frames directory of a video job the caller may read (its own), or None."""
    job = runner.store.get(video_id) if len(video_id) == 32 and video_id.isalnum() else None
    if job is None or job.kind != "video" or job.owner != owner:
        return None
    frames = runner.store.directory(job.job_id) / FRAMES_DIR
    return frames if frames.is_dir() else None
