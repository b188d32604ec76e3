"""serving/image.py over the real dev-tiny engine: the one place that decides what an image prompt means."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sam3_api.engine.types import AutoParams
from sam3_api.errors import InvalidPrompt
from sam3_api.serving import image as serving
from sam3_api.serving.defaults import MASK_THRESHOLD, TEXT_CONFIDENCE
from sam3_api.serving.image import ImagePrompts
from tests.conftest import limits, random_image

IMAGE = random_image(120, 160, seed=4)


def run(coro):
    return asyncio.run(coro)


def test_points_with_one_box_are_one_object_decoded_from_both(engine):
    prompts = ImagePrompts(points=[[40, 40]], point_labels=[1], boxes=[[10, 10, 90, 90]])
    result = run(serving.segment_objects(engine, IMAGE, prompts)).segmentation
    direct = run(engine.segment_points(IMAGE, [[40, 40]], [1], box=[10, 10, 90, 90], thresholds=limits()))
    assert result.num_masks == 1 and np.array_equal(result.masks, direct.masks)


def test_boxes_without_points_are_one_object_each(engine):
    result = run(serving.segment_objects(engine, IMAGE, ImagePrompts(boxes=[[0, 0, 60, 60], [70, 20, 150, 110]])))
    assert result.segmentation.num_masks == 2
    assert sorted(result.segmentation.prompt_indices.tolist()) == [0, 1]


def test_points_with_several_boxes_are_refused_naming_the_boxes(engine):
    with pytest.raises(InvalidPrompt) as refused:
        run(serving.segment_objects(engine, IMAGE, ImagePrompts(points=[[5, 5]], boxes=[[0, 0, 9, 9]] * 2)))
    assert refused.value.field == "boxes"


def test_several_texts_are_merged_best_first_with_the_default_confidence(engine):
    found = run(serving.segment_concepts(engine, IMAGE, ImagePrompts(texts=["cat", "dog"],
                                                                        confidence_threshold=0.0)))
    merged = found.segmentation
    assert [r.prompt for r in found.per_prompt] == ["cat", "dog"]
    assert merged.num_masks == sum(r.num_masks for r in found.per_prompt) == len(found.mask_prompts)
    assert np.all(np.diff(merged.scores) <= 1e-7)
    defaulted = run(serving.segment_concepts(engine, IMAGE, ImagePrompts(texts=["cat"]))).segmentation
    assert np.all(defaulted.scores >= TEXT_CONFIDENCE) and defaulted.num_masks <= found.per_prompt[0].num_masks


def test_segment_picks_the_kind_from_the_prompts_given(engine):
    assert run(serving.segment(engine, IMAGE, ImagePrompts(texts=["cat"]))).per_prompt[0].prompt == "cat"
    assert run(serving.segment(engine, IMAGE, ImagePrompts(boxes=[[0, 0, 50, 50]]))).segmentation.prompt == "box"
    auto = serving.auto_params(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    assert auto.mask_threshold == MASK_THRESHOLD and isinstance(auto, AutoParams)
    everything = run(serving.segment(engine, IMAGE, ImagePrompts(auto=auto, confidence_threshold=0.0)))
    assert everything.segmentation.num_masks >= 1
    with pytest.raises(InvalidPrompt):
        run(serving.segment(engine, IMAGE, ImagePrompts()))
