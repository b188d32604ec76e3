"""A new video job: decode the clip (isolated, limits enforced), check the prompts against it, queue it.

Everything a client can get wrong is found here, before the 202: an unreadable or oversized video (4xx from
media.video), a frame_index past the end or between strided frames, a box outside the frame, too many objects.
Work happens in <data_dir>/incoming/<id>/ and moves into the job's directory only when all checks passed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from pathlib import Path

from ..errors import InvalidPrompt
from ..media.video import FrameSelection, VideoLimits, decode_video
from .store import Job
from .video_io import FRAMES_DIR

STALE_INCOMING_S = 3600.0


def incoming_dir(data_dir: Path) -> Path:
    """A fresh scratch directory for one submission (the caller removes it)."""
    path = Path(data_dir) / "incoming" / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


async def submit_video_job(runner, settings, scratch: Path, source: Path, params: dict,
                           owner: str | None = None) -> Job:
    """Decode `source`, validate `params` against the clip, create and queue the job. Raises 4xx errors."""
    runner.admit()
    selection = FrameSelection(params.get("start_frame", 0), params.get("end_frame"), params.get("frame_stride", 1))
    async with runner.decoding:
        info = await asyncio.to_thread(decode_video, source, scratch / FRAMES_DIR,
                                       VideoLimits.from_settings(settings), selection)
    request = _job_request(params, info)
    runner.engine.check_video_request(_engine_view(request), info.frame_count, info.width, info.height)
    job = runner.store.create("video", request, owner)
    os.replace(scratch / FRAMES_DIR, runner.store.directory(job.job_id) / FRAMES_DIR)
    job.video = info.to_dict()
    job.progress["frames_total"] = info.frame_count
    runner.store.save(job)
    runner.enqueue(job)
    return job


def discard(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)


def clear_stale_incoming(data_dir: Path, older_than_s: float = STALE_INCOMING_S) -> None:
    """Scratch directories a crash left behind (a submission never lasts this long)."""
    now = time.time()
    for scratch in (Path(data_dir) / "incoming").glob("*"):
        try:
            if now - scratch.stat().st_mtime > older_than_s:
                discard(scratch)
        except OSError:
            pass


def _job_request(params: dict, info) -> dict:
    """The manifest's request: the client's parameters plus each object's run frame and default id."""
    taken = {o["object_id"] for o in params.get("objects", []) if o.get("object_id") is not None}
    free = (n for n in range(1, 10**9) if n not in taken)
    objects = []
    for index, obj in enumerate(params.get("objects", [])):
        frame = _run_frame(obj["frame_index"], info, f"objects[{index}].frame_index")
        object_id = obj.get("object_id") or next(free)
        objects.append({**obj, "object_id": object_id, "frame": frame})
    return {**params, "objects": objects}


def _run_frame(frame_index: int, info, field: str) -> int:
    """Original frame index -> index within the processed frames, or a 422 saying which indices exist."""
    last = info.start_frame + (info.frame_count - 1) * info.frame_stride
    if not info.start_frame <= frame_index <= last:
        raise InvalidPrompt(f"{field} {frame_index} is outside the processed frames {info.start_frame}-{last} "
                            f"(the video has frames up to {last}; see start_frame / end_frame)", field=field)
    offset = frame_index - info.start_frame
    if offset % info.frame_stride:
        raise InvalidPrompt(f"{field} {frame_index} is not a processed frame: with start_frame={info.start_frame} "
                            f"and frame_stride={info.frame_stride}, prompt on {info.start_frame} + k x "
                            f"{info.frame_stride}", field=field)
    return offset // info.frame_stride


def _engine_view(request: dict):
    from .video_io import run_request

    return run_request(request)
