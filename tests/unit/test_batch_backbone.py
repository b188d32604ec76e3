"""The batched backbone of batch jobs (SAM3_BATCH_BACKBONE_IMAGES): B images in one model step give each image
the masks of its own single pass, and batch work keeps its embeddings out of interactive users' cache."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from sam3_api.engine import image_jobs
from sam3_api.engine.batch_embeddings import BATCH_WORK, encode_batch
from sam3_api.engine.engine import Sam3Engine
from sam3_api.engine.types import PreparedImage
from tests.conftest import dev_settings, engine_for, limits, random_image

# Different sizes and aspect ratios: each is resized to the same square input, so they stack in one batch.
IMAGES = [random_image(48 + 16 * i, 80 - 8 * i, seed=i) for i in range(4)]
BOX = [[6, 8, 40, 44]]


def on_model_thread(engine: Sam3Engine, call, *args):
    return engine.worker.submit(call, *args).result(timeout=120)


def masks_of(engine: Sam3Engine, embedding) -> tuple[np.ndarray, np.ndarray]:
    """Concept masks ("cat", every query kept) and a box's mask, as the routes compute them."""
    runtime = engine.runtime
    found = runtime.detect(embedding, "cat", None, None, 0.0, 0.5)
    logits, _ = runtime.decode(embedding, boxes=BOX)
    box = runtime.upscale(logits.flatten(0, 1), embedding.original_size).sigmoid() > 0.5
    return found.masks.numpy(), box.numpy()


def test_a_batched_step_gives_each_image_the_masks_of_its_single_pass(request, precision):
    """bf16 features are bit-identical; fp32 ones differ in the last bits (a batched matmul adds in another
    order, ~5e-7 on dev-tiny), far too little to move a mask pixel across its threshold: masks are equal."""
    engine = engine_for(request, precision)

    def compare():
        batched = engine.runtime.encode_many(IMAGES)
        for pixels, embedding in zip(IMAGES, batched):
            single = engine.runtime.encode(pixels)
            assert embedding.original_size == pixels.shape[:2] and embedding.nbytes == single.nbytes
            for got, want in zip([*embedding.detector.fpn_hidden_states, *embedding.tracker],
                                 [*single.detector.fpn_hidden_states, *single.tracker]):
                assert got.shape == want.shape and got.dtype == want.dtype
                if precision == "bf16":
                    assert torch.equal(got, want)
                else:
                    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            (concepts, box), (want_concepts, want_box) = masks_of(engine, embedding), masks_of(engine, single)
            assert concepts.shape[0] > 0 and np.array_equal(concepts, want_concepts)
            assert box.any() and np.array_equal(box, want_box)

    on_model_thread(engine, compare)


def test_batch_work_never_evicts_nor_counts_in_the_interactive_cache():
    engine = Sam3Engine(dev_settings(embedding_cache_entries=1, batch_backbone_images=2))
    assert engine.wait_ready(timeout=300).ready
    try:
        asyncio.run(_user_then_batch(engine))
    finally:
        engine.stop()


async def _user_then_batch(engine: Sam3Engine) -> None:
    user = await engine.embed(random_image(40, 40, seed=99))  # an interactive user's image, in the shared cache
    hits, misses, runs = engine.cache.hits, engine.cache.misses, engine.backbone_runs
    images = [PreparedImage.from_array(pixels) for pixels in IMAGES + [IMAGES[0][:30]]]

    async def batch_job():
        BATCH_WORK.set(True)  # as the batch runner's task does
        for start in range(0, len(images), 2):
            await encode_batch(engine, images[start:start + 2])
            for image in images[start:start + 2]:
                result = (await engine.segment_text(image, ["cat"], thresholds=limits()))[0]
                assert result.timing_ms["cached"]  # its backbone ran in the batched step, not again

    await asyncio.create_task(batch_job())
    assert user.key in engine.cache and len(engine.cache) == 1  # entries=1: one batch image would have evicted it
    assert (engine.cache.hits, engine.cache.misses) == (hits, misses)
    assert engine.backbone_runs == runs + len(images)  # each image once
    assert len(engine.batch.cache) <= 4  # 2 x SAM3_BATCH_BACKBONE_IMAGES
    assert image_jobs.embedding_of(engine, user) is engine.cache.peek(user.key)  # outside batch work: shared cache


@pytest.mark.parametrize("requested,device,expected", [(0, "cpu", 1), (0, "cuda", 4), (3, "cpu", 3)])
def test_the_step_size_is_the_setting_or_the_device_default(requested, device, expected):
    engine = Sam3Engine(dev_settings(batch_backbone_images=requested))
    engine.batch.resolve(device)
    assert engine.batch.images_per_step == expected and engine.batch.cache.max_entries == 2 * expected
