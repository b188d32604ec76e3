"""Image prompts on the shared backbone give the masks of transformers' documented pipelines on the same
checkpoint: Sam3TrackerModel + Sam3TrackerProcessor (points, box) and Sam3Model + Sam3Processor (text).

Possible only because generated checkpoints have the hub's layout (tracker weights keyed `tracker_model.*`
once): Sam3TrackerModel.from_pretrained reads the tracker, the detector's ViT and the tracker neck from it.

Under both precisions: under bf16 the reference runs under the same bf16 autocast (the tracker's prompt decoder
in fp32 and the ViT's rotation in bf16, as the engine runs them). fp32 masks are identical; under bf16 our
cached features are stored in bf16 between the backbone and the heads (the reference keeps whatever dtype
autocast left them in), so masks may differ by a few boundary pixels: IoU >= 0.98.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from transformers import Sam3Model, Sam3Processor, Sam3TrackerModel, Sam3TrackerProcessor

from sam3_api.engine.devmodel import ensure_dev_checkpoint
from sam3_api.engine.precision import cast_floats
from tests.conftest import CACHE_DIR, autocast_for, engine_for, limits, random_image, reference_model
from tests.video_reference import iou

HEIGHT, WIDTH = 90, 130


@pytest.fixture(scope="module")
def checkpoint():
    return str(ensure_dev_checkpoint(CACHE_DIR))


@pytest.fixture(scope="module")
def image():
    return random_image(HEIGHT, WIDTH, seed=21)


def tracker_reference(checkpoint, image, precision, **prompt) -> np.ndarray:
    """Sam3TrackerModel's documented two steps: get_image_embeddings, then the prompt decoder on them. Under
    bf16 the embeddings are computed under autocast and the decoder runs in fp32, as in the engine."""
    model = reference_model(Sam3TrackerModel, checkpoint, precision)
    processor = Sam3TrackerProcessor.from_pretrained(checkpoint)
    inputs = processor(images=image, return_tensors="pt", **prompt)
    with torch.inference_mode():
        with autocast_for(precision):
            embeddings = model.get_image_embeddings(inputs.pop("pixel_values"))
        embeddings = [level.float() for level in embeddings]
        inputs.pop("original_sizes")
        outputs = model(image_embeddings=embeddings, **inputs, multimask_output=False)
    return processor.post_process_masks(outputs.pred_masks, [list(image.shape[:2])])[0][0, 0].numpy()


@pytest.mark.parametrize("points,labels,box", [
    ([[40, 30], [100, 70]], [1, 0], None),
    (None, None, [20, 10, 110, 80]),
    ([[60, 40], [10, 80]], [1, 0], [20, 10, 110, 80]),
])
def test_points_and_box_masks_equal_the_standalone_tracker(request, precision, checkpoint, image, points, labels,
                                                           box):
    engine = engine_for(request, precision)
    prompt = {}
    if points:
        prompt.update(input_points=[[points]], input_labels=[[labels]])
    if box:
        prompt.update(input_boxes=[[box]])
    reference = tracker_reference(checkpoint, image, precision, **prompt).astype(bool)
    if points:
        ours = asyncio.run(engine.segment_points(image, points, labels, box=box, thresholds=limits())).masks[0]
    else:
        ours = asyncio.run(engine.segment_boxes(image, [box], thresholds=limits())).masks[0]
    assert ours.shape == reference.shape == (HEIGHT, WIDTH)
    assert reference.any(), "a non-empty mask to compare"
    if precision == "fp32":
        assert np.array_equal(ours, reference)
    else:
        assert iou(ours, reference) >= 0.98


def test_text_masks_equal_sam3_model_and_its_processor(request, precision, checkpoint, image):
    engine = engine_for(request, precision)
    model = reference_model(Sam3Model, checkpoint, precision)
    processor = Sam3Processor.from_pretrained(checkpoint)
    inputs = processor(images=image, text="cat", return_tensors="pt")
    with torch.inference_mode(), autocast_for(precision):
        outputs = model(**inputs)
    # The processor thresholds bf16 logits after resizing them in bf16, which loses most of each mask: our
    # engine post-processes in fp32 (detections.instances), so the reference does too.
    outputs = cast_floats(outputs, torch.float32)
    reference = processor.post_process_instance_segmentation(
        outputs, threshold=0.5, mask_threshold=0.5, target_sizes=inputs["original_sizes"].tolist())[0]
    [ours] = asyncio.run(engine.segment_text(image, ["cat"], thresholds=limits(confidence=0.5, mask=0.5)))
    order = torch.argsort(reference["scores"], descending=True)
    assert ours.num_masks == len(order) > 0, "the dev model's detector fires"
    expected = reference["masks"][order].bool().numpy()
    if precision == "fp32":
        assert np.array_equal(ours.masks, expected)
        assert np.allclose(ours.scores, reference["scores"][order].float().numpy(), atol=1e-6)
    else:
        assert min(iou(a, b) for a, b in zip(ours.masks, expected)) >= 0.98
        assert np.allclose(ours.scores, reference["scores"][order].float().numpy(), atol=0.02)
