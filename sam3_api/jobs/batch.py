"""Runs batch labeling jobs one at a time, B images per backbone step, each image's record persisted when done.

Images are read and decoded ahead of the model on a small bounded pool (SAM3_BATCH_PREFETCH), so the model
thread never waits for a file, a URL or a decoder. The vision backbone runs over SAM3_BATCH_BACKBONE_IMAGES
images in one model step at heavy priority (engine/batch_embeddings.py; B = 1 runs it inside each image's
call), then each image's heads run in one call of its own: clicks and single requests wait at most one step.
The job's embeddings live in a small cache of their own, so a batch never evicts interactive users' images.

Nothing lost, nothing twice: an image's record is appended to results.ndjson as soon as it is done, a failed
image is recorded with its error and the job goes on. A job running when the server stops (or dies) is
queued again and resumes from the images not done (BatchResults.done()); a record is never written twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

from ..engine import prompts
from ..engine.batch_embeddings import BATCH_WORK, encode_batch
from ..engine.types import PreparedImage
from ..errors import EngineBusy, InvalidImage, ModelNotReady, RequestTimeout, Sam3Error
from ..media.batch_sources import IMAGE_SUFFIXES
from ..media.coco_boxes import read_coco_boxes
from ..media.fetch import fetch_url
from ..media.images import decode_image
from ..serving.batch import BatchSpec, batch_spec, error_record, needs_model, segment_record
from .batch_inputs import BatchInput, keep_input, local_images, read_listing, write_listing
from .batch_results import RESULTS_FILE, BatchResults
from .runner import SteppedJobRunner
from .store import Job, JobStore
from .submit import discard, incoming_dir

log = logging.getLogger(__name__)
KIND = "batch"
EXPIRY_CHECK_S = 300.0
SAVE_EVERY_S = 1.0  # the manifest (progress) is rewritten at most this often while a job runs
RETRY_BUSY_S = 1.0  # the model queue was full: the image is tried again, never recorded as failed
Loading = tuple[str, asyncio.Task]  # a file_name and the task reading and decoding its pixels
Loaded = PreparedImage | Sam3Error  # an image's pixels, or why they could not be read


class BatchJobRunner(SteppedJobRunner):
    """The single consumer of the batch job queue (started and stopped by the app's lifespan)."""

    def __init__(self, engine, store: JobStore, settings):
        super().__init__(store, KIND)
        store.resume_kinds.add(KIND)  # a batch job running at a crash is queued again, not interrupted
        self.engine, self.settings = engine, settings
        self.step_images = 1  # images per backbone step of the running job (SAM3_BATCH_BACKBONE_IMAGES)

    # ------------------------------------------------------------------------------------------ lifecycle
    async def _interrupted(self, current) -> None:
        """The job running when the server stops is queued again: the next start resumes it."""
        job = self.store.get(current) if current else None
        if job is not None and job.status == "running":
            job.status = "queued"
            self.store.save(job)

    # ------------------------------------------------------------------------------------------ clients
    async def submit(self, batch: BatchInput, params: dict, owner: str | None) -> Job:
        """Keep and list the images, read the prompts, create and queue the job; raises 4xx for bad input."""
        self._admit()
        scratch = incoming_dir(self.settings.data_dir)
        try:
            source, listing = await asyncio.to_thread(keep_input, batch, scratch, self.settings)
            if not listing.file_names:
                raise InvalidImage(f"no images to label: {len(listing.skipped)} files, none an image "
                                   f"({', '.join(sorted(IMAGE_SUFFIXES))})", field="images")
            annotations = params.pop("annotations", None)
            if annotations is not None:
                annotations = await asyncio.to_thread(read_coco_boxes, annotations, max_images=self.settings.
                                                      batch_max_images, max_boxes=self.settings.max_prompts)
            spec = batch_spec(texts=params.pop("texts", None), mode=params.pop("mode", None),
                              annotations=annotations, file_names=listing.file_names, options=params)
            self._check_texts(spec)
            await asyncio.to_thread(write_listing, scratch, listing)
            job = self.store.create(KIND, {"source": source, "spec": spec.to_dict()}, owner)
            for entry in os.listdir(scratch):
                os.replace(scratch / entry, self.store.directory(job.job_id) / entry)
        finally:
            discard(scratch)
        job.progress = {"images_done": 0, "images_total": len(listing.file_names), "images_failed": 0,
                        "images_per_s": 0.0, "skipped": len(listing.skipped)}
        self.store.save(job)
        self._put(job.job_id)
        return job

    def _check_texts(self, spec: BatchSpec) -> None:
        """The limits the engine would apply to each image's texts, checked once before the 202."""
        if spec.mode == "texts":
            prompts.check_count(len(spec.categories), self.settings.max_prompts, "texts")
            for text in spec.categories:
                prompts.check_text(text, self.settings.max_text_length, "texts")

    def _admit(self) -> None:
        waiting = sum(1 for job in self.store.list(KIND) if job.status == "queued")
        if waiting >= self.settings.batch_max_queued_jobs:
            raise EngineBusy(f"{waiting} batch jobs are already waiting (SAM3_BATCH_MAX_QUEUED_JOBS="
                             f"{self.settings.batch_max_queued_jobs}); retry later", retry_after_s=30)

    def results_log(self, directory: Path) -> BatchResults:
        return BatchResults(directory / RESULTS_FILE)

    def file_names(self, job: Job) -> list[str]:
        return read_listing(self.store.directory(job.job_id))["file_names"]

    def find(self, job_id: str, owner: str | None) -> Job | None:
        """The job, if it exists, is a batch job, belongs to `owner` and has not outlived SAM3_BATCH_JOB_TTL_S."""
        job = self.store.get(job_id)
        if job is None or job.kind != KIND or job.owner != owner:
            return None
        if job.finished and job.finished_at + self.settings.batch_job_ttl_s < self.store.clock():
            self.delete(job)
            return None
        return job

    # ------------------------------------------------------------------------------------------ the work
    def sweep(self) -> None:
        """Delete the batch jobs that ended more than SAM3_BATCH_JOB_TTL_S ago, with their files."""
        for job in self.store.expired(kind=KIND, ttl_s=self.settings.batch_job_ttl_s):
            log.info("batch job %s expired", job.job_id)
            self.delete(job)

    async def _expire(self) -> None:
        while True:
            self.sweep()
            await asyncio.sleep(EXPIRY_CHECK_S)

    async def _consume(self) -> None:
        BATCH_WORK.set(True)  # this task's embeddings stay out of interactive users' cache (batch_embeddings.py)
        while True:
            job = await self._next_queued()
            await asyncio.to_thread(self.engine.wait_ready)  # a job queued while the model loads waits for it
            self.current = job.job_id
            try:
                await self._run(job)
            finally:
                self.current = None
                if job.job_id in self._delete_requested:
                    self._delete_requested.discard(job.job_id)
                    self.delete(job)

    async def _run(self, job: Job) -> None:
        job.status, job.started_at = "running", job.started_at or time.time()
        self.store.save(job)
        results = self.results(job.job_id)
        try:
            await self._images(job, results)
            if job.status == "running":
                self.store.finish(job, "succeeded")
        except ModelNotReady as exc:
            self.store.finish(job, "failed", exc.message)
        except Exception:  # a bug must fail this job only, never the runner
            log.exception("batch job %s failed", job.job_id)
            self.store.finish(job, "failed", "internal error while labeling; the traceback is in the server log")
        finally:
            self.engine.metrics.batch_images_per_second.set(0)
            results.notify()

    async def _images(self, job: Job, results: BatchResults) -> None:
        spec = BatchSpec.from_dict(job.request["spec"])
        started, saved, ran = time.perf_counter(), 0.0, 0
        self.step_images = self.engine.batch.images_per_step  # halved for this job by a step out of memory
        async with aclosing(self._prefetched(job, results.done())) as groups:  # a stop cancels the loads
            async for group in groups:
                for file_name, image in await self._encoded(spec, group):
                    if self._cancelled(job, results):
                        return
                    record = await self._record(spec, file_name, image)
                    results.append_record(record)
                    ran += 1
                    self._progressed(job, results, record, ran / max(time.perf_counter() - started, 1e-6))
                    if time.perf_counter() - saved > SAVE_EVERY_S:
                        self.store.save(job)
                        saved = time.perf_counter()
        self.store.save(job)

    def _cancelled(self, job: Job, results: BatchResults) -> bool:
        """A cancel asked for takes effect here, between images: the job ends, the images done are kept."""
        if job.job_id not in self._stop_requested:
            return False
        self._stop_requested.discard(job.job_id)
        self.store.finish(job, "cancelled", f"cancelled after {len(results)} of {job.progress['images_total']} "
                                            "images; the images done are kept")
        return True

    def _progressed(self, job: Job, results: BatchResults, record: dict, images_per_s: float) -> None:
        job.progress.update(images_done=len(results), images_failed=results.failed,
                            images_per_s=round(images_per_s, 3))
        self.engine.metrics.batch_images.labels("error" if "error" in record else "ok").inc()
        self.engine.metrics.batch_images_per_second.set(job.progress["images_per_s"])
        results.notify()

    async def _encoded(self, spec: BatchSpec, group: list[Loading]) -> list[tuple[str, Loaded]]:
        """The group's images loaded (or their load's error) and, those asked something, through one backbone step."""
        loaded: list[tuple[str, Loaded]] = []
        for file_name, loading in group:
            try:
                loaded.append((file_name, await loading))
            except Sam3Error as exc:
                loaded.append((file_name, exc))
        images = [image for name, image in loaded if isinstance(image, PreparedImage) and needs_model(spec, name)]
        if len(images) > 1:
            try:
                await self._retrying_busy(encode_batch, self.engine, images)
            except ModelNotReady:
                raise
            except Sam3Error as exc:  # e.g. out of memory: these run one by one, the next steps take half
                self.step_images = max(1, len(images) // 2)
                log.warning("a step of %d images failed (%s); next: %d", len(images), exc.message, self.step_images)
        return loaded

    async def _record(self, spec: BatchSpec, file_name: str, image: Loaded) -> dict:
        """The image's record; its own failure becomes an error record, a busy engine is waited out."""
        if isinstance(image, Sam3Error):
            return error_record(file_name, image)
        try:
            return await self._retrying_busy(segment_record, self.engine, spec, file_name, image)
        except ModelNotReady:
            raise
        except Sam3Error as exc:  # e.g. a box of the annotations outside this image
            return error_record(file_name, exc, image.width, image.height)

    @staticmethod
    async def _retrying_busy(call, *args):
        """A full model queue (or a queue deadline) is waited out: the image is never recorded as failed for it."""
        while True:
            try:
                return await call(*args)
            except (EngineBusy, RequestTimeout):
                await asyncio.sleep(RETRY_BUSY_S)

    async def _prefetched(self, job: Job, done: frozenset[str]) -> AsyncIterator[list[Loading]]:
        """(file_name, the task loading its pixels) in listing order, in groups of one backbone step, at
        most SAM3_BATCH_PREFETCH loading ahead. Closed early (a stop), it cancels the loads still running."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.settings.batch_prefetch)
        producer = asyncio.create_task(self._produce(job, done, queue))
        pending: list[asyncio.Task] = []
        group: list[Loading] = []
        try:
            while (item := await queue.get()) is not None:
                pending = [task for task in pending if not task.done()] + [item[1]]
                group.append(item)
                if len(group) >= self.step_images:
                    yield group
                    group = []
            if group:
                yield group
            await producer  # raises what the producer raised (an archive gone unreadable)
        except BaseException:  # closed early, cancelled or failed: the loads still running are not needed
            producer.cancel()
            for task in pending:
                task.cancel()
            raise

    async def _produce(self, job: Job, done: frozenset[str], queue: asyncio.Queue) -> None:
        directory, source = self.store.directory(job.job_id), job.request["source"]
        names = await asyncio.to_thread(self.file_names, job)
        if source["kind"] == "urls":
            for name, url in zip(names, source["urls"]):
                if name not in done:
                    await queue.put((name, asyncio.create_task(self._fetch(url))))
        else:
            images = local_images(directory, source, names, done, self.settings)
            while (image := await asyncio.to_thread(next, images, None)) is not None:
                await queue.put((image.file_name, asyncio.create_task(self._decode(image.data, image.error))))
        await queue.put(None)

    async def _fetch(self, url: str) -> PreparedImage:
        settings = self.settings
        data = await fetch_url(url, max_bytes=settings.max_upload_bytes, timeout_s=settings.url_timeout_s,
                               max_redirects=settings.url_max_redirects, allow_private=settings.url_allow_private,
                               allow_hosts=settings.url_allow_hosts)
        return await self._decode(data, None)

    async def _decode(self, data: bytes | None, error: Sam3Error | None) -> PreparedImage:
        if error is not None:
            raise error
        return await asyncio.to_thread(_decoded, data, self.settings)


def _decoded(data: bytes, settings) -> PreparedImage:
    """Pixels and their hash, both off the event loop and off the model thread."""
    pixels = decode_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
    return PreparedImage.from_array(pixels)
