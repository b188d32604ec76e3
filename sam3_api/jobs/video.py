"""Runs video jobs one at a time, one frame step at a time, persisting every finished frame.

A job is decoded and checked at submission (api/routes/video.py), so what reaches the runner is a clip of
decoded frames on disk and a validated request. The runner asks the engine for one step at a time and writes
each finished frame at once; between steps the model thread serves everyone else, and a cancel takes effect
before the next step. Jobs wait in order in a bounded queue (full: 503 + Retry-After at submission).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from ..errors import EngineBusy, Sam3Error
from .render import render_annotated_video
from .results import ResultsLog
from .runner import SteppedJobRunner
from .submit import clear_stale_incoming
from .store import ACTIVE, FINISHED, Job, JobStore
from .video_io import StoreFrames, frame_line, object_entry, open_frames, run_request

log = logging.getLogger(__name__)
DECODERS = 2
EXPIRY_CHECK_S = 300.0
SAVE_EVERY_S = 1.0  # the manifest (progress) is rewritten at most this often while a job runs


class VideoJobRunner(SteppedJobRunner):
    """The single consumer of the video job queue (started and stopped by the app's lifespan)."""

    def __init__(self, engine, store: JobStore, max_queued: int):
        super().__init__(store, "video")
        self.engine, self.max_queued = engine, max_queued
        self.decoding = asyncio.Semaphore(DECODERS)  # submissions decoding at once (CPU-heavy processes)

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if not self.running:
            clear_stale_incoming(self.store.root.parent)
            self.decoding = asyncio.Semaphore(DECODERS)  # of this lifespan's event loop
        super().start()
        self.publish_counts()

    async def _interrupted(self, current) -> None:
        """A job still running is marked interrupted (its finished frames are kept)."""
        job = self.store.get(current) if current else None
        if job is not None and not job.finished:
            self.store.finish(job, "interrupted", "the server shut down while this job ran; the frames it "
                                                  "finished are kept and can be read")

    # ------------------------------------------------------------------------------------------ clients
    def queued(self) -> int:
        return sum(1 for job in self.store.list("video") if job.status == "queued")

    def admit(self) -> None:
        """Refuse a new job while the queue is full (checked before the video is decoded)."""
        if self.queued() >= self.max_queued:
            raise EngineBusy(f"{self.queued()} video jobs are already waiting (SAM3_VIDEO_MAX_QUEUED_JOBS="
                             f"{self.max_queued}); retry later", retry_after_s=30)

    def enqueue(self, job: Job) -> None:
        self._put(job.job_id)
        self.results(job.job_id).notify()
        self.publish_counts()

    def results_log(self, directory: Path) -> ResultsLog:
        return ResultsLog(directory / "results.ndjson")

    def _jobs_changed(self) -> None:
        self.publish_counts()

    # ------------------------------------------------------------------------------------------ the work
    async def _expire(self) -> None:
        """Delete finished jobs older than SAM3_VIDEO_JOB_TTL_S, now and then every EXPIRY_CHECK_S."""
        while True:
            for job in self.store.expired(kind="video"):
                log.info("video job %s expired", job.job_id)
                self.delete(job)
            await asyncio.sleep(EXPIRY_CHECK_S)

    async def _consume(self) -> None:
        while True:
            job = await self._next_queued()
            self.current = job.job_id
            try:
                await self._run(job)
            finally:
                self.current = None
                self._finish_deletion(job)

    async def _run(self, job: Job) -> None:
        job.status, job.started_at = "running", time.time()
        self.store.save(job)
        self.publish_counts()
        results, frames = self.results(job.job_id), None
        try:
            frames = await asyncio.to_thread(open_frames, self.store.directory(job.job_id))
            run = self.engine.video_run(StoreFrames(frames), run_request(job.request))
            await self._steps(job, run, frames, results)
            if job.status == "running" and job.request.get("annotated_video"):
                await asyncio.to_thread(render_annotated_video, self.store.directory(job.job_id), frames, results)
                job.outputs["video_mp4"] = True
            if job.status == "running":
                self.store.finish(job, "succeeded")
        except Sam3Error as exc:
            self.store.finish(job, "failed", exc.message)
        except Exception:  # a bug must fail this job only, never the runner
            log.exception("video job %s failed", job.job_id)
            self.store.finish(job, "failed", "internal error while tracking; the traceback is in the server log")
        finally:
            if frames is not None:
                frames.close()
            self.engine.metrics.video_frames_per_second.set(0)
            self.publish_counts()
            results.notify()

    async def _steps(self, job: Job, run, frames, results: ResultsLog) -> None:
        started, saved = time.perf_counter(), 0.0
        job.progress = {"frames_done": len(results), "frames_total": run.frame_count, "fps": 0.0}
        while not run.done:
            if job.job_id in self._stop_requested:
                self._stop_requested.discard(job.job_id)
                self.store.finish(job, "cancelled", f"cancelled after {len(results)} of {run.frame_count} frames; "
                                                    "the finished frames are kept")
                return
            finished = await self.engine.video_step(run)
            if finished:
                results.append([frame_line(result, frames.info) for result in finished])
            self._update(job, run, results, started, len(finished))
            if time.perf_counter() - saved > SAVE_EVERY_S or run.done:
                self.store.save(job)
                saved = time.perf_counter()

    def _update(self, job: Job, run, results: ResultsLog, started: float, finished: int) -> None:
        elapsed = max(time.perf_counter() - started, 1e-6)
        job.progress = {"frames_done": len(results), "frames_total": run.frame_count,
                        "fps": round(run.frames_done / elapsed, 3)}
        job.objects = [object_entry(entry, job.video) for entry in run.catalog.values()]
        metrics = self.engine.metrics
        metrics.video_frames.inc(finished)
        metrics.video_frames_per_second.set(job.progress["fps"])
        results.notify()

    def publish_counts(self) -> None:
        """The sam3_video_jobs gauge: how many jobs the store holds in each status."""
        counts = {status: 0 for status in (*ACTIVE, *FINISHED)}
        for job in self.store.list("video"):
            counts[job.status] = counts.get(job.status, 0) + 1
        for status, count in counts.items():
            self.engine.metrics.video_jobs.labels(status=status).set(count)

    def _finish_deletion(self, job: Job) -> None:
        if job.job_id in self._delete_requested:
            self._delete_requested.discard(job.job_id)
            self.store.delete(job.job_id)
            self._logs.pop(job.job_id, None)
