"""Videos held for interactive sessions: POST /video/uploads, then /ws/video opens them by video_id and the web
page reads their frames as JPEGs (GET /video/sources/{video_id}/frames/{frame}.jpg).

A video is decoded once (isolated, the session limits: SAM3_WS_VIDEO_MAX_FRAMES) and kept as frames on disk
for SAM3_VIDEO_UPLOAD_TTL_S after its last use. /video/sources/{video_id} also names a session's private copy
(while the session lives) and a video job's frames (a job id). Everything is visible only to the API key
that made it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...errors import Conflict, NotFound
from ...jobs.sources import VideoSource, find_job_frames
from ...media.images import encode_jpeg
from ...media.video import FrameSelection, FrameStore, VideoInfo
from ..deps import ApiKeyDep, SettingsDep, VideoJobsDep, VideoSourcesDep
from ..openapi import json_body_schema
from ..schemas import ErrorResponse
from ..video_inputs import read_video_request
from ..video_schemas import VideoSourceOut, VideoUploadJson, VideoUploadParams

router = APIRouter(tags=["interactive video"])
ERRORS = {code: {"model": ErrorResponse} for code in (400, 404, 409, 413, 422, 503)}
FRAME_URL = "/video/sources/{video_id}/frames/{{frame}}.jpg"  # "{frame}" stays for the client to fill in
JPEG_QUALITY = 90
BODY = {"requestBody": {"content": {
    "application/json": {"schema": json_body_schema(VideoUploadJson)},
    "multipart/form-data": {"schema": {"type": "object", "required": ["video"], "properties": {
        "video": {"type": "string", "format": "binary"},
        **{name: {"type": "integer"} for name in VideoUploadParams.model_fields}}}},
}, "required": True}}


@router.post("/video/uploads", status_code=201, response_model=VideoSourceOut, responses=ERRORS,
             openapi_extra=BODY, summary="Upload a video for interactive sessions")
async def upload_video(request: Request, settings: SettingsDep, sources: VideoSourcesDep, jobs: VideoJobsDep,
                       key: ApiKeyDep):
    """Decode a video once (multipart `video` file, or JSON video_base64 / video_url); /ws/video opens it by
    the video_id answered."""
    directory = sources.scratch()
    try:
        fields = await read_video_request(request, directory / "source", settings, VideoUploadParams,
                                          VideoUploadJson)
        selection = FrameSelection(fields.start_frame, fields.end_frame, fields.frame_stride)
        source = await sources.decode(directory, directory / "source", settings, selection,
                                      jobs.decoding, owner=key, private=False)
    except BaseException:
        await asyncio.to_thread(sources.discard, directory)
        raise
    return JSONResponse(source_out(source, settings).model_dump(mode="json"), status_code=201,
                        headers={"Location": f"/video/sources/{source.video_id}"})


@router.get("/video/sources/{video_id}", response_model=VideoSourceOut, responses=ERRORS,
            summary="A held video's size and frame count")
async def get_source(video_id: str, settings: SettingsDep, sources: VideoSourcesDep, jobs: VideoJobsDep,
                     key: ApiKeyDep) -> VideoSourceOut:
    """An upload, a live session's private copy, or a video job's frames (by job id)."""
    source = sources.get(video_id, key)
    if source is not None:
        return source_out(source, settings)
    info = await asyncio.to_thread(_job_info, _job_frames(jobs, key, video_id))
    return VideoSourceOut(video_id=video_id, kind="job", **_figures(info), links=_links(video_id))


@router.get("/video/sources/{video_id}/frames/{frame}.jpg", responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
            response_class=Response, summary="One decoded frame as JPEG")
async def get_frame(video_id: str, frame: int, sources: VideoSourcesDep, jobs: VideoJobsDep,
                    key: ApiKeyDep) -> Response:
    """Frame `frame` (0 .. frame_count - 1, the decoded frames' numbering) as a JPEG."""
    source = sources.get(video_id, key)
    if source is not None:
        data = await asyncio.to_thread(_jpeg, source.frames, frame)
    else:
        directory = _job_frames(jobs, key, video_id)
        data = await asyncio.to_thread(_job_jpeg, directory, frame)
    # A video_id never names other frames: the browser may keep them.
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.delete("/video/uploads/{video_id}", status_code=204, responses=ERRORS, summary="Delete an uploaded video")
async def delete_upload(video_id: str, sources: VideoSourcesDep, key: ApiKeyDep) -> None:
    """Deletes the upload's frames now (409 while a session has it open)."""
    source = sources.get(video_id, key)
    if source is None or source.private:
        raise NotFound(f"no uploaded video {video_id!r} (unknown, or expired after SAM3_VIDEO_UPLOAD_TTL_S)",
                       field="video_id")
    if source.users:
        raise Conflict(f"video {video_id} is open in {source.users} session(s); close them first")
    sources.delete(video_id)


def source_out(source: VideoSource, settings) -> VideoSourceOut:
    expires = None if source.private else max(0.0, source.last_used + settings.video_upload_ttl_s - time.time())
    return VideoSourceOut(video_id=source.video_id, kind="session" if source.private else "upload",
                          **_figures(source.frames.info), expires_in_s=expires, links=_links(source.video_id))


def _figures(info: VideoInfo) -> dict:
    return {"width": info.width, "height": info.height, "fps": info.fps, "frame_count": info.frame_count,
            "start_frame": info.start_frame, "frame_stride": info.frame_stride}


def _links(video_id: str) -> dict[str, str]:
    return {"self": f"/video/sources/{video_id}", "frame": FRAME_URL.format(video_id=video_id)}


def _job_frames(jobs, key: str | None, video_id: str) -> Path:
    directory = find_job_frames(jobs, video_id, key)
    if directory is None:
        raise NotFound(f"no video {video_id!r}: not an upload (expired after SAM3_VIDEO_UPLOAD_TTL_S?), not a "
                       "live session's video and not one of your video jobs", field="video_id")
    return directory


def _job_info(directory: Path) -> VideoInfo:
    with FrameStore(directory) as frames:
        return frames.info


def _job_jpeg(directory: Path, frame: int) -> bytes:
    with FrameStore(directory) as frames:
        return _jpeg(frames, frame)


def _jpeg(frames: FrameStore, frame: int) -> bytes:
    if not 0 <= frame < len(frames):
        raise NotFound(f"frame {frame} does not exist: the video has frames 0 to {len(frames) - 1}", field="frame")
    return encode_jpeg(frames.read(frame), JPEG_QUALITY)
