"""Image prompts on the shared backbone give the masks of transformers' documented pipelines on the same
checkpoint: Sam3TrackerModel + Sam3TrackerProcessor (points, box) and Sam3Model + Sam3Processor (text).

Possible only because generated checkpoints have the hub's layout (tracker weights keyed `tracker_model.*`
once): Sam3TrackerModel.from_pretrained reads the tracker, the detector's ViT and the tracker neck from it.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from transformers import Sam3Model, Sam3Processor, Sam3TrackerModel, Sam3TrackerProcessor

from sam3_api.engine.devmodel import ensure_dev_checkpoint
from tests.conftest import CACHE_DIR, limits, random_image

HEIGHT, WIDTH = 90, 130


@pytest.fixture(scope="module")
def checkpoint():
    return str(ensure_dev_checkpoint(CACHE_DIR))


@pytest.fixture(scope="module")
def image():
    return random_image(HEIGHT, WIDTH, seed=21)


def tracker_reference(checkpoint, image, **prompt) -> np.ndarray:
    model = Sam3TrackerModel.from_pretrained(checkpoint).eval()
    processor = Sam3TrackerProcessor.from_pretrained(checkpoint)
    inputs = processor(images=image, return_tensors="pt", **prompt)
    with torch.inference_mode():
        outputs = model(**inputs, multimask_output=False)
    return processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"])[0][0, 0].numpy()


@pytest.mark.parametrize("points,labels,box", [
    ([[40, 30], [100, 70]], [1, 0], None),
    (None, None, [20, 10, 110, 80]),
    ([[60, 40], [10, 80]], [1, 0], [20, 10, 110, 80]),
])
def test_points_and_box_masks_equal_the_standalone_tracker(engine, checkpoint, image, points, labels, box):
    prompt = {}
    if points:
        prompt.update(input_points=[[points]], input_labels=[[labels]])
    if box:
        prompt.update(input_boxes=[[box]])
    reference = tracker_reference(checkpoint, image, **prompt)
    if points:
        ours = asyncio.run(engine.segment_points(image, points, labels, box=box, thresholds=limits())).masks[0]
    else:
        ours = asyncio.run(engine.segment_boxes(image, [box], thresholds=limits())).masks[0]
    assert ours.shape == reference.shape == (HEIGHT, WIDTH)
    assert np.array_equal(ours, reference.astype(bool))


def test_text_masks_equal_sam3_model_and_its_processor(engine, checkpoint, image):
    model = Sam3Model.from_pretrained(checkpoint).eval()
    processor = Sam3Processor.from_pretrained(checkpoint)
    inputs = processor(images=image, text="cat", return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    reference = processor.post_process_instance_segmentation(
        outputs, threshold=0.5, mask_threshold=0.5, target_sizes=inputs["original_sizes"].tolist())[0]
    [ours] = asyncio.run(engine.segment_text(image, ["cat"], thresholds=limits(confidence=0.5, mask=0.5)))
    order = torch.argsort(reference["scores"], descending=True)
    assert ours.num_masks == len(order) > 0, "the dev model's detector fires"
    assert np.array_equal(ours.masks, reference["masks"][order].bool().numpy())
    assert np.allclose(ours.scores, reference["scores"][order].numpy(), atol=1e-6)
