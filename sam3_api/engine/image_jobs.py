"""What runs on the model thread for each request: image prompt kinds and video steps.

Every function here runs on the model thread only (Sam3Engine submits them to its worker); out of memory
(CUDA or host) becomes a 503 for the one request or video job that hit it, after the caches are emptied.
"""

from __future__ import annotations

import time

import numpy as np

from . import automatic, memory
from .types import AutoParams, ConceptQuery, PreparedImage, Segmentation, TrackerQuery


def timed(engine, job, image: PreparedImage, *args):
    """Run a job on the model thread, recording backbone and total time in each result.

    Out of memory (CUDA or host) becomes a 503 for this request only, after the caches are emptied.
    """
    started = time.perf_counter()
    runs_before = engine.backbone_runs
    with memory.answered_as_503(engine):
        embedding = embedding_of(engine, image)
        encode_ms, cached = (time.perf_counter() - started) * 1000, engine.backbone_runs == runs_before
        result = job(engine, embedding, *args)
    timing = {"encode_ms": round(encode_ms, 2), "cached": cached,
              "total_ms": round((time.perf_counter() - started) * 1000, 2)}
    for item in result if isinstance(result, list) else [result]:
        if isinstance(item, Segmentation):
            item.timing_ms = timing
    return result


def embedding_of(engine, image: PreparedImage):
    """Cached backbone output for these pixels; runs the backbone only on a miss (a batch job's work goes to
    its own cache: batch_embeddings.py)."""
    embedding, cache = engine.batch.lookup(engine.cache, image.key)
    if embedding is None:
        embedding = engine.runtime.encode(image.pixels)
        engine.backbone_runs += 1
        cache.put(image.key, embedding)
    return embedding


def encode_many_job(engine, images: list[PreparedImage]) -> None:
    """A batch job's step: the backbone over several images at once, into the batch cache."""
    with memory.answered_as_503(engine):
        embeddings = engine.runtime.encode_many([image.pixels for image in images])
    engine.backbone_runs += len(images)
    for image, embedding in zip(images, embeddings):
        engine.batch.cache.put(image.key, embedding)


def embed_job(engine, embedding):
    return None  # _timed already fetched or computed the embedding


def detect_job(engine, embedding, query: ConceptQuery):
    results, thresholds = [], query.thresholds
    for text in query.texts:
        found = engine.runtime.detect(embedding, text, query.exemplar_boxes, query.exemplar_labels,
                                      thresholds.confidence, thresholds.mask, limit=query.max_masks)
        segmentation = Segmentation(
            masks=found.masks.cpu().numpy(), boxes=found.boxes.float().cpu().numpy(),
            scores=found.scores.float().cpu().numpy(), prompt=text if text is not None else "exemplars",
        )
        results.append(segmentation.sorted_by_score(query.max_masks))
    return results


def tracker_job(engine, embedding, query: TrackerQuery):
    runtime = engine.runtime
    logits, iou = runtime.decode(embedding, points=query.points, labels=query.labels, boxes=query.boxes,
                                 multimask=query.multimask)
    count, candidates = iou.shape
    if query.name == "points" and query.max_masks == 1:  # keep the best candidate of the one object
        best = iou[0].argmax()
        logits, iou, candidates = logits[:, best : best + 1], iou[:, best : best + 1], 1
    masks = runtime.upscale(logits.flatten(0, 1), embedding.original_size)
    masks = (masks.sigmoid() > query.thresholds.mask).cpu()
    scores = iou.flatten().clamp(0, 1).cpu()
    indices = np.repeat(np.arange(count), candidates)
    keep = (scores >= query.thresholds.confidence).numpy()
    result = Segmentation(
        masks=masks.numpy()[keep], boxes=automatic._boxes_of(masks).numpy()[keep],
        scores=scores.numpy().astype(np.float32)[keep], prompt=query.name, prompt_indices=indices[keep],
    )
    return result.sorted_by_score(query.max_masks)


def auto_job(engine, embedding, params: AutoParams):
    return automatic.generate(engine.runtime, embedding, params, between_batches=engine.worker.checkpoint)


def video_job(engine, call, *args):
    """One step of a video run or propagation, or one interactive-video call (engine.video)."""
    with memory.answered_as_503(engine):
        return call(*args)
