"""The real engine on the dev-tiny checkpoint: what it holds (one copy of the weights, shared position
encodings, bounded decoder batches, capped answers) and exact parity of its detector post-processing."""

from __future__ import annotations

import asyncio

import torch

from tests.conftest import auto_params, limits, random_image


def run(coro):
    return asyncio.run(coro)


WEIGHTS_PROBE = """
import asyncio, gc, json, torch
from tests.conftest import auto_params, dev_settings, limits, random_image
from sam3_api.engine.engine import Sam3Engine
engine = Sam3Engine(dev_settings()); engine.wait_ready(300)
image = random_image(120, 160)
async def every_prompt_kind():
    await engine.segment_text(image, ["cat"], exemplar_boxes=[[0, 0, 50, 50]], thresholds=limits(confidence=0.5))
    await engine.segment_boxes(image, [[0, 0, 50, 50]], thresholds=limits())
    await engine.segment_points(image, [[10, 10]], [1], thresholds=limits())
    await engine.segment_auto(image, auto_params(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0))
asyncio.run(every_prompt_kind())
gc.collect()
alive = {id(o): o.numel() for o in gc.get_objects() if isinstance(o, torch.nn.Parameter)}
modules = [o for o in gc.get_objects() if isinstance(o, torch.nn.Module)]
for m in modules:
    alive.update({id(p): p.numel() for p in m.parameters()})
print(json.dumps({"alive": sum(alive.values()), "model": engine.runtime.parameter_count,
                  "tracker_has_vit": engine.runtime.model.tracker_model.vision_encoder is not None}))
"""


def test_process_serving_every_prompt_kind_holds_one_copy_of_the_weights():
    """In a fresh process, after every prompt kind ran, all live parameters are the one Sam3VideoModel's."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    output = subprocess.run([sys.executable, "-c", WEIGHTS_PROBE], cwd=REPO, capture_output=True, text=True,
                            timeout=300, check=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    assert not figures["tracker_has_vit"], "the tracker must reuse the detector's backbone, not own a ViT"
    assert figures["alive"] <= 1.05 * figures["model"], figures


def test_cached_images_share_position_encodings_and_count_only_their_own_bytes(engine):
    first = engine.runtime.encode(random_image(50, 70, seed=31))
    second = engine.runtime.encode(random_image(90, 40, seed=32))
    for a, b in zip(first.detector.fpn_position_encoding, second.detector.fpn_position_encoding):
        assert a is b
    fresh = engine.runtime.model.detector_model.get_vision_features(
        pixel_values=torch.zeros(1, 3, *[engine.runtime.model.config.detector_config.image_size] * 2))
    for shared, computed in zip(first.detector.fpn_position_encoding, fresh.fpn_position_encoding):
        assert torch.equal(shared, computed), "position encodings must not depend on the pixels"
    own = sum(t.numel() * t.element_size() for t in [*first.detector.fpn_hidden_states, *first.tracker])
    assert first.nbytes == own


def test_detector_postprocessing_matches_the_processors_reference(engine):
    """Our chunked, bool-only post-processing gives exactly what Sam3Processor's gives."""
    from sam3_api.engine.detections import instances

    runtime = engine.runtime
    image = random_image(90, 130, seed=41)
    embedding = runtime.encode(image)
    features, attention_mask = runtime._text_features("cat")
    with torch.inference_mode():
        outputs = runtime.model.detector_model(vision_embeds=embedding.detector, text_embeds=features,
                                               attention_mask=attention_mask)
        reference = runtime.processor.post_process_instance_segmentation(
            outputs, threshold=0.2, mask_threshold=0.4, target_sizes=[(90, 130)])[0]
        ours = instances(outputs, 0.2, 0.4, (90, 130))
    assert torch.equal(ours.masks, reference["masks"].bool())
    assert torch.allclose(ours.boxes, reference["boxes"]) and torch.allclose(ours.scores, reference["scores"])


def test_cpu_decoder_batch_follows_the_memory_budget(engine):
    from sam3_api.engine.automatic import MAX_BATCH, default_batch

    embedding = engine.runtime.encode(random_image(40, 40))
    assert default_batch(embedding, "cuda") == MAX_BATCH
    assert default_batch(embedding, "cpu") == MAX_BATCH  # dev-tiny's features are a few kB
    full_size_level_bytes = [32 * 288 * 288 * 4, 64 * 144 * 144 * 4, 256 * 72 * 72 * 4]

    class FullSize:
        tracker = [torch.empty(n // 4, dtype=torch.float32) for n in full_size_level_bytes]

    assert default_batch(FullSize, "cpu") == 4


def test_answers_never_carry_more_masks_than_the_server_cap():
    from sam3_api.engine.engine import Sam3Engine
    from tests.conftest import dev_settings

    capped = Sam3Engine(dev_settings(max_masks=3))
    try:
        assert capped.wait_ready(120).ready
        image = random_image(64, 96)
        auto = run(capped.segment_auto(image, auto_params(points_per_side=8, pred_iou_thresh=0,
                                                         stability_score_thresh=0, box_nms_thresh=1.0)))
        [text] = run(capped.segment_text(image, ["cat"], thresholds=limits(confidence=0.0), max_masks=50))
        [fewer] = run(capped.segment_text(image, ["cat"], thresholds=limits(confidence=0.0), max_masks=2))
        assert auto.num_masks == 3 and text.num_masks == 3 and fewer.num_masks == 2
    finally:
        capped.stop()


def test_runs_of_clicks_on_one_image_cast_its_features_for_the_decoder_once(bf16_engine, monkeypatch):
    """Under bf16 the prompt decoder reads fp32 copies of the cached features: the runtime keeps the copy of the
    last image decoded, makes a new one for another image, and drops it with the image's embedding."""
    import gc

    from sam3_api.engine.precision import Precision

    runtime, casts, original = bf16_engine.runtime, [], Precision.decoder_features
    monkeypatch.setattr(Precision, "decoder_features",
                        lambda self, features: casts.append(1) or original(self, features))
    first, second = runtime.encode(random_image(90, 130, seed=1)), runtime.encode(random_image(90, 130, seed=2))
    masks = [runtime.decode(first, points=[[[40, 30]]], labels=[[1]])[0] for _ in range(3)]
    assert len(casts) == 1 and all(torch.equal(masks[0], other) for other in masks[1:])
    assert all(t.dtype == torch.float32 for t in runtime._last_decoded[1])
    runtime.decode(second, points=[[[40, 30]]], labels=[[1]])
    assert len(casts) == 2
    del second
    gc.collect()
    assert runtime._last_decoded == (None, []), "the copy goes with the image it was made for"
