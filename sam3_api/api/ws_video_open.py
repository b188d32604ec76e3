"""Opening a video in a /ws/video session: a held one (an upload, a video job's frames) or one sent inside the
socket (a binary message, video_base64 or video_url), which becomes the session's private copy. The bytes
come through the one video reader (api/video_inputs.py), decoded under the session limits.
"""

from __future__ import annotations

import asyncio

from ..errors import InvalidVideo, NotFound
from ..jobs.sources import VideoSource, check_session_frames, find_job_frames
from ..media.video import FrameSelection, FrameStore
from .video_inputs import VideoInput, save_video


def video_input(message) -> VideoInput:
    """Where a video sent inside the socket is: a binary message, or an open message's base64 / URL."""
    if isinstance(message, bytes):
        return VideoInput(data=message)
    return VideoInput(base64=message.video_base64, url=message.video_url)


async def open_private(message, sources, settings, decoding, owner: str | None) -> VideoSource:
    """Decode a video sent inside the socket into a private copy of this session."""
    directory = sources.scratch()
    try:
        selection = FrameSelection() if isinstance(message, bytes) else FrameSelection(
            message.start_frame, message.end_frame, message.frame_stride)
        source_file = await save_video(video_input(message), directory / "source", settings)
        return await sources.decode(directory, source_file, settings, selection, decoding, owner=owner,
                                    private=True)
    except BaseException:
        await asyncio.to_thread(sources.discard, directory)
        raise


async def open_held(video_id: str, sources, runner, settings, owner: str | None) -> tuple[FrameStore, VideoSource | None]:
    """An upload (shared, counted as in use) or a video job's frames (opened for this session)."""
    source = sources.get(video_id, owner)
    if source is not None:
        sources.acquire(source)
        return source.frames, source
    directory = find_job_frames(runner, video_id, owner)
    if directory is None:
        raise NotFound(f"no video {video_id!r}: not an upload of yours (they expire SAM3_VIDEO_UPLOAD_TTL_S after "
                       "their last use) and not one of your video jobs; upload it again", field="video_id")
    try:
        frames = await asyncio.to_thread(FrameStore, directory)
    except (OSError, ValueError):
        raise InvalidVideo(f"the frames of job {video_id} cannot be read", field="video_id") from None
    try:
        check_session_frames(len(frames), settings)
    except BaseException:
        frames.close()
        raise
    return frames, None
