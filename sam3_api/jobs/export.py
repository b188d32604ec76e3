"""An interactive session's results saved as a finished video job (the same store and /video/jobs API).

The job gets the session's decoded frames (hard links when the file system allows, else copies: the session
may delete its own copy as soon as it closes), one results line per frame in frame order (frame_line, COCO
RLE), and optionally the annotated MP4. It is written as status "running" and marked "succeeded" only when
everything is on disk, so a crash mid-export leaves an "interrupted" job, never a half-written succeeded one.
It survives restarts and expires like any job (SAM3_VIDEO_JOB_TTL_S).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

from ..errors import Conflict
from ..media.video import FrameStore, VideoInfo
from ..media.video.store import FRAMES_FILE, META_FILE
from .render import render_annotated_video
from .results import ResultsLog
from .store import Job
from .video_io import FRAMES_DIR, frame_line

RESULTS_FILE = "results.ndjson"


def session_lines(video, info: VideoInfo) -> list[dict]:
    """Every frame's latest masks as result lines, frame 0 first (frames never tracked have no objects)."""
    return [frame_line(video.frame_result(frame), info) for frame in range(video.frame_count)]


async def export_job(runner, frames_dir: Path, info: VideoInfo, lines: list[dict], objects: list[dict],
                     request: dict, owner: str | None, annotated: bool) -> Job:
    """Create the job, write its files off the event loop, then mark it succeeded."""
    store = runner.store
    request = {**request, "annotated_video": annotated, "mask_format": "rle"}
    job = store.create("video", request, owner, status="running")
    job.started_at, job.video, job.objects = time.time(), info.to_dict(), objects
    job.progress = {"frames_done": len(lines), "frames_total": info.frame_count, "fps": 0.0}
    store.save(job)
    try:
        await asyncio.to_thread(_write, store.directory(job.job_id), Path(frames_dir), lines, annotated)
    except FileNotFoundError:  # the session's video was a job's frames, and that job was deleted meanwhile
        store.delete(job.job_id)
        raise Conflict("the frames of this session's video were deleted (its job was deleted or expired); open "
                       "the video again to export") from None
    except BaseException:
        store.delete(job.job_id)
        raise
    if annotated:
        job.outputs["video_mp4"] = True
    store.finish(job, "succeeded")
    runner.publish_counts()
    return job


def _write(job_dir: Path, frames_dir: Path, lines: list[dict], annotated: bool) -> None:
    _link_frames(frames_dir, job_dir / FRAMES_DIR)
    results = job_dir / RESULTS_FILE
    with open(results, "wb") as out:
        for line in lines:
            out.write((json.dumps(line, separators=(",", ":")) + "\n").encode())
        out.flush()
        os.fsync(out.fileno())
    if annotated:
        with FrameStore(job_dir / FRAMES_DIR) as frames:
            render_annotated_video(job_dir, frames, ResultsLog(results))


def _link_frames(source: Path, target: Path) -> None:
    """The decoded frames under the job: a hard link costs no disk and outlives the session's own name."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (FRAMES_FILE, META_FILE):
        try:
            os.link(source / name, target / name)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(source / name, target / name)
