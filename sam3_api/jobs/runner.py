"""BackgroundRunner: the restartable base of every persisted-job runner (video jobs, seed 003's jobs).

The app's lifespan alone starts and stops the runners (main.py, through the services object). Each start
makes a fresh queue and fresh tasks on the running event loop and queues the store's waiting jobs of its
kind (the first start also recovers them from disk), so an app whose lifespan runs twice (an in-process test
client, a reload) runs its jobs the second time too. A subclass names its background loops and what to do
with the job it was running when it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from ..errors import Conflict
from .store import Job, JobStore


class BackgroundRunner:
    """A queue of job ids of one kind and the tasks that consume it, restartable."""

    def __init__(self, store: JobStore, kind: str):
        self.store, self.kind = store, kind
        self._queue: asyncio.Queue[str] | None = None  # made on the event loop, by start()
        self._tasks: list[asyncio.Task] = []

    @property
    def running(self) -> bool:
        return self._queue is not None

    def start(self) -> None:
        """Queue the waiting jobs and start the loops (idempotent while running)."""
        if self._queue is not None:
            return
        self._queue = asyncio.Queue()
        self.store.recover(self.kind)  # the first start loads the jobs on disk; later ones find them in memory
        for job in self.store.list(self.kind):
            if job.status == "queued":
                self._queue.put_nowait(job.job_id)
        self._tasks = [asyncio.create_task(loop, name=f"{self.kind}-jobs-{name}") for name, loop in self._loops()]

    async def shutdown(self) -> None:
        """Stop the loops; the job that was running (if any) is handed to `_interrupted`."""
        running = self._running_job()  # read first: stopping the consumer clears it
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queue, self._tasks = None, []
        await self._interrupted(running)

    def _put(self, job_id: str) -> None:
        """Queue a job the store holds as queued; while stopped it waits there, and start() queues it."""
        if self._queue is not None:
            self._queue.put_nowait(job_id)

    async def _next_queued(self) -> Job:
        """The next job still queued (a cancelled or deleted one is skipped)."""
        while True:
            job = self.store.get(await self._queue.get())
            if job is not None and job.status == "queued":
                return job

    # ------------------------------------------------------------------------------------------ subclasses
    def _loops(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        raise NotImplementedError

    def _running_job(self) -> Any:
        return None

    async def _interrupted(self, running: Any) -> None:
        """Mark the job that was running when the runner stopped (its finished work is kept)."""


class SteppedJobRunner(BackgroundRunner):
    """A runner whose jobs advance step by step (video frames, batch images) with a results log each: cancel
    and delete take effect between steps (the running loop reads the two request sets). A subclass names its
    results log (`results_log(job directory)`) and its two loops, `_consume` (which sets `current` while a job
    runs) and `_expire`."""

    def __init__(self, store: JobStore, kind: str):
        super().__init__(store, kind)
        self.current: str | None = None  # the id of the job running now
        self._logs: dict[str, Any] = {}  # job id -> its results log
        self._stop_requested: set[str] = set()
        self._delete_requested: set[str] = set()

    def results_log(self, directory: Path):
        raise NotImplementedError

    async def _consume(self) -> None:
        raise NotImplementedError

    async def _expire(self) -> None:
        raise NotImplementedError

    def _loops(self):
        return [("consumer", self._consume()), ("expiry", self._expire())]

    def _running_job(self):
        return self.current

    def results(self, job_id: str):
        """The job's results log (one object per job, so waiting readers and the writer share it)."""
        if job_id not in self._logs:
            self._logs[job_id] = self.results_log(self.store.directory(job_id))
        return self._logs[job_id]

    def _jobs_changed(self) -> None:
        """Called after a cancel or delete changed the store at once (the video runner publishes its gauges)."""

    def cancel(self, job: Job) -> None:
        """Queued: cancelled at once. Running: stops before its next step; the steps done are kept."""
        if job.status == "queued":
            self.store.finish(job, "cancelled", "cancelled before it started")
            self.results(job.job_id).notify()
            self._jobs_changed()
        else:
            self._stop_requested.add(job.job_id)

    def cancel_unless_ended(self, job: Job) -> None:
        """A client's cancel: 409 once the job has ended (nothing to cancel), else cancel()."""
        if job.finished:
            raise Conflict(f"job {job.job_id} already ended ({job.status}); nothing to cancel")
        self.cancel(job)

    def delete(self, job: Job) -> None:
        """Delete now, or (running) as soon as the runner has stopped it."""
        if job.status == "running":
            self._delete_requested.add(job.job_id)
            self._stop_requested.add(job.job_id)
            return
        self.store.delete(job.job_id)
        self._logs.pop(job.job_id, None)
        self._jobs_changed()
