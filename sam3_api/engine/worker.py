"""One model thread fed by a bounded, prioritised queue.

Every model call runs here, never on the event loop or FastAPI's shared threadpool: one thread means the GPU
sees one job at a time and no lock is needed around the model or the cache. A full queue fails fast with
EngineBusy (503 + Retry-After) instead of letting latency grow without bound.

Scheduling: three priorities, interactive first, without starving heavy work (fairqueue.py). A long job calls
`checkpoint()` between its internal steps (automatic mode between decoder batches): it stops there if its
caller went away, and waiting interactive jobs run there, inline on this same thread, so a click waits for
one step of a heavy job, not for all of it. Video jobs submit one frame step at a time with Priority.HEAVY.

Cancellation: a queued job whose caller went away (its asyncio task cancelled, or its future cancelled) is
removed at once and never runs. A job that waited longer than `queue_timeout_s` is dropped with RequestTimeout
(504) without running.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ..errors import EngineBusy, ModelOutOfMemory, RequestTimeout
from .fairqueue import FairQueue, Priority

__all__ = ["JobCancelled", "ModelWorker", "Priority"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class JobCancelled(Exception):
    """Raised by checkpoint() inside a running job whose caller went away or whose server is stopping."""


class JobFuture(Future):
    """A Future that knows its job, so a caller holding only the future can abandon it."""

    job: "Job"


@dataclass(eq=False)
class Job:
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    priority: Priority
    label: str
    context: contextvars.Context  # the caller's context: request ids reach the model thread's log lines
    future: JobFuture = field(default_factory=JobFuture)
    enqueued: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued -> running -> done, or queued -> done (cancelled or expired)
    stop_requested: bool = False
    expires: bool = True  # False: background work that waits its turn however long (no queue deadline)
    nested_seconds: float = 0.0  # time spent running interactive jobs at this job's checkpoints

    def __post_init__(self) -> None:
        self.future.job = self


class ModelWorker:
    """Runs callables one at a time on a dedicated thread; at most `max_queue` jobs queued or running."""

    def __init__(self, max_queue: int, retry_after_s: int = 1, *, burst: int = 4,
                 queue_timeout_s: float | None = None, metrics=None):
        self._max_queue = max_queue
        self._retry_after_s = retry_after_s
        self._burst = max(1, burst)
        self._queue: FairQueue[Job] = FairQueue(burst)
        self._queue_timeout_s = queue_timeout_s or None
        self._metrics = metrics  # a sam3_api.metrics.Sam3Metrics, or None
        self._cond = threading.Condition()
        self._pending = 0
        self._closed = False
        self._current = threading.local()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ callers
    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return self._pending

    @property
    def max_queue(self) -> int:
        return self._max_queue

    def queued_by_priority(self) -> dict[str, int]:
        """Jobs waiting at each priority (the running one excluded), for /metrics."""
        with self._cond:
            return self._queue.counts()

    def submit(self, fn: Callable[..., T], *args: Any, priority: Priority = Priority.NORMAL,
               label: str | None = None, expires: bool = True, **kwargs: Any) -> JobFuture:
        """Queue a job; raises EngineBusy when `max_queue` jobs are already queued or running.

        `label` names the job in the metrics (default: the function's name); `expires=False` exempts it from
        the queue deadline (a video job's frame step waits its turn, it has no client about to give up).
        """
        job = Job(fn, args, kwargs, Priority(priority), label or getattr(fn, "__name__", "job").strip("_"),
                  contextvars.copy_context(), expires=expires)
        job.future.add_done_callback(lambda _: self._forget_if_cancelled(job))
        with self._cond:
            if self._closed:
                raise EngineBusy("The server is shutting down; retry on another replica.",
                                 retry_after_s=self._retry_after_s)
            if self._pending >= self._max_queue:
                raise EngineBusy(
                    f"The model is busy: {self._pending} requests are queued (SAM3_MAX_QUEUE={self._max_queue}). "
                    f"Retry in {self._retry_after_s} s.",
                    retry_after_s=self._retry_after_s,
                )
            self._pending += 1
            self._queue.push(job, job.priority)
            self._ensure_thread()
            self._cond.notify()
        return job.future

    async def run(self, fn: Callable[..., T], *args: Any, priority: Priority = Priority.NORMAL,
                  label: str | None = None, expires: bool = True, **kwargs: Any) -> T:
        """Queue a job and await its result without blocking the event loop.

        Cancelling the awaiting task (the client went away) removes the job if it is still queued, or asks it
        to stop at its next checkpoint if it is running. Waiting longer than the queue timeout raises
        RequestTimeout and the job never runs.
        """
        future = self.submit(fn, *args, priority=priority, label=label, expires=expires, **kwargs)
        job = future.job
        waiter = asyncio.wrap_future(future)
        try:
            if self._queue_timeout_s and expires:
                await asyncio.wait({waiter}, timeout=self._queue_timeout_s)
                self._expire(job)
            return await waiter
        except asyncio.CancelledError:
            self.abandon(future)
            raise

    def abandon(self, future: JobFuture) -> None:
        """The caller no longer wants this result: drop the job if queued, stop it at a checkpoint if running."""
        future.job.stop_requested = True
        future.cancel()  # succeeds only while queued; the done callback then frees its slot

    def checkpoint(self) -> None:
        """Called by a long job between its steps (model thread only): stop if asked, let interactive work in."""
        job: Job | None = getattr(self._current, "job", None)
        if job is None:
            return
        if job.stop_requested or self._closed:
            raise JobCancelled(f"{job.label} stopped: its caller went away or the server is stopping")
        if job.priority is Priority.INTERACTIVE:
            return
        started = time.perf_counter()
        for _ in range(self._burst):
            nested = self._take(only=Priority.INTERACTIVE)
            if nested is None:
                break
            self._execute(nested)
        job.nested_seconds += time.perf_counter() - started

    def shutdown(self, timeout: float | None = None) -> None:
        """Refuse new jobs, drop queued ones, ask the running one to stop, wait up to `timeout` for the thread."""
        with self._cond:
            self._closed = True
            dropped = list(self._queue)
            self._queue.clear()
            for job in dropped:
                self._finish(job)
            self._cond.notify_all()
        for job in dropped:  # an error, not a cancellation: their callers were not cancelled, the server stops
            job.future.set_exception(EngineBusy("The server is shutting down; retry on another replica.",
                                                retry_after_s=self._retry_after_s))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():  # a daemon thread: it cannot hold the process past this point
                log.warning("the model thread is still running a job after %s s; leaving it behind", timeout)

    # ------------------------------------------------------------------------------------------ queue
    def _ensure_thread(self) -> None:
        if self._thread is None:
            # A daemon: a job stuck in native code must not keep the process alive past its shutdown grace.
            self._thread = threading.Thread(target=self._loop, name="sam3-model", daemon=True)
            self._thread.start()

    def _finish(self, job: Job) -> None:
        """Lock held: the job leaves the books and frees its slot."""
        job.state = "done"
        self._pending -= 1

    def _unqueue(self, job: Job) -> bool:
        """Take a still-waiting job out of its queue; False when it already started or ended."""
        with self._cond:
            if job.state != "queued":
                return False
            self._queue.remove(job, job.priority)
            self._finish(job)
            return True

    def _forget_if_cancelled(self, job: Job) -> None:
        """Done callback: a job cancelled while queued leaves the queue now, not when its turn comes."""
        if job.future.cancelled() and self._unqueue(job):
            self._count(job, "cancelled")
            log.info("dropped a queued %s job: its caller went away", job.label)

    def _expire(self, job: Job) -> None:
        """Drop `job` with RequestTimeout if it is still waiting (called when the queue deadline passes)."""
        if self._unqueue(job):
            self._fail_expired(job)

    def _fail_expired(self, job: Job) -> None:
        waited = time.monotonic() - job.enqueued
        job.future.set_exception(RequestTimeout(
            f"the request waited {waited:.0f} s for the model (SAM3_REQUEST_TIMEOUT_S={self._queue_timeout_s:g}) "
            "and was dropped; retry later or with a lighter request"))
        self._count(job, "expired")

    def _take(self, only: Priority | None = None) -> Job | None:
        """Pop the next job to run and mark it running; skip cancelled and expired ones."""
        with self._cond:
            while True:
                job = self._queue.pop(only)
                if job is None:
                    return None
                if not job.future.set_running_or_notify_cancel():
                    self._finish(job)  # cancelled between pick and start; its callback finds it done
                    self._count(job, "cancelled")
                    continue
                waited = time.monotonic() - job.enqueued
                if job.expires and self._queue_timeout_s and waited > self._queue_timeout_s:
                    self._finish(job)
                    self._fail_expired(job)
                    continue
                job.state = "running"
                if self._metrics is not None:
                    self._metrics.queue_wait_seconds.labels(job.priority.name.lower()).observe(
                        time.monotonic() - job.enqueued)
                return job

    # ------------------------------------------------------------------------------------------ thread
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._queue:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
            job = self._take()
            if job is not None:
                self._execute(job)
            # Not kept while idle: the last job's arguments (a closed video session, an image) must be freed now.
            job = None

    def _execute(self, job: Job) -> None:
        previous = getattr(self._current, "job", None)
        self._current.job = job
        started = time.perf_counter()
        result = error = None
        try:
            result = job.context.run(job.fn, *job.args, **job.kwargs)
        except BaseException as exc:  # delivered to the caller; the thread keeps serving
            error = exc
        finally:
            self._current.job = previous
            with self._cond:  # before the result is set: a caller that sees it also sees the free slot
                self._finish(job)
        self._record(job, error, time.perf_counter() - started - job.nested_seconds)
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    def _record(self, job: Job, error: BaseException | None, seconds: float) -> None:
        outcome = "ok" if error is None else OUTCOMES.get(type(error), "error")
        if self._metrics is not None:
            self._metrics.model_seconds.labels(job.label).observe(seconds)
        self._count(job, outcome)

    def _count(self, job: Job, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.model_jobs.labels(job.label, outcome).inc()


OUTCOMES = {JobCancelled: "stopped", ModelOutOfMemory: "out_of_memory"}

