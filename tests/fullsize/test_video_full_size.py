"""Video tracking at full size (the released architecture, random weights, hub layout) on CPU.

Picked-object tracking on the shared backbone must give the masks of a standalone
Sam3TrackerVideoModel.from_pretrained(<the same directory>) run the documented way: IoU >= 0.99 on every
frame. Three frames (a box on the middle one, tracked both ways) keep it to a few minutes: six ViT passes.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from sam3_api.engine.devmodel import ensure_full_size_checkpoint
from sam3_api.engine.engine import Sam3Engine
from sam3_api.engine.video import ArrayFrames, ObjectPrompt, VideoRequest
from tests.conftest import CACHE_DIR, dev_settings
from tests.video_reference import decoded, iou, moving_square_frames, reference_objects

pytestmark = [pytest.mark.fullsize, pytest.mark.timeout(1800)]


def test_full_size_box_tracking_matches_the_standalone_tracker_on_every_frame():
    checkpoint = ensure_full_size_checkpoint(CACHE_DIR)
    frames = moving_square_frames(3, height=240, width=320)
    prompt = ObjectPrompt(1, 1, box=[30, 70, 110, 150])
    engine = Sam3Engine(dev_settings(model=str(checkpoint)))
    try:
        assert engine.wait_ready(900).ready

        async def go():
            run = engine.video_run(ArrayFrames(frames), VideoRequest(objects=[prompt]))
            results = []
            while not run.done:
                results += await engine.video_step(run)
            return results
        ours = decoded(asyncio.run(go()))
    finally:
        engine.stop()
        del engine
        gc.collect()  # one full-size model in memory at a time
    reference = reference_objects(checkpoint, frames, [prompt], "both")
    assert sorted(ours) == [0, 1, 2]
    scores = [iou(ours[f][1], reference[f][1]) for f in range(3)]
    assert min(scores) >= 0.99, scores
