"""Sam3Engine: the one object every surface (REST, WebSocket, adapters) uses to reach the model.

It owns the model lifecycle (loading / ready / failed, reported truthfully), the model worker thread and the
image-embedding cache. Public methods are async: they validate the prompt, then await a job on the model
thread. Thresholds are arguments of each call and never stored, so one request cannot change the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..config import Settings
from ..errors import ModelNotReady
from . import automatic, prompts
from .cache import EmbeddingCache
from .types import AutoParams, EngineStatus, PreparedImage, Segmentation
from .worker import ModelWorker

log = logging.getLogger(__name__)
# Embedding-cache outcomes (True = hit) of the current request, for the X-Sam3-Cache header: the API's
# middleware installs a list, _run appends on the event loop (the model thread does not see request context).
CACHE_OUTCOMES: ContextVar[list[bool] | None] = ContextVar("sam3_cache_outcomes", default=None)


class Sam3Engine:
    """Loads SAM 3 once and serves every prompt kind from a single model thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.worker = ModelWorker(settings.max_queue)
        self.cache: EmbeddingCache = EmbeddingCache(settings.embedding_cache_entries, settings.embedding_cache_bytes)
        self.runtime = None  # Sam3Runtime once loaded
        self.backbone_runs = 0
        self._status = EngineStatus("loading", settings.model, settings.device, settings.is_dev_model)
        self._load_future: Future | None = None

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

    def stop(self) -> None:
        self.worker.shutdown()

    @property
    def status(self) -> EngineStatus:
        return self._status

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self.runtime, device, is_random = _load_runtime(self.settings)
        except Exception as exc:  # a bad checkpoint must be reported, never crash-loop the server
            log.exception("loading %s failed", self.settings.model)
            reason = f"{type(exc).__name__}: {exc}"
            self._status = EngineStatus("failed", self.settings.model, self.settings.device,
                                        self.settings.is_dev_model, error=_load_hint(reason))
            return
        seconds = time.perf_counter() - started
        self._status = EngineStatus("ready", self.settings.model, device, is_random, load_seconds=seconds)
        log.info("SAM 3 ready on %s in %.1f s (%s parameters)", device, seconds, f"{self.runtime.parameter_count:,}")

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

    def _embedding(self, image: PreparedImage):
        """Cached backbone output for these pixels; runs the backbone only on a miss. Model thread only."""
        embedding = self.cache.get(image.key)
        if embedding is None:
            embedding = self.runtime.encode(image.pixels)
            self.backbone_runs += 1
            self.cache.put(image.key, embedding)
        return embedding

    async def _run(self, job, image: np.ndarray | PreparedImage, *args):
        self._require_ready()
        prepared = await self.prepare(image)
        result = await self.worker.run(_timed, self, job, prepared, *args)
        outcomes = CACHE_OUTCOMES.get()
        if outcomes is not None:
            outcomes.extend(item.timing_ms["cached"] for item in (result if isinstance(result, list) else [result])
                            if isinstance(item, Segmentation) and "cached" in item.timing_ms)
        return result

    async def embed(self, image: np.ndarray | PreparedImage) -> PreparedImage:
        """Encode an image ahead of prompts (WebSocket init); later prompts on it skip the backbone."""
        prepared = await self.prepare(image)
        await self._run(_embed_job, prepared)
        return prepared

    # ---------------------------------------------------------------- prompt kinds
    async def segment_text(
        self,
        image: np.ndarray | PreparedImage,
        texts: Sequence[str | None],
        *,
        exemplar_boxes: Sequence[Sequence[float]] | None = None,
        exemplar_labels: Sequence[int] | None = None,
        confidence_threshold: float = 0.5,
        mask_threshold: float = 0.5,
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
        thresholds = (prompts.check_threshold(confidence_threshold, "confidence_threshold"),
                      prompts.check_threshold(mask_threshold, "mask_threshold"))
        return await self._run(_detect_job, prepared, texts, boxes, labels, *thresholds, self._cap(max_masks))

    async def segment_boxes(
        self, image, boxes: Sequence[Sequence[float]], *, mask_threshold: float = 0.5,
        confidence_threshold: float = 0.0, max_masks: int | None = None,
    ) -> Segmentation:
        """Single-object boxes: each box yields the one object inside it (prompt_indices maps them back)."""
        prepared = await self.prepare(image)
        prompts.check_count(len(boxes), self.settings.max_prompts, "boxes")
        boxes = prompts.check_boxes(boxes, prepared.width, prepared.height)
        thresholds = (prompts.check_threshold(mask_threshold, "mask_threshold"),
                      prompts.check_threshold(confidence_threshold, "confidence_threshold"))
        return await self._run(_tracker_job, prepared, None, None, boxes, False, *thresholds, max_masks, "box")

    async def segment_points(
        self, image, points: Sequence[Sequence[float]], labels: Sequence[int], *,
        box: Sequence[float] | None = None, mask_threshold: float = 0.5, confidence_threshold: float = 0.0,
        multimask: bool = False, max_masks: int | None = None,
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
        thresholds = (prompts.check_threshold(mask_threshold, "mask_threshold"),
                      prompts.check_threshold(confidence_threshold, "confidence_threshold"))
        keep = max_masks if multimask else 1
        return await self._run(_tracker_job, prepared, [points], [labels], boxes, decode_multi, *thresholds,
                               keep, "points")

    async def segment_auto(self, image, params: AutoParams = AutoParams()) -> Segmentation:
        """Segment everything: point grid -> tracker -> quality filters -> NMS (see automatic.py)."""
        prompts.check_threshold(params.pred_iou_thresh, "pred_iou_thresh")
        prompts.check_threshold(params.stability_score_thresh, "stability_score_thresh")
        prompts.check_threshold(params.mask_threshold, "mask_threshold")
        return await self._run(_auto_job, image, replace(params, max_masks=self._cap(params.max_masks)))

    def _cap(self, max_masks: int | None) -> int:
        """A request may ask for fewer masks than SAM3_MAX_MASKS, never more: answers stay bounded."""
        return min(max_masks or self.settings.max_masks, self.settings.max_masks)


def _timed(engine: Sam3Engine, job, image: PreparedImage, *args):
    """Run a job on the model thread, recording backbone and total time in each result."""
    started = time.perf_counter()
    runs_before = engine.backbone_runs
    encode_started = time.perf_counter()
    embedding = engine._embedding(image)
    encode_ms = (time.perf_counter() - encode_started) * 1000
    result = job(engine, embedding, *args)
    timing = {"encode_ms": round(encode_ms, 2), "cached": engine.backbone_runs == runs_before,
              "total_ms": round((time.perf_counter() - started) * 1000, 2)}
    for item in result if isinstance(result, list) else [result]:
        if isinstance(item, Segmentation):
            item.timing_ms = timing
    return result


def _embed_job(engine, embedding):
    return None  # _timed already fetched or computed the embedding


def _detect_job(engine, embedding, texts, boxes, labels, confidence, mask_threshold, max_masks):
    results = []
    for text in texts:
        found = engine.runtime.detect(embedding, text, boxes, labels, confidence, mask_threshold)
        segmentation = Segmentation(
            masks=found.masks.cpu().numpy(), boxes=found.boxes.float().cpu().numpy(),
            scores=found.scores.float().cpu().numpy(), prompt=text if text is not None else "exemplars",
        )
        results.append(segmentation.sorted_by_score(max_masks))
    return results


def _tracker_job(engine, embedding, points, labels, boxes, multimask, mask_threshold, confidence, max_masks, name):
    runtime = engine.runtime
    logits, iou = runtime.decode(embedding, points=points, labels=labels, boxes=boxes, multimask=multimask)
    count, candidates = iou.shape
    if name == "points" and max_masks == 1:  # keep the best candidate of the one object
        best = iou[0].argmax()
        logits, iou, candidates = logits[:, best : best + 1], iou[:, best : best + 1], 1
    masks = runtime.upscale(logits.flatten(0, 1), embedding.original_size)
    masks = (masks.sigmoid() > mask_threshold).cpu()
    scores = iou.flatten().clamp(0, 1).cpu()
    indices = np.repeat(np.arange(count), candidates)
    keep = (scores >= confidence).numpy()
    result = Segmentation(
        masks=masks.numpy()[keep], boxes=automatic._boxes_of(masks).numpy()[keep],
        scores=scores.numpy().astype(np.float32)[keep], prompt=name, prompt_indices=indices[keep],
    )
    return result.sorted_by_score(max_masks)


def _auto_job(engine, embedding, params: AutoParams):
    return automatic.generate(engine.runtime, embedding, params)


def _load_runtime(settings: Settings):
    """Resolve SAM3_MODEL (dev-tiny, directory or hub id) and load it on the chosen device."""
    from .devmodel import ensure_dev_checkpoint, is_random_checkpoint
    from .runtime import Sam3Runtime, configure_torch, pick_device

    device = pick_device(settings.device)
    configure_torch(device, settings.torch_num_threads)
    source = str(ensure_dev_checkpoint(settings.cache_dir)) if settings.is_dev_model else settings.model
    runtime = Sam3Runtime.from_pretrained(source, device, token=settings.hf_token)
    return runtime, device.type, settings.is_dev_model or is_random_checkpoint(source)


def _load_hint(reason: str) -> str:
    """Add the usual fix for the usual failures (gated repo, no network) to the raw reason."""
    lowered = reason.lower()
    if any(word in lowered for word in ("401", "403", "gated", "token", "unauthorized")):
        return reason + " -- request access at https://huggingface.co/facebook/sam3 and set HF_TOKEN"
    if any(word in lowered for word in ("connect", "offline", "resolve", "not a local folder", "does not appear")):
        return reason + " -- check network access, or point SAM3_MODEL at a local checkpoint directory " \
                        "(or use SAM3_MODEL=dev-tiny to try the server offline)"
    return reason
