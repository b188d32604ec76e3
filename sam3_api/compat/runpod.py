"""Drop-in for seed 003, a SAM 3 Runpod serverless worker: runpod's SDK and raw calls work unchanged.

Runpod's job protocol (what the platform answers, read from runpod-python 1.12.0's endpoint/runner.py and
endpoint/asyncio/), served under /v2/{endpoint_id}/ (any endpoint id: there is one model) and bare:
  POST runsync?wait=<ms>  run a job and wait for it (default 90 s, at most SAM3_RUNPOD_MAX_WAIT_S): the
                          finished job, else {"id", "status": "IN_QUEUE" | "IN_PROGRESS"} to poll
  POST run                queue a job -> {"id", "status": "IN_QUEUE"}
  GET  status/{id}        (POST too) {"id", "status", "delayTime" ms, "executionTime" ms, "output" | "error"}
  POST cancel/{id}        -> {"id", "status": "CANCELLED"} (a finished job keeps its status)
  POST purge-queue        cancel your queued jobs -> {"removed": n, "status": "completed"}
  GET  health             (under /v2/{id}/ only: bare /health is the native probe) -> {"jobs": {"completed",
                          "failed", "inProgress", "inQueue", "retried"}, "workers": {"idle", "running", ...}}
Body {"input": {"image_url", "concepts": [...], "confidence_threshold": 0.5}} (runpod_handler.py); a finished
job is {"id", "status": "COMPLETED", "delayTime", "executionTime", "output": {"output": {"image_size": [W, H],
"results": {concept: {"instance_count", "masks_base64": [L-mode PNG], "scores"}}}}}; a failed one {"id",
"status": "FAILED", "error": "..."}. Status FAILED is what the platform answers when the handler returns
{"error": ...}; the service's doc (COMPLETED + output.error) is not what clients receive.
Errors of the protocol itself (unknown job, no `input`, bad key, full queue): {"error": "<message>"}.

Jobs live in the video jobs' JobStore (kind "runpod", one directory each, output.json beside the manifest),
run one at a time on a ShortJobRunner, survive a restart (a queued job runs, a running one is FAILED with
a note) and are deleted SAM3_RUNPOD_JOB_TTL_S after they end. A job is visible only to the API key that
made it (health counts only that key's jobs). Keys travel as Runpod's: `Authorization: Bearer <key>`.

Deliberate differences: image_url goes through the SSRF-safe fetcher (public hosts only, unless the
operator allows others); `confidence_threshold` applies to its own job only (the original's leaked into
every later request of the worker); repeated concepts are segmented once; jobs wait for the model to load
in IN_QUEUE (delayTime counts it, like a cold start); "retried" is always 0 (jobs are never retried).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import ApiKeyDep, EngineDep, RunpodJobsDep, SettingsDep
from ..api.errors import Surface
from ..errors import NotFound
from ..jobs.short import ShortJobRunner
from ..jobs.store import Job
from .common import error_field
from .runpod_handler import make_handler
from ..api.services import Services

KIND = "runpod"
DEFAULT_WAIT_MS = 90_000
STATUS = {"queued": "IN_QUEUE", "running": "IN_PROGRESS", "succeeded": "COMPLETED", "failed": "FAILED",
          "cancelled": "CANCELLED", "interrupted": "FAILED"}
INTERRUPTED = "the server restarted while this job ran; submit it again"
ENDPOINT_ID = {"name": "endpoint_id", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "Any id: this server is one endpoint (its handlers do not read it)"}


router = APIRouter(tags=["drop-in: Runpod serverless (seed 003)"])
SURFACE = Surface("runpod", error_field, paths=frozenset({"/run", "/runsync", "/purge-queue"}),
                  prefixes=("/v2/", "/status/", "/cancel/"))


def install_state(services: Services) -> None:
    """The seed 003 job runner, on the same JobStore as the video jobs; the app's lifespan runs it."""
    engine, settings = services.engine, services.settings
    services.runpod_jobs = ShortJobRunner(
        services.video_jobs.store, KIND, make_handler(engine, settings), max_queued=settings.runpod_max_queued_jobs,
        ttl_s=settings.runpod_job_ttl_s, ready=lambda: asyncio.to_thread(engine.wait_ready),
        queue_setting="SAM3_RUNPOD_MAX_QUEUED_JOBS")
    services.add_runner(services.runpod_jobs)


class RunRequest(BaseModel):
    """Runpod's request body; its other fields (webhook, policy, s3Config) are accepted and not used."""

    model_config = ConfigDict(extra="ignore")

    input: dict[str, Any] = Field(..., description="{\"image_url\", \"concepts\": [...], \"confidence_threshold\"}")


def _route(path: str, methods: list[str], summary: str, bare: bool = True):
    """Register the decorated handler under /v2/{endpoint_id}/<path> and (unless bare=False) /<path>."""
    def register(handler):
        for method in methods:
            router.add_api_route("/v2/{endpoint_id}" + path, handler, methods=[method], summary=summary,
                                 operation_id=f"runpod_{handler.__name__}_{method.lower()}",
                                 openapi_extra={"parameters": [ENDPOINT_ID]})
            if bare:
                router.add_api_route(path, handler, methods=[method], summary=summary + " (bare path)",
                                     operation_id=f"runpod_{handler.__name__}_{method.lower()}_bare")
        return handler
    return register


@_route("/runsync", ["POST"], "Run a job and wait for its result (Runpod)")
async def runsync(body: RunRequest, runner: RunpodJobsDep, settings: SettingsDep, key: ApiKeyDep,
                  wait: int | None = Query(None, ge=0, description="Milliseconds to wait (default 90000)")) -> dict:
    """The finished job, or its id and status when it takes longer than `wait` (then poll status/{id})."""
    job = runner.submit({"input": body.input}, key)
    wait_ms = DEFAULT_WAIT_MS if wait is None else wait
    await runner.wait(job, min(wait_ms / 1000, settings.runpod_max_wait_s))
    return await _answer(runner, job)


@_route("/run", ["POST"], "Queue a job (Runpod)")
async def run(body: RunRequest, runner: RunpodJobsDep, key: ApiKeyDep) -> dict:
    """{"id", "status": "IN_QUEUE"}; poll status/{id} for the result."""
    job = runner.submit({"input": body.input}, key)
    return {"id": job.job_id, "status": STATUS[job.status]}


@_route("/status/{job_id}", ["GET", "POST"], "A job's status and result (Runpod)")
async def status(job_id: str, runner: RunpodJobsDep, key: ApiKeyDep) -> dict:
    """IN_QUEUE, IN_PROGRESS, COMPLETED (with output), FAILED (with error) or CANCELLED."""
    return await _answer(runner, _job(runner, job_id, key))


@_route("/cancel/{job_id}", ["POST"], "Cancel a job (Runpod)")
async def cancel(job_id: str, runner: RunpodJobsDep, key: ApiKeyDep) -> dict:
    """A queued job never runs; a running one stops now; a finished one keeps its status."""
    job = _job(runner, job_id, key)
    runner.cancel(job)
    return {"id": job.job_id, "status": STATUS[job.status]}


@_route("/purge-queue", ["POST"], "Cancel every queued job of yours (Runpod)")
async def purge_queue(runner: RunpodJobsDep, key: ApiKeyDep) -> dict:
    """Jobs already running are left to finish."""
    queued = [job for job in runner.jobs(key) if job.status == "queued"]
    for job in queued:
        runner.cancel(job)
    return {"removed": len(queued), "status": "completed"}


@_route("/health", ["GET"], "Job counts and worker state (Runpod)", bare=False)
async def health(runner: RunpodJobsDep, engine: EngineDep, key: ApiKeyDep) -> dict:
    """Your jobs by state, and the one worker: idle, running, initializing (model loading) or unhealthy."""
    counts = {state: 0 for state in STATUS}
    for job in runner.jobs(key):
        counts[job.status] += 1
    model = engine.status.state
    running = int(runner.busy)
    return {"jobs": {"completed": counts["succeeded"], "failed": counts["failed"] + counts["interrupted"],
                     "inProgress": counts["running"], "inQueue": counts["queued"], "retried": 0},
            "workers": {"idle": int(model == "ready" and not running), "running": running,
                        "initializing": int(model == "loading"), "unhealthy": int(model == "failed")}}


async def _answer(runner: ShortJobRunner, job: Job) -> dict:
    """A job as Runpod's status call shows it."""
    answer: dict[str, Any] = {"id": job.job_id, "status": STATUS[job.status]}
    if job.started_at is not None:
        answer["delayTime"] = _ms(job.started_at - job.created_at)
        if job.finished_at is not None:
            answer["executionTime"] = _ms(job.finished_at - job.started_at)
    if job.status == "succeeded":
        answer["output"] = await asyncio.to_thread(runner.read_output, job)
    elif job.status == "failed":
        answer["error"] = job.error
    elif job.status == "interrupted":
        answer["error"] = INTERRUPTED
    return answer


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _job(runner: ShortJobRunner, job_id: str, key: str | None) -> Job:
    job = runner.find(job_id, key)
    if job is None:
        raise NotFound(f"request does not exist: no job {job_id!r} (unknown, made with another API key, or "
                       "deleted SAM3_RUNPOD_JOB_TTL_S after it ended)", field="job_id")
    return job

