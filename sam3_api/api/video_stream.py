"""Reading a video job out: its status document, its frames as NDJSON in frame order, and its SSE events.

Both streams follow a running job: they send what is finished, then wait on the job's results log for more,
and end when the job has ended and everything it finished was sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi.sse import format_sse_event

from ..jobs.store import Job
from ..jobs.video_io import original_index
from ..media.masks import mask_to_polygons, rle_to_mask
from .video_schemas import VideoInfoOut, VideoJobOut

WAIT_S = 5.0  # a stream re-checks the job at least this often even without news


def job_out(job: Job) -> VideoJobOut:
    base = f"/video/jobs/{job.job_id}"
    links = {"self": base, "frames": f"{base}/frames", "events": f"{base}/events", "cancel": f"{base}/cancel"}
    if job.request.get("annotated_video"):
        links["video"] = f"{base}/video.mp4"
    video = None if job.video is None else VideoInfoOut(**{k: job.video[k] for k in VideoInfoOut.model_fields})
    return VideoJobOut(job_id=job.job_id, status=job.status, progress=job.progress, video=video,
                       objects=job.objects, error=job.error, created_at=job.created_at, started_at=job.started_at,
                       finished_at=job.finished_at, links=links)


async def frame_lines(runner, job: Job) -> AsyncIterator[bytes]:
    """Each processed frame's line, in frame order, waiting for frames the running job has not finished."""
    results = runner.results(job.job_id)
    polygons = job.request.get("mask_format") == "polygon"
    for frame in range(job.progress.get("frames_total") or (job.video or {}).get("frame_count", 0)):
        index = original_index(job.video, frame)
        while index not in results and not job.finished:
            seen = results.version
            await results.wait(seen, WAIT_S)
        if index not in results:
            continue  # the job ended without this frame (cancelled, failed or interrupted)
        line = results.read(index)
        yield (await asyncio.to_thread(_as_polygons, line)) if polygons else line


async def job_events(runner, job: Job) -> AsyncIterator[bytes]:
    """`progress` whenever the job moves, `frame` for each finished frame, then `end` (SSE wire format)."""
    results = runner.results(job.job_id)
    polygons = job.request.get("mask_format") == "polygon"
    sent = set()
    while True:
        seen = results.version
        ended = job.finished  # read before the frames: nothing finished before the end is missed
        yield _event("progress", json.dumps({"status": job.status, "progress": job.progress}))
        for index in results.frames():
            if index not in sent:
                sent.add(index)
                line = results.read(index)
                line = (await asyncio.to_thread(_as_polygons, line)) if polygons else line
                yield _event("frame", line.decode().strip())
        if ended:
            yield _event("end", json.dumps({"status": job.status, "error": job.error}))
            return
        await results.wait(seen, WAIT_S)


def _event(name: str, data: str) -> bytes:
    return format_sse_event(event=name, data_str=data)


def _as_polygons(line: bytes) -> bytes:
    """A stored line (RLE masks) with each mask as polygon rings instead."""
    frame = json.loads(line)
    for obj in frame["objects"]:
        obj["mask"] = mask_to_polygons(rle_to_mask(obj["mask"]))
    return (json.dumps(frame, separators=(",", ":")) + "\n").encode()
