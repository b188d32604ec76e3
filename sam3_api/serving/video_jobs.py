"""A new video job, for every surface (POST /video/jobs, seed 002's video routes): decode the clip (isolated,
limits enforced), check the prompts against it, create and queue the job.

Everything a client can get wrong is found here, before the 202: an unreadable or oversized video (4xx from
media.video), a frame_index past the end or between strided frames, a box outside the frame, too many objects.
The decode limits are a value: a surface with a tighter frame cap passes its own (naming its own setting).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ..errors import InvalidPrompt
from ..jobs.store import Job
from ..jobs.video_io import FRAMES_DIR, run_request
from ..media.video import FrameSelection, VideoLimits, decode_video
from .defaults import MASK_THRESHOLD


async def submit_video_job(runner, limits: VideoLimits, scratch: Path, source: Path, params: dict,
                           owner: str | None = None) -> Job:
    """Decode `source` under `limits`, validate `params` against the clip, create and queue the job (4xx errors).

    The limits are a value: a route with a tighter frame cap passes its own (naming its own setting)."""
    runner.admit()
    selection = FrameSelection(params.get("start_frame", 0), params.get("end_frame"), params.get("frame_stride", 1))
    async with runner.decoding:
        info = await asyncio.to_thread(decode_video, source, scratch / FRAMES_DIR, limits, selection)
    request = _job_request(params, info)
    runner.engine.check_video_request(run_request(request), info.frame_count, info.width, info.height)
    job = runner.store.create("video", request, owner)
    os.replace(scratch / FRAMES_DIR, runner.store.directory(job.job_id) / FRAMES_DIR)
    job.video = info.to_dict()
    job.progress["frames_total"] = info.frame_count
    runner.store.save(job)
    runner.enqueue(job)
    return job


def _job_request(params: dict, info) -> dict:
    """The manifest's request: the client's parameters, the default mask threshold where it gave none, and each
    object's run frame and default id."""
    taken = {o["object_id"] for o in params.get("objects", []) if o.get("object_id") is not None}
    free = (n for n in range(1, 10**9) if n not in taken)
    objects = []
    for index, obj in enumerate(params.get("objects", [])):
        frame = _run_frame(obj["frame_index"], info, f"objects[{index}].frame_index")
        object_id = obj.get("object_id") or next(free)
        objects.append({**obj, "object_id": object_id, "frame": frame})
    mask_threshold = params.get("mask_threshold")
    return {**params, "mask_threshold": MASK_THRESHOLD if mask_threshold is None else mask_threshold,
            "objects": objects}


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
