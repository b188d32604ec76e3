"""The real engine on the dev-tiny checkpoint: every prompt kind, coordinates, thresholds, cache, weights."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest
import torch

from sam3_api.engine.prompts import TEXT_TOKENS, fit_text
from sam3_api.engine.types import PreparedImage
from sam3_api.errors import InvalidPrompt
from tests.conftest import auto_params, limits, random_image

SHAPES = [(360, 640), (640, 360)]  # (height, width): landscape and portrait
LOOSE_AUTO = auto_params(points_per_side=6, pred_iou_thresh=0.0, stability_score_thresh=0.0)


def run(coro):
    return asyncio.run(coro)


def _check_instances(result, height: int, width: int) -> None:
    """Masks at the original size, boxes in original pixels, scores sorted best first."""
    assert result.masks.dtype == bool
    assert result.masks.shape[1:] == (height, width)
    assert result.boxes.shape == (result.num_masks, 4)
    assert result.scores.shape == (result.num_masks,)
    assert np.all(np.diff(result.scores) <= 1e-7), "scores must be sorted best first"
    if result.num_masks:
        assert result.boxes[:, [0, 2]].min() >= -1e-3 and result.boxes[:, [0, 2]].max() <= width + 1e-3
        assert result.boxes[:, [1, 3]].min() >= -1e-3 and result.boxes[:, [1, 3]].max() <= height + 1e-3
        assert np.all(result.boxes[:, 2] >= result.boxes[:, 0]) and np.all(result.boxes[:, 3] >= result.boxes[:, 1])


class Capture:
    """Records the inputs a submodule receives: proves how prompts are mapped into the model."""

    def __init__(self, module: torch.nn.Module):
        self.calls: list[dict] = []
        self.handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        self.calls.append({k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("height,width", SHAPES)
def test_text_prompt_returns_instances_at_original_size(engine, height, width):
    image = random_image(height, width)
    [result] = run(engine.segment_text(image, ["cat"], thresholds=limits(confidence=0.0)))
    assert result.num_masks == engine.runtime.model.config.detector_config.detr_decoder_config.num_queries
    assert result.prompt == "cat"
    _check_instances(result, height, width)


def test_several_texts_each_get_their_own_results(engine):
    results = run(engine.segment_text(random_image(360, 640), ["cat", "dog", "red cup"], thresholds=limits(confidence=0.0)))
    assert [r.prompt for r in results] == ["cat", "dog", "red cup"]
    assert all(r.num_masks > 0 for r in results)
    assert not np.allclose(results[0].scores, results[1].scores), "different texts must give different scores"


def test_a_prompt_longer_than_the_text_encoder_reads_uses_its_first_tokens(engine):
    tokenizer = engine.runtime.processor.tokenizer
    long_text = " ".join(["red cup"] * 20)  # 159 characters, 42 tokens
    fitted = fit_text(tokenizer, long_text)
    assert len(tokenizer(long_text)["input_ids"]) > TEXT_TOKENS >= len(tokenizer(fitted)["input_ids"])
    assert long_text.startswith(fitted.split()[0])
    image = random_image(360, 640)
    [ours] = run(engine.segment_text(image, [long_text], thresholds=limits(confidence=0.0)))
    [prefix] = run(engine.segment_text(image, [fitted], thresholds=limits(confidence=0.0)))
    assert ours.prompt == long_text, "results name the caller's text"
    assert np.array_equal(ours.scores, prefix.scores) and np.array_equal(ours.masks, prefix.masks)


@pytest.mark.parametrize("height,width", SHAPES)
def test_exemplar_boxes_reach_the_detector_normalised_to_the_image(engine, height, width):
    box = [width * 0.25, height * 0.5, width * 0.75, height * 1.0]
    with Capture(engine.runtime.model.detector_model.geometry_encoder) as capture:
        [result] = run(engine.segment_text(random_image(height, width), [None], exemplar_boxes=[box],
                                           exemplar_labels=[1], thresholds=limits(confidence=0.0)))
    sent = capture.calls[-1]["box_embeddings"][0, 0].tolist()  # normalised cx, cy, w, h
    assert sent == pytest.approx([0.5, 0.75, 0.5, 0.5], abs=1e-5)
    assert result.prompt == "exemplars"
    _check_instances(result, height, width)


def test_negative_exemplar_changes_the_detection(engine):
    image = random_image(360, 640, seed=3)
    box_a, box_b = [10, 10, 200, 200], [300, 100, 600, 300]
    [positive] = run(engine.segment_text(image, ["cat"], exemplar_boxes=[box_a, box_b], exemplar_labels=[1, 1],
                                         thresholds=limits(confidence=0.0)))
    [negative] = run(engine.segment_text(image, ["cat"], exemplar_boxes=[box_a, box_b], exemplar_labels=[1, 0],
                                         thresholds=limits(confidence=0.0)))
    assert not np.allclose(positive.scores, negative.scores)


@pytest.mark.parametrize("height,width", SHAPES)
def test_each_box_yields_one_object_in_original_coordinates(engine, height, width):
    boxes = [[0, 0, width / 2, height / 2], [width / 4, height / 4, width, height]]
    with Capture(engine.runtime.model.tracker_model.prompt_encoder) as capture:
        result = run(engine.segment_boxes(random_image(height, width), boxes, thresholds=limits()))
    size = engine.runtime.model.config.tracker_config.image_size
    sent = capture.calls[-1]["input_boxes"][0].tolist()
    assert sent[0] == pytest.approx([0, 0, size / 2, size / 2], abs=1e-4)
    assert sent[1] == pytest.approx([size / 4, size / 4, size, size], abs=1e-4)
    assert result.num_masks == 2 and sorted(result.prompt_indices.tolist()) == [0, 1]
    _check_instances(result, height, width)


@pytest.mark.parametrize("height,width", SHAPES)
def test_points_with_a_box_yield_one_object(engine, height, width):
    points, labels = [[width * 0.5, height * 0.25], [width * 0.1, height * 0.9]], [1, 0]
    with Capture(engine.runtime.model.tracker_model.prompt_encoder) as capture:
        result = run(engine.segment_points(random_image(height, width), points, labels,
                                           box=[0, 0, width * 0.8, height], thresholds=limits()))
    size = engine.runtime.model.config.tracker_config.image_size
    call = capture.calls[-1]
    expected = [[size * 0.5, size * 0.25], [size * 0.1, size * 0.9]]
    np.testing.assert_allclose(call["input_points"][0, 0].numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(call["input_boxes"][0, 0].numpy(), [0, 0, size * 0.8, size], atol=1e-4)
    assert call["input_labels"][0, 0].tolist() == [1, 0]
    assert result.num_masks == 1
    _check_instances(result, height, width)


def test_single_point_multimask_returns_three_candidates_best_first(engine):
    result = run(engine.segment_points(random_image(360, 640), [[100, 100]], [1], multimask=True, thresholds=limits()))
    assert result.num_masks == 3
    single = run(engine.segment_points(random_image(360, 640), [[100, 100]], [1], thresholds=limits()))
    assert single.num_masks == 1 and single.scores[0] == pytest.approx(result.scores[0])


@pytest.mark.parametrize("height,width", SHAPES)
def test_automatic_segmentation_finds_sorted_deduplicated_masks(engine, height, width):
    image = random_image(height, width)
    result = run(engine.segment_auto(image, LOOSE_AUTO))
    assert result.num_masks >= 1
    _check_instances(result, height, width)
    undeduplicated = run(engine.segment_auto(image, replace(LOOSE_AUTO, box_nms_thresh=1.0)))
    assert undeduplicated.num_masks > result.num_masks, "the grid's duplicates were there to remove"
    assert _largest_box_iou(result.boxes) <= LOOSE_AUTO.box_nms_thresh + 0.05  # NMS runs on low-res boxes


def _largest_box_iou(boxes: np.ndarray) -> float:
    """The highest IoU between two different boxes (0 for fewer than two)."""
    if len(boxes) < 2:
        return 0.0
    low, high = np.maximum(boxes[:, None, :2], boxes[None, :, :2]), np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    iou = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)
    np.fill_diagonal(iou, 0.0)
    return float(iou.max())


def test_automatic_quality_filter_and_limits_are_honoured(engine):
    image = random_image(360, 640, seed=5)
    assert run(engine.segment_auto(image, auto_params(points_per_side=4, pred_iou_thresh=1.0))).num_masks == 0
    many = run(engine.segment_auto(image, auto_params(points_per_side=6, pred_iou_thresh=0.0,
                                                     stability_score_thresh=0.0, box_nms_thresh=1.0)))
    capped = run(engine.segment_auto(image, auto_params(points_per_side=6, pred_iou_thresh=0.0,
                                                       stability_score_thresh=0.0, box_nms_thresh=1.0, max_masks=2)))
    assert many.num_masks > 2 and capped.num_masks == 2
    assert capped.scores.tolist() == pytest.approx(many.scores[:2].tolist())


def test_confidence_threshold_is_honoured_and_does_not_leak(engine):
    image = random_image(360, 640, seed=7)
    [everything] = run(engine.segment_text(image, ["cat"], thresholds=limits(confidence=0.0)))
    cut = float(np.median(everything.scores))
    [strict] = run(engine.segment_text(image, ["cat"], thresholds=limits(confidence=cut)))
    [again] = run(engine.segment_text(image, ["cat"], thresholds=limits(confidence=0.0)))
    assert 0 < strict.num_masks < everything.num_masks
    assert strict.scores.min() > cut
    assert again.num_masks == everything.num_masks, "a strict call must not change the next call"


def test_mask_threshold_is_honoured_and_does_not_leak(engine):
    image = random_image(360, 640, seed=8)
    args = (image, [[50, 50, 600, 300]])
    low = run(engine.segment_boxes(*args, thresholds=limits(mask=0.3)))
    high = run(engine.segment_boxes(*args, thresholds=limits(mask=0.9)))
    default = run(engine.segment_boxes(*args, thresholds=limits()))
    assert high.masks.sum() < low.masks.sum()
    assert np.all(high.masks <= low.masks), "a higher threshold keeps a subset of the pixels"
    again = run(engine.segment_boxes(*args, thresholds=limits(mask=0.5)))
    assert np.array_equal(default.masks, again.masks)


def test_backbone_runs_once_per_image_for_every_prompt_kind(engine):
    calls = []
    handle = engine.runtime.model.detector_model.vision_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        image = run(engine.prepare(random_image(300, 500, seed=11)))
        run(engine.segment_text(image, ["cat", "dog"], thresholds=limits(confidence=0.0)))
        run(engine.segment_text(image, [None], exemplar_boxes=[[0, 0, 100, 100]], thresholds=limits(confidence=0.5)))
        run(engine.segment_boxes(image, [[0, 0, 100, 100]], thresholds=limits()))
        run(engine.segment_points(image.pixels.copy(), [[10, 10]], [1], thresholds=limits()))  # same pixels, new array: same key
        run(engine.segment_auto(image, LOOSE_AUTO))
        assert len(calls) == 1
        run(engine.segment_points(random_image(300, 500, seed=12), [[10, 10]], [1], thresholds=limits()))
        assert len(calls) == 2
    finally:
        handle.remove()


def test_prepared_image_key_depends_only_on_pixels():
    pixels = random_image(50, 60)
    assert PreparedImage.from_array(pixels).key == PreparedImage.from_array(pixels.copy()).key
    changed = pixels.copy()
    changed[0, 0, 0] ^= 1
    assert PreparedImage.from_array(changed).key != PreparedImage.from_array(pixels).key


@pytest.mark.parametrize("call,field", [
    (lambda e, img: e.segment_boxes(img, [[10, 10, 5, 50]], thresholds=limits()), "boxes[0]"),
    (lambda e, img: e.segment_boxes(img, [[10, 10, 700, 50]], thresholds=limits()), "boxes[0]"),
    (lambda e, img: e.segment_boxes(img, [[float("nan"), 10, 20, 50]], thresholds=limits()), "boxes[0]"),
    (lambda e, img: e.segment_points(img, [[10, 500]], [1], thresholds=limits()), "points"),
    (lambda e, img: e.segment_points(img, [[10, 10]], [1, 0], thresholds=limits()), "labels"),
    (lambda e, img: e.segment_points(img, [[10, 10]], [2], thresholds=limits()), "labels"),
    (lambda e, img: e.segment_text(img, ["   "], thresholds=limits(confidence=0.5)), "text"),
    (lambda e, img: e.segment_text(img, ["x" * 1000], thresholds=limits(confidence=0.5)), "text"),
    (lambda e, img: e.segment_text(img, ["cat"], thresholds=limits(confidence=1.5)), "confidence_threshold"),
])
def test_invalid_prompts_are_rejected_naming_the_field(engine, call, field):
    with pytest.raises(InvalidPrompt) as caught:
        run(call(engine, random_image(360, 640)))
    assert caught.value.field == field
    assert caught.value.status_code == 422


@pytest.mark.parametrize("height,width", [(1, 1), (3, 3), (1, 3000), (3000, 2)])
def test_tiny_and_extreme_aspect_images_work_for_every_prompt_kind(engine, height, width):
    image = run(engine.prepare(random_image(height, width, seed=height + width)))
    [text] = run(engine.segment_text(image, ["cat"], thresholds=limits(confidence=0.0)))
    boxes = run(engine.segment_boxes(image, [[0, 0, width, height]], thresholds=limits()))
    points = run(engine.segment_points(image, [[0, 0]], [1], thresholds=limits()))
    auto = run(engine.segment_auto(image, auto_params(points_per_side=2, pred_iou_thresh=0, stability_score_thresh=0)))
    for result in (text, boxes, points, auto):
        _check_instances(result, height, width)
