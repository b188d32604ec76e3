"""Reading a batch job out: its status document, its records as NDJSON, its SSE events, and its exports.

Both streams follow a running job: they send the records written so far, then wait on the job's results log
for more, and end when the job has ended and every record it wrote was sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

from fastapi.sse import format_sse_event

from ..jobs.store import Job
from ..media.exports import export_chunks
from .batch_schemas import BatchJobOut, BatchProgress

WAIT_S = 5.0  # a stream re-checks the job at least this often even without news


def batch_job_out(job: Job) -> BatchJobOut:
    base = f"/batch/jobs/{job.job_id}"
    links = {"self": base, "results": f"{base}/results", "events": f"{base}/events", "cancel": f"{base}/cancel",
             "export": f"{base}/export?format=coco"}
    return BatchJobOut(job_id=job.job_id, status=job.status, progress=BatchProgress(**job.progress),
                       categories=job.request["spec"]["categories"], error=job.error, created_at=job.created_at,
                       started_at=job.started_at, finished_at=job.finished_at, links=links)


async def _follow(runner, job: Job) -> AsyncIterator[tuple[bool, list[bytes]]]:
    """(job ended?, the lines written since the last turn), until the job has ended and all lines were given."""
    results, sent = runner.results(job.job_id), 0
    while True:
        seen = results.version
        ended = job.finished  # read before the lines: nothing written before the end is missed
        lines = results.lines_since(sent)
        sent += len(lines)
        yield ended, lines
        if ended:
            return
        await results.wait(seen, WAIT_S)


async def record_lines(runner, job: Job) -> AsyncIterator[bytes]:
    """Each finished image's record, in the order they were finished, waiting for more while the job runs."""
    async for _, lines in _follow(runner, job):
        for line in lines:
            yield line


async def job_events(runner, job: Job) -> AsyncIterator[bytes]:
    """`progress` whenever the job moves, `image` for each finished image, then `end` (SSE wire format)."""
    async for ended, lines in _follow(runner, job):
        yield format_sse_event(event="progress", data_str=json.dumps({"status": job.status, "progress": job.progress}))
        for line in lines:
            yield format_sse_event(event="image", data_str=line.decode().strip())
        if ended:
            yield format_sse_event(event="end", data_str=json.dumps({"status": job.status, "error": job.error}))


def export_body(runner, job: Job, export_format: str, mask_format: str) -> Iterator[bytes]:
    """The export of what the job has done so far, streamed from its records in listing order (blocking reads:
    StreamingResponse iterates it in a thread)."""
    order = runner.file_names(job)
    records = runner.results(job.job_id).records(order)
    yield from export_chunks(export_format, records, job.request["spec"]["categories"], mask_format=mask_format)
