"""Video tracking jobs: POST /video/jobs, then status, frames (NDJSON), events (SSE), cancel, delete, MP4.

A job is decoded and checked when it is submitted (bad input: 4xx at once), then tracked in the background
one frame step at a time, every finished frame persisted under SAM3_DATA_DIR; results stream while it runs.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.sse import EventSourceResponse

from ...errors import Conflict, NotFound
from ...jobs.render import VIDEO_FILE
from ...jobs.submit import discard, incoming_dir
from ...media.video import VideoLimits
from ...serving.video_jobs import submit_video_job
from ..deps import ApiKeyDep, SettingsDep, VideoJobsDep
from ..openapi import json_body_schema
from ..video_inputs import read_video_request
from ..video_schemas import VideoJobJson, VideoJobOut, VideoJobParams
from ..video_stream import frame_lines, job_events, job_out
from ..schemas import ErrorResponse

router = APIRouter(prefix="/video/jobs", tags=["video"])
ERRORS = {code: {"model": ErrorResponse} for code in (400, 404, 409, 413, 422, 503)}
BODY = {"requestBody": {"content": {
    "application/json": {"schema": json_body_schema(VideoJobJson)},
    "multipart/form-data": {"schema": {"type": "object", "required": ["video"], "properties": {
        "video": {"type": "string", "format": "binary"},
        **{name: {"type": "string", "description": "JSON for lists"} for name in VideoJobParams.model_fields}}}},
}, "required": True}}


@router.post("", status_code=202, response_model=VideoJobOut, responses=ERRORS, openapi_extra=BODY,
             summary="Start a video tracking job")
async def create_job(request: Request, settings: SettingsDep, runner: VideoJobsDep, key: ApiKeyDep):
    """Track text concepts and/or picked objects through a video (JSON with video_base64 or video_url, or
    multipart with a `video` file and the same fields as form values)."""
    runner.admit()  # a full queue answers before anything is read or decoded
    scratch = incoming_dir(settings.data_dir)
    try:
        source = scratch / "source"
        fields = await read_video_request(request, source, settings, VideoJobParams, VideoJobJson)
        params = fields.model_dump(exclude={"video_base64", "video_url"})
        job = await submit_video_job(runner, VideoLimits.from_settings(settings), scratch, source, params,
                                     owner=key)
    finally:
        discard(scratch)
    return JSONResponse(job_out(job).model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/video/jobs/{job.job_id}"})


@router.get("", summary="List video jobs")
async def list_jobs(runner: VideoJobsDep, key: ApiKeyDep) -> dict:
    """Every job the server holds for you (finished ones too, until they expire), oldest first."""
    return {"jobs": [job_out(job).model_dump(mode="json") for job in runner.store.list("video")
                     if job.owner == key]}


@router.get("/{job_id}", response_model=VideoJobOut, responses=ERRORS, summary="A video job's status")
async def get_job(job_id: str, runner: VideoJobsDep, key: ApiKeyDep) -> VideoJobOut:
    """Status, progress (frames done / total, frames per second), the video, the objects found so far."""
    return job_out(_job(runner, job_id, key))


@router.get("/{job_id}/frames", responses=ERRORS, summary="Per-frame results (NDJSON)",
            response_class=StreamingResponse)
async def get_frames(job_id: str, runner: VideoJobsDep, key: ApiKeyDep):
    """One JSON line per frame, in frame order: {frame_index, objects: [{object_id, score, box, mask}]}.
    While the job runs, frames stream as they are finished."""
    job = _job(runner, job_id, key)
    return StreamingResponse(frame_lines(runner, job), media_type="application/x-ndjson")


@router.get("/{job_id}/events", responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
            summary="Progress and per-frame results (Server-Sent Events)")
async def get_events(job_id: str, runner: VideoJobsDep, key: ApiKeyDep):
    """Events `progress` {status, progress}, `frame` {frame_index, objects}, and a last `end` {status, error}."""
    job = _job(runner, job_id, key)  # before the stream starts, so an unknown job is a plain 404
    return EventSourceResponse(job_events(runner, job))


@router.post("/{job_id}/cancel", response_model=VideoJobOut, responses=ERRORS, summary="Cancel a video job")
async def cancel_job(job_id: str, runner: VideoJobsDep, key: ApiKeyDep) -> VideoJobOut:
    """Stops the job before its next frame step; the frames it finished are kept."""
    job = _job(runner, job_id, key)
    runner.cancel_unless_ended(job)
    return job_out(job)


@router.delete("/{job_id}", status_code=204, responses=ERRORS, summary="Delete a video job and its files")
async def delete_job(job_id: str, runner: VideoJobsDep, key: ApiKeyDep) -> None:
    """Deletes the job's results and files (a running job is stopped first)."""
    runner.delete(_job(runner, job_id, key))


@router.get("/{job_id}/video.mp4", responses={**ERRORS, 200: {"content": {"video/mp4": {}}}},
            summary="The annotated MP4", response_class=FileResponse)
async def get_video(job_id: str, runner: VideoJobsDep, key: ApiKeyDep):
    """H.264 MP4 with every object's mask blended in its colour (when the job asked for annotated_video)."""
    job = _job(runner, job_id, key)
    path = runner.store.directory(job_id) / VIDEO_FILE
    if not job.request.get("annotated_video"):
        raise NotFound(f"job {job_id} did not ask for annotated_video", field="job_id")
    if not path.exists():
        raise Conflict(f"job {job_id} is {job.status}: the annotated video is written when it succeeds")
    return FileResponse(path, media_type="video/mp4", filename=f"{job_id}.mp4")


def _job(runner, job_id: str, key: str | None):
    """The caller's video job `job_id`; anyone else's is as unknown as a missing one."""
    job = runner.store.get(job_id)
    if job is None or job.kind != "video" or job.owner != key:
        raise NotFound(f"no video job {job_id!r} (unknown, deleted, or expired after SAM3_VIDEO_JOB_TTL_S)",
                       field="job_id")
    return job
