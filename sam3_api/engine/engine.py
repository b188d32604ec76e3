"""Sam3Engine: the one object every surface (REST, WebSocket, adapters) uses to reach the model.

It owns the model lifecycle (loading / ready / failed, reported truthfully), the model thread and the embedding
cache. Public methods are async: they validate the prompt, then await a job on the model thread. Thresholds
are arguments of each call and never stored, so one request cannot change the next."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..config import Settings
from ..errors import ModelNotReady
from ..metrics import Sam3Metrics
from . import image_jobs, loading, prompts
from .batch_embeddings import BATCH_WORK, BatchEmbeddings
from .cache import EmbeddingCache
from .types import AutoParams, ConceptQuery, EngineStatus, PreparedImage, Segmentation, Thresholds, TrackerQuery
from .worker import ModelWorker, Priority

# Prompt kinds that take milliseconds once the image's embedding is cached: they go ahead of heavy work.
INTERACTIVE_KINDS = {"box", "points", "embed"}
# What the engine reads of its settings: an app sharing an engine must agree on these (api/services.py).
SETTINGS_READ = ("model", "device", "precision", "cache_dir", "hf_token", "torch_num_threads", "load_retries",
                 "load_retry_backoff_s", "log_format", "max_queue", "priority_burst", "request_timeout_s",
                 "embedding_cache_entries", "embedding_cache_bytes", "max_prompts", "max_text_length", "max_masks",
                 "video_max_objects", "batch_backbone_images")
log = logging.getLogger(__name__)
# Embedding-cache outcomes (True = hit) of the current request, for X-Sam3-Cache: the API's middleware installs
# a list; _run appends to it on the event loop once the job's result is back (the model thread reports there).
CACHE_OUTCOMES: ContextVar[list[bool] | None] = ContextVar("sam3_cache_outcomes", default=None)


class Sam3Engine:
    """Loads SAM 3 once and serves every prompt kind from a single model thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = Sam3Metrics()
        self.worker = ModelWorker(settings.max_queue, burst=settings.priority_burst,
                                  queue_timeout_s=settings.request_timeout_s, metrics=self.metrics)
        self.cache: EmbeddingCache = EmbeddingCache(settings.embedding_cache_entries, settings.embedding_cache_bytes)
        self.batch = BatchEmbeddings(settings.batch_backbone_images)  # batch jobs' embeddings, kept apart
        self.runtime = None  # Sam3Runtime once loaded
        self.backbone_runs = 0
        self._status = EngineStatus("loading", settings.model, settings.device, settings.is_dev_model)
        self._load_future: Future | None = None
        self._stopping = threading.Event()  # interrupts a load retry's backoff at shutdown

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> Future:
        """Begin loading on the model thread; the server answers /health (loading) meanwhile."""
        if self._load_future is None:
            self._load_future = self.worker.submit(self._load)
        return self._load_future

    def wait_ready(self, timeout: float | None = None) -> EngineStatus:
        """Block until loading finished (tests, benchmarks, the CLI)."""
        self.start().result(timeout=timeout)
        return self._status

    def stop(self, timeout: float | None = None) -> None:
        """Stop the model thread: queued jobs are dropped, a running one stops at its next checkpoint."""
        self._stopping.set()
        self.worker.shutdown(timeout)

    @property
    def status(self) -> EngineStatus:
        return self._status

    def _load(self) -> None:
        started = time.perf_counter()
        settings = self.settings
        try:
            self.runtime, device, is_random = loading.load_with_retries(
                self._load_attempt, settings.load_retries, settings.load_retry_backoff_s, self._retrying,
                self._stopping)
        except Exception as exc:  # a bad checkpoint must be reported, never crash-loop the server
            log.exception("loading %s failed", settings.model)
            self._status = EngineStatus("failed", settings.model, settings.device, settings.is_dev_model,
                                        error=loading.describe(exc), attempts=self._status.attempts + 1)
            return
        seconds = time.perf_counter() - started
        self.batch.resolve(self.runtime.device.type)
        precision = self.runtime.precision
        self._status = EngineStatus("ready", settings.model, device, is_random, load_seconds=seconds,
                                    attempts=self._status.attempts + 1, precision=precision.name,
                                    precision_reason=precision.reason)
        self.metrics.precision.labels(precision.name).set(1)
        log.info("SAM 3 ready on %s in %.1f s (%s parameters, precision %s: %s)", device, seconds,
                 f"{self.runtime.parameter_count:,}", precision.name, precision.reason)

    def _load_attempt(self):
        self.metrics.load_attempts.inc()
        if self.settings.log_format == "json":
            loading.quiet_progress_bars()
        return loading.load_runtime(self.settings)

    def _retrying(self, attempt: int, exc: BaseException, delay: float) -> None:
        """A transient load failure: /health keeps saying loading, with the attempt and the reason."""
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        message = f"attempt {attempt} of {self.settings.load_retries + 1} failed ({reason}); retrying in {delay:.0f} s"
        log.warning("loading %s: %s", self.settings.model, message)
        self._status = EngineStatus("loading", self.settings.model, self.settings.device, self.settings.is_dev_model,
                                    attempts=attempt, error=message)

    def _require_ready(self) -> None:
        status = self._status
        if status.state == "loading":
            raise ModelNotReady(f"The model {status.model} is still loading; retry in a few seconds.",
                                headers={"Retry-After": "5"})
        if status.state == "failed":
            raise ModelNotReady(f"The model {status.model} failed to load: {status.error}")

    # ---------------------------------------------------------------- images
    async def prepare(self, pixels: np.ndarray | PreparedImage) -> PreparedImage:
        """Hash the pixels once (off the event loop); the hash is the embedding-cache key."""
        if isinstance(pixels, PreparedImage):
            return pixels
        return await asyncio.to_thread(PreparedImage.from_array, pixels)

    async def _run(self, job, image: np.ndarray | PreparedImage, *args, kind: str):
        self._require_ready()
        prepared = await self.prepare(image)
        result = await self.worker.run(image_jobs.timed, self, job, prepared, *args,
                                       priority=self.priority_for(kind, prepared), label=kind)
        outcomes = CACHE_OUTCOMES.get()
        if outcomes is not None:
            outcomes.extend(item.timing_ms["cached"] for item in (result if isinstance(result, list) else [result])
                            if isinstance(item, Segmentation) and "cached" in item.timing_ms)
        return result

    def priority_for(self, kind: str, image: PreparedImage) -> Priority:
        """Interactive: a box, points or embed on a cached image. Heavy: any new-image encode, automatic mode.

        Reading the cache's keys off the model thread is safe: a dict membership test is atomic under the GIL,
        and a stale answer only misplaces one job by one level. Batch work is never interactive."""
        if kind == "auto" or not self.batch.finds(self.cache, image.key):
            return Priority.HEAVY
        return Priority.INTERACTIVE if kind in INTERACTIVE_KINDS and not BATCH_WORK.get() else Priority.NORMAL

    async def embed(self, image: np.ndarray | PreparedImage) -> PreparedImage:
        """Encode an image ahead of prompts (WebSocket init); later prompts on it skip the backbone."""
        prepared = await self.prepare(image)
        await self._run(image_jobs.embed_job, prepared, kind="embed")
        return prepared

    # ---------------------------------------------------------------- prompt kinds
    async def segment_text(
        self, image: np.ndarray | PreparedImage, texts: Sequence[str | None], *, thresholds: Thresholds,
        exemplar_boxes: Sequence[Sequence[float]] | None = None, exemplar_labels: Sequence[int] | None = None,
        max_masks: int | None = None,
    ) -> list[Segmentation]:
        """Concept prompts: every instance of each text (and/or exemplar boxes), one result per text.

        A text of None with exemplar boxes means "find everything like these boxes" (positive label 1,
        negative 0). Results are sorted by score and limited to `max_masks` per text.
        """
        prepared = await self.prepare(image)
        h, w = prepared.height, prepared.width
        prompts.check_count(len(texts), self.settings.max_prompts, "texts")
        texts = [None if t is None else prompts.check_text(t, self.settings.max_text_length) for t in texts]
        boxes = labels = None
        if exemplar_boxes:
            prompts.check_count(len(exemplar_boxes), self.settings.max_prompts, "exemplar_boxes")
            boxes = prompts.check_boxes(exemplar_boxes, w, h, "exemplar_boxes")
            labels = prompts.check_labels(exemplar_labels or [1] * len(boxes), len(boxes), "exemplar_labels", "boxes")
        if not boxes and any(t is None for t in texts):
            raise prompts.InvalidPrompt("give a text, exemplar boxes, or both", field="text")
        query = ConceptQuery(texts, boxes, labels, _checked(thresholds), self._cap(max_masks))
        return await self._run(image_jobs.detect_job, prepared, query, kind="text")

    async def segment_boxes(
        self, image, boxes: Sequence[Sequence[float]], *, thresholds: Thresholds, max_masks: int | None = None,
    ) -> Segmentation:
        """Single-object boxes: each box yields the one object inside it (prompt_indices maps them back)."""
        prepared = await self.prepare(image)
        prompts.check_count(len(boxes), self.settings.max_prompts, "boxes")
        boxes = prompts.check_boxes(boxes, prepared.width, prepared.height)
        query = TrackerQuery(None, None, boxes, False, _checked(thresholds), max_masks, "box")
        return await self._run(image_jobs.tracker_job, prepared, query, kind="box")

    async def segment_points(
        self, image, points: Sequence[Sequence[float]], labels: Sequence[int], *, thresholds: Thresholds,
        box: Sequence[float] | None = None, multimask: bool = False, max_masks: int | None = None,
    ) -> Segmentation:
        """Points (1 positive, 0 negative), optionally with one box: one object.

        With `multimask` the three candidate masks SAM proposes for an ambiguous prompt are returned, best
        first; otherwise the best one. A single point without a box is ambiguous, so SAM decodes three
        candidates and keeps the one with the highest predicted IoU.
        """
        prepared = await self.prepare(image)
        w, h = prepared.width, prepared.height
        prompts.check_count(len(points), self.settings.max_prompts, "points")
        points = prompts.check_points(points, w, h)
        labels = prompts.check_labels(labels, len(points))
        boxes = None if box is None else [prompts.check_box(box, w, h)]
        decode_multi = multimask or (len(points) == 1 and box is None)
        query = TrackerQuery([points], [labels], boxes, decode_multi, _checked(thresholds),
                             max_masks if multimask else 1, "points")
        return await self._run(image_jobs.tracker_job, prepared, query, kind="points")

    async def segment_auto(self, image, params: AutoParams) -> Segmentation:
        """Segment everything: point grid -> tracker -> quality filters -> NMS (see automatic.py)."""
        prompts.check_threshold(params.pred_iou_thresh, "pred_iou_thresh")
        prompts.check_threshold(params.stability_score_thresh, "stability_score_thresh")
        prompts.check_threshold(params.mask_threshold, "mask_threshold")
        return await self._run(image_jobs.auto_job, image, replace(params, max_masks=self._cap(params.max_masks)),
                               kind="auto")

    # ---------------------------------------------------------------- video
    def video_run(self, reader, request):
        """Validate a video request against its clip and plan the run (no model work yet).

        `reader` gives the clip's decoded frames (media.video.FrameStore, engine.video.ArrayFrames); the run is
        then advanced with `video_step`, one frame per model-thread job, so other requests interleave.
        """
        from .video.run import VideoRun

        self._require_ready()
        return VideoRun(self.runtime, reader, self.check_video_request(request, len(reader), reader.width,
                                                                       reader.height))

    def check_video_request(self, request, frame_count: int, width: int, height: int):
        """The request with its prompts validated against a clip of that size (InvalidPrompt otherwise)."""
        from .video.checks import check_video_request

        limits = self.settings
        return check_video_request(request, frame_count, width, height, max_objects=limits.video_max_objects,
                                   max_texts=limits.max_prompts, max_text_length=limits.max_text_length,
                                   max_points=limits.max_prompts)

    async def video_step(self, run):
        """One step of a video run on the model thread; returns the frames it completed (masks as COCO RLE).

        Heavy priority: clicks and cached-image prompts go first. Exempt from SAM3_REQUEST_TIMEOUT_S: a step
        waiting behind interactive work must not fail the job it belongs to.
        """
        self._require_ready()
        return await self.worker.run(image_jobs.video_job, self, run.step, priority=Priority.HEAVY, label="video",
                                     expires=False)

    def interactive_video(self, reader, mask_threshold: float):
        """An interactive session over a decoded clip (prompts on any frame, propagation): video/interactive.py."""
        from .video.interactive import InteractiveVideo

        self._require_ready()
        return InteractiveVideo(self.runtime, reader, mask_threshold)

    async def video_prompt(self, video, object_id: int, frame: int, points=None, labels=None, box=None):
        """Set an object's points and/or box on a frame of an interactive video; its masks on that frame."""
        return await self._video_call(video, lambda: video.prompt(object_id, frame, points, labels, box), frame)

    async def video_clear_prompt(self, video, object_id: int, frame: int):
        """Remove an object's prompt on a frame (the object goes when nothing else is left)."""
        return await self._video_call(video, lambda: video.clear_prompt(object_id, frame), frame)

    async def video_add_concept(self, video, frame: int, text: str, confidence: float, next_id: int):
        """Every instance of `text` on a frame becomes an object (ids from `next_id`): (ids, frame result)."""
        return await self._video_call(video, lambda: video.add_concept(frame, text, confidence, next_id), frame)

    async def video_remove(self, video, object_id: int) -> None:
        await self._video_call(video, lambda: video.remove(object_id))

    async def video_reset(self, video) -> None:
        await self._video_call(video, video.reset)

    async def _video_call(self, video, call, frame: int | None = None):
        """Run one InteractiveVideo call on the model thread: interactive priority when `frame`'s backbone
        output is cached (a click on a frame seen before), heavy when a new frame needs the ViT."""
        self._require_ready()
        priority = Priority.INTERACTIVE if frame is not None and video.has_features(frame) else Priority.HEAVY
        return await self.worker.run(image_jobs.video_job, self, call, priority=priority, label="video",
                                     expires=False)

    def _cap(self, max_masks: int | None) -> int:
        """A request may ask for fewer masks than SAM3_MAX_MASKS, never more: answers stay bounded."""
        return min(max_masks or self.settings.max_masks, self.settings.max_masks)


def _checked(thresholds: Thresholds) -> Thresholds:
    prompts.check_threshold(thresholds.mask, "mask_threshold")
    prompts.check_threshold(thresholds.confidence, "confidence_threshold")
    return thresholds
