"""Seed 002's video routes as ordinary video jobs: submit, follow the job to its end, answer every frame as a JPEG.

The job is the native one (the same decoder limits, prompt checks, queue and runner as POST /video/jobs, owned
by the caller's API key), with one more limit: the answer carries every frame, so a clip may have at most
SAM3_COMPAT_VIDEO_MAX_FRAMES frames (413 beyond). A client that hangs up gets its handler cancelled
(api/disconnect.py), and with it the job. When the answer is built (or the request ends any other way) the
job is deleted: its decoded frames would only fill the disk, and the answer holds everything.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import replace

import cv2
from ..api.video_inputs import VideoInput, save_video
from ..config import Settings
from ..errors import Conflict, ModelNotReady, Sam3Error
from ..jobs.render import frame_masks
from ..jobs.store import Job
from ..jobs.video import VideoJobRunner
from ..jobs.submit import discard, incoming_dir
from ..jobs.video_io import open_frames
from ..media.video import VideoLimits
from ..media.video.annotate import annotate_frame
from ..serving.video_jobs import submit_video_job

log = logging.getLogger(__name__)
FOLLOW_S = 5.0  # a waiting request re-reads the job at least this often
JPEG_QUALITY = 90  # the original's


class TrackingFailed(Sam3Error):
    status_code = 500
    code = "tracking_failed"


async def track_video(runner: VideoJobRunner, settings: Settings, owner: str | None, video_base64: str,
                      params: dict) -> dict[str, str]:
    """Track `params` (VideoJobParams fields) through the video; {"<frame index>": JPEG data URL} of every frame."""
    runner.admit()  # a full queue answers before anything is decoded
    scratch = incoming_dir(settings.data_dir)
    try:
        source = await save_video(VideoInput(base64=video_base64), scratch / "source", settings)
        job = await submit_video_job(runner, route_limits(settings), scratch, source, params, owner=owner)
    finally:
        discard(scratch)
    try:
        await _follow(runner, job)
        _check_succeeded(job)
        results = runner.results(job.job_id)
        return await asyncio.to_thread(_jpeg_frames, runner.store.directory(job.job_id), results)
    except asyncio.CancelledError:  # the client went away (api/disconnect.py), or the server is stopping
        if not job.finished:
            log.info("seed 002 video request cancelled: video job %s cancelled", job.job_id)
            runner.cancel(job)
        raise
    finally:
        runner.delete(job)  # a job still running is deleted as soon as it has stopped


def route_limits(settings) -> VideoLimits:
    """The native decode limits with this route's frame cap when it is tighter: its answer carries every frame
    as a JPEG, so a clip over the cap gets a 413 naming SAM3_COMPAT_VIDEO_MAX_FRAMES."""
    limits, cap = VideoLimits.from_settings(settings), settings.compat_video_max_frames
    if cap >= limits.max_frames:
        return limits
    return replace(limits, max_frames=cap, frames_setting=f"SAM3_COMPAT_VIDEO_MAX_FRAMES={cap}, the most this route "
                   "tracks, as its answer carries every frame as a JPEG; POST /video/jobs streams long videos")


async def _follow(runner, job: Job) -> None:
    """Wait for the job's end, woken by its results log (every frame step and the end notify it)."""
    results = runner.results(job.job_id)
    while not job.finished:
        seen = results.version
        await results.wait(seen, FOLLOW_S)


def _check_succeeded(job: Job) -> None:
    if job.status == "succeeded":
        return
    if job.status == "cancelled":
        raise Conflict(f"the video job was cancelled before it finished ({job.error})")
    if job.status == "interrupted":
        raise ModelNotReady("the server is shutting down; send the video again in a moment")
    raise TrackingFailed(f"Video inference error: {job.error}")


def _jpeg_frames(job_dir, results) -> dict[str, str]:
    """Every processed frame with its objects' masks blended in, as a JPEG data URL keyed by frame index."""
    frames = {}
    with open_frames(job_dir) as store:
        for frame in range(len(store)):
            canvas = annotate_frame(store.read(frame), frame_masks(results, store.info, frame), labels=False)
            frames[str(store.info.source_index(frame))] = _jpeg_data_url(canvas)
    return frames


def _jpeg_data_url(rgb) -> str:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise TrackingFailed("OpenCV could not encode a frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")
