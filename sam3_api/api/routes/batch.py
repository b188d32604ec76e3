"""Batch labeling jobs: POST /batch/jobs, then status, results (NDJSON), events (SSE), cancel, delete, export.

A job's images and prompts are checked when it is submitted (a hostile archive, a folder outside
SAM3_IMAGE_ROOT, a broken COCO file: 4xx at once); then every image is segmented in the background, each
image's record persisted when done; results stream while it runs and the export holds what is done so far.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.sse import EventSourceResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from ...errors import InvalidPrompt, NotFound
from ...jobs.batch_inputs import BatchInput
from ...media.exports import EXPORT_FORMATS
from ..batch_schemas import BatchJobJson, BatchJobOut, BatchJobParams
from ..batch_stream import batch_job_out, export_body, job_events, record_lines
from ..deps import ApiKeyDep, BatchJobsDep, SettingsDep
from ..errors import schema_error
from ..openapi import json_body_schema
from ..schemas import ErrorResponse

router = APIRouter(prefix="/batch/jobs", tags=["batch"])
ERRORS = {code: {"model": ErrorResponse} for code in (400, 403, 404, 409, 413, 422, 503)}
BODY = {"requestBody": {"content": {
    "application/json": {"schema": json_body_schema(BatchJobJson)},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "images": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "archive": {"type": "string", "format": "binary", "description": "A zip or tar of images."},
        **{name: {"type": "string", "description": "JSON for lists and objects"}
           for name in BatchJobParams.model_fields}}}},
}, "required": True}}


@router.post("", status_code=202, response_model=BatchJobOut, responses=ERRORS, openapi_extra=BODY,
             summary="Start a batch labeling job")
async def create_job(request: Request, runner: BatchJobsDep, settings: SettingsDep, key: ApiKeyDep):
    """Segment many images by texts, automatically, or from COCO boxes (multipart `images` files or one
    `archive`; or JSON with image_urls or image_dir), exported as COCO, YOLO or PNG masks."""
    batch, params = await _read_submission(request, settings)
    job = await runner.submit(batch, params, owner=key)
    return JSONResponse(batch_job_out(job).model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/batch/jobs/{job.job_id}"})


async def _read_submission(request: Request, settings) -> tuple[BatchInput, dict]:
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=settings.batch_max_images + 1, max_fields=1000,
                                      max_part_size=settings.max_upload_bytes)
            files = {name: [value for value in form.getlist(name) if isinstance(value, UploadFile)]
                     for name in ("images", "archive")}
            params = BatchJobParams.model_validate({k: form.get(k) for k in form.keys() if k not in files})
            if len(files["archive"]) > 1 or (files["archive"] and files["images"]):
                raise InvalidPrompt("send several `images` files or one `archive`, not both", field="archive")
            archive = files["archive"][0] if files["archive"] else None
            return BatchInput(uploads=files["images"], archive=archive), params.model_dump()
        body = BatchJobJson.model_validate_json(await request.body())
    except ValidationError as exc:
        raise schema_error(exc) from None
    if (body.image_urls is None) == (body.image_dir is None):
        raise InvalidPrompt("give image_urls or image_dir (or send files as multipart `images` / `archive`)",
                            field="image_urls")
    batch = BatchInput(image_urls=body.image_urls or [], image_dir=body.image_dir)
    return batch, body.model_dump(exclude={"image_urls", "image_dir"})


@router.get("", summary="List batch jobs")
async def list_jobs(runner: BatchJobsDep, key: ApiKeyDep) -> dict:
    """Every batch job the server holds for you (finished ones too, until they expire), oldest first."""
    return {"jobs": [batch_job_out(job).model_dump(mode="json") for job in runner.store.list("batch")
                     if runner.find(job.job_id, key) is not None]}


@router.get("/{job_id}", response_model=BatchJobOut, responses=ERRORS, summary="A batch job's status")
async def get_job(job_id: str, runner: BatchJobsDep, key: ApiKeyDep) -> BatchJobOut:
    """Status, progress (images done / total / failed, images per second), categories, error."""
    return batch_job_out(_job(runner, job_id, key))


@router.get("/{job_id}/results", responses=ERRORS, summary="Per-image results (NDJSON)",
            response_class=StreamingResponse)
async def get_results(job_id: str, runner: BatchJobsDep, key: ApiKeyDep):
    """One JSON line per finished image: {file_name, width, height, error?, annotations: [{category, score, box,
    mask}]}, masks as COCO RLE. While the job runs, lines stream as images are finished."""
    job = _job(runner, job_id, key)
    return StreamingResponse(record_lines(runner, job), media_type="application/x-ndjson")


@router.get("/{job_id}/events", responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
            summary="Progress and per-image results (Server-Sent Events)")
async def get_events(job_id: str, runner: BatchJobsDep, key: ApiKeyDep):
    """Events `progress` {status, progress}, `image` (a record), and a last `end` {status, error}."""
    return EventSourceResponse(job_events(runner, _job(runner, job_id, key)))


@router.post("/{job_id}/cancel", response_model=BatchJobOut, responses=ERRORS, summary="Cancel a batch job")
async def cancel_job(job_id: str, runner: BatchJobsDep, key: ApiKeyDep) -> BatchJobOut:
    """Stops the job before its next image; the images done are kept (and exported)."""
    job = _job(runner, job_id, key)
    runner.cancel_unless_ended(job)
    return batch_job_out(job)


@router.delete("/{job_id}", status_code=204, responses=ERRORS, summary="Delete a batch job and its files")
async def delete_job(job_id: str, runner: BatchJobsDep, key: ApiKeyDep) -> None:
    """Deletes the job's images, results and files (a running job is stopped first)."""
    runner.delete(_job(runner, job_id, key))


@router.get("/{job_id}/export", responses={**ERRORS, 200: {"content": {"application/json": {},
                                                                      "application/zip": {}}}},
            summary="The job's labels as COCO, COCO results, YOLO or PNG masks", response_class=StreamingResponse)
async def export_job(job_id: str, runner: BatchJobsDep, key: ApiKeyDep,
                     format: Literal["coco", "coco_results", "yolo", "masks"] = Query("coco"),  # noqa: A002
                     mask_format: Literal["rle", "polygon"] = Query("rle")):
    """What the job has done so far (running, cancelled or finished), each image exactly once."""
    job = _job(runner, job_id, key)
    media_type, suffix = EXPORT_FORMATS[format]
    return StreamingResponse(export_body(runner, job, format, mask_format), media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{job_id}-{format}{suffix}"'})


def _job(runner, job_id: str, key: str | None):
    job = runner.find(job_id, key)
    if job is None:
        raise NotFound(f"no batch job {job_id!r} (unknown, deleted, or expired after SAM3_BATCH_JOB_TTL_S)",
                       field="job_id")
    return job
