"""Runs short persisted jobs of one kind (seed 003's Runpod jobs) in the background, one at a time, in order.

A job is a manifest in the shared JobStore (its kind, the client's request, the API key that owns it). The
runner's `handler(job)` does the work and returns the job's output, which is written next to the manifest
(output.json) so that finished jobs hold no memory; a handler raising Sam3Error fails the job with that
message, any other exception fails it with a generic one (the traceback goes to the log).

Status: queued -> running -> succeeded | failed | cancelled. After a restart a queued job runs again and
one that was running is `interrupted`. Finished jobs are deleted `ttl_s` after they ended: a lookup never
returns an expired job, and a sweep deletes their files.

Cancelling a running job cancels its handler's task, as a client that hangs up cancels a request's handler:
model work it awaits is dropped from the engine's queue (engine/worker.py) or its result discarded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable

from ..errors import EngineBusy, Sam3Error
from .runner import BackgroundRunner
from .store import Job, JobStore

log = logging.getLogger(__name__)
OUTPUT_FILE = "output.json"
SWEEP_S = 60.0  # at most this long between sweeps of expired jobs

Handler = Callable[[Job], Awaitable[dict]]


class ShortJobRunner(BackgroundRunner):
    """The queue and the single consumer of one kind of short job (started and stopped by the lifespan)."""

    def __init__(self, store: JobStore, kind: str, handler: Handler, *, max_queued: int, ttl_s: float,
                 ready: Callable[[], Awaitable[object]] | None = None, queue_setting: str = "max_queued"):
        super().__init__(store, kind)
        self.handler = handler
        self.max_queued, self.ttl_s, self._ready, self._queue_setting = max_queued, ttl_s, ready, queue_setting
        self._running: tuple[Job, asyncio.Task] | None = None
        self._ended: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------------------------------------ lifecycle
    def _loops(self):
        return [("consumer", self._consume()), ("expiry", self._sweep())]

    def _running_job(self):
        return self._running

    async def _interrupted(self, running) -> None:
        """The job running (if any) is stopped and marked interrupted; waiters are woken."""
        for ended in self._ended.values():  # wake whoever still waits: the job will not end on this loop
            ended.set()
        self._ended.clear()
        if running is not None:
            job, task = running
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if not job.finished:
                self.store.finish(job, "interrupted", "the server shut down while this job ran")

    # ------------------------------------------------------------------------------------------ clients
    def submit(self, request: dict, owner: str | None) -> Job:
        """Create and queue a job; a full queue raises EngineBusy (503 + Retry-After)."""
        waiting = sum(1 for job in self.store.list(self.kind) if job.status == "queued")
        if waiting >= self.max_queued:
            raise EngineBusy(f"{waiting} jobs are already waiting ({self._queue_setting}={self.max_queued}); "
                             "retry later", retry_after_s=5)
        job = self.store.create(self.kind, request, owner)
        self._put(job.job_id)
        return job

    def find(self, job_id: str, owner: str | None) -> Job | None:
        """The job, if it exists, is of this kind, belongs to `owner` and has not expired."""
        job = self.store.get(job_id)
        if job is None or job.kind != self.kind or job.owner != owner:
            return None
        if self._expired(job, self.store.clock()):
            self.store.delete(job.job_id)
            return None
        return job

    def jobs(self, owner: str | None) -> list[Job]:
        now = self.store.clock()
        return [job for job in self.store.list(self.kind) if job.owner == owner and not self._expired(job, now)]

    @property
    def busy(self) -> bool:
        return self._running is not None

    def cancel(self, job: Job) -> None:
        """Queued: never runs. Running: its handler's task is cancelled now. Finished: nothing to do."""
        if job.finished:
            return
        self.store.finish(job, "cancelled", "cancelled by the client")
        if self._running is not None and self._running[0] is job:
            self._running[1].cancel()
        self._signal(job)

    async def wait(self, job: Job, timeout_s: float) -> None:
        """Return when the job has ended, or after `timeout_s` seconds."""
        if job.finished or timeout_s <= 0:
            return
        ended = self._ended.setdefault(job.job_id, asyncio.Event())
        try:
            await asyncio.wait_for(ended.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass

    def read_output(self, job: Job) -> dict | None:
        """The output of a succeeded job (file I/O: call it in a thread), None if it is gone."""
        try:
            return json.loads((self.store.directory(job.job_id) / OUTPUT_FILE).read_text())
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------------------------------ the work
    async def _consume(self) -> None:
        while True:
            job = await self._next_queued()
            if self._ready is not None:
                await self._ready()  # e.g. the model still loading: the job waits in the queue
            if job.status == "queued":  # it may have been cancelled meanwhile
                await self._run(job)

    async def _run(self, job: Job) -> None:
        job.status, job.started_at = "running", self.store.clock()
        self.store.save(job)
        task = asyncio.create_task(self.handler(job), name=f"{self.kind}-job-{job.job_id}")
        self._running = (job, task)
        try:
            await asyncio.wait({task})  # unlike `await task`, a cancelled handler does not cancel us
            if not task.cancelled():
                await self._record(job, task)
        finally:
            self._running = None
            self._signal(job)

    async def _record(self, job: Job, task: asyncio.Task) -> None:
        error = task.exception()
        if error is None:
            await asyncio.to_thread(self._write_output, job, task.result())
            if job.status == "running":  # not cancelled while the output was written
                job.outputs = {"output": OUTPUT_FILE}
                self.store.finish(job, "succeeded")
        elif isinstance(error, Sam3Error):
            self.store.finish(job, "failed", error.message)
        else:  # a bug must fail this job only, never the runner
            log.error("%s job %s failed", self.kind, job.job_id, exc_info=error)
            self.store.finish(job, "failed", "internal error while running the job; the traceback is in the "
                                             "server log")

    def _write_output(self, job: Job, output: dict) -> None:
        path = self.store.directory(job.job_id) / OUTPUT_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(output, separators=(",", ":")))
        os.replace(temporary, path)

    def _signal(self, job: Job) -> None:
        ended = self._ended.pop(job.job_id, None)
        if ended is not None:
            ended.set()

    def _expired(self, job: Job, now: float) -> bool:
        return job.finished and job.finished_at + self.ttl_s < now

    def sweep(self) -> None:
        """Delete the finished jobs older than the TTL, with their files."""
        for job in self.store.expired(kind=self.kind, ttl_s=self.ttl_s):
            self.store.delete(job.job_id)

    async def _sweep(self) -> None:
        while True:
            self.sweep()
            await asyncio.sleep(min(SWEEP_S, self.ttl_s))
