"""Video tracking in the engine on dev-tiny: picked objects and text concepts, parity with transformers'
documented pipelines on the same checkpoint (under fp32 and under bf16 against the reference under the same
autocast), directions, chunked frames and bounded tracker state."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from sam3_api.engine.devmodel import ensure_dev_checkpoint
from sam3_api.engine.video import ArrayFrames, ObjectPrompt
from sam3_api.engine.video.memory import memory_window
from sam3_api.errors import InvalidPrompt
from tests.conftest import CACHE_DIR, engine_for, limits, video_request
from tests.video_reference import decoded, iou, moving_square_frames, reference_concepts, reference_objects

pytestmark = pytest.mark.timeout(300)
HEIGHT, WIDTH = 120, 160


def run_to_end(engine, frames, request):
    """Step a run on the engine's model thread until done; returns every FrameResult."""
    async def go():
        run = engine.video_run(ArrayFrames(frames), request)
        results = []
        while not run.done:
            results += await engine.video_step(run)
        return run, results
    return asyncio.run(go())


@pytest.fixture(scope="module")
def checkpoint():
    return ensure_dev_checkpoint(CACHE_DIR)


@pytest.fixture(scope="module")
def clip():
    return moving_square_frames(24)


def test_box_on_a_middle_frame_is_tracked_both_ways_like_the_standalone_tracker(request, precision, checkpoint,
                                                                                clip):
    engine = engine_for(request, precision)
    prompt = ObjectPrompt(5, 10, box=[38, 40, 78, 80])
    run, results = run_to_end(engine, clip, video_request(objects=[prompt]))
    ours = decoded(results)
    assert sorted(ours) == list(range(24)), "every frame reported once"
    assert all(list(ours[f]) == [5] for f in ours), "one stable object id on every frame"
    assert all(ours[f][5].shape == (HEIGHT, WIDTH) and ours[f][5].any() for f in ours)
    reference = reference_objects(checkpoint, clip, [prompt], "both", precision)
    assert min(iou(ours[f][5], reference[f][5]) for f in range(24)) >= 0.99


def test_points_and_a_box_on_different_frames_match_the_standalone_tracker(request, precision, checkpoint, clip):
    engine = engine_for(request, precision)
    prompts = [ObjectPrompt(7, 5, box=[25, 40, 65, 80]),
               ObjectPrompt(3, 12, points=[[70, 60], [10, 10]], labels=[1, 0])]
    _, results = run_to_end(engine, clip, video_request(objects=prompts))
    ours, reference = decoded(results), reference_objects(checkpoint, clip, prompts, "both", precision)
    worst = min(iou(ours[f][obj], reference[f][obj]) for f in range(24) for obj in (7, 3))
    assert worst >= 0.99


@pytest.mark.parametrize("direction,tracked", [("forward", range(10, 24)), ("backward", range(0, 11))])
def test_one_direction_tracks_only_that_side_of_the_prompted_frame(request, precision, checkpoint, clip, direction,
                                                                    tracked):
    engine = engine_for(request, precision)
    prompt = ObjectPrompt(1, 10, points=[[60, 60]], labels=[1])
    _, results = run_to_end(engine, clip, video_request(objects=[prompt], direction=direction))
    ours = decoded(results)
    assert sorted(ours) == list(range(24)), "untracked frames are still reported, with no objects"
    assert sorted(f for f in ours if ours[f]) == list(tracked)
    reference = reference_objects(checkpoint, clip, [prompt], direction, precision)
    assert min(iou(ours[f][1], reference[f][1]) for f in tracked) >= 0.99


def test_text_finds_objects_and_keeps_their_ids_like_transformers_pipeline(request, precision, checkpoint, clip):
    engine = engine_for(request, precision)
    run, results = run_to_end(engine, clip, video_request(texts=["cat"]))
    ours = decoded(results)
    assert ours[0], "the dev model's detector must find objects on the first frame"
    first_ids = set(ours[0])
    assert all(first_ids <= set(ours[f]) for f in range(24)), "objects found on frame 0 keep their ids"
    assert {entry["prompt"] for entry in run.catalog.values()} == {"cat"}
    reference = reference_concepts(checkpoint, clip, ["cat"], precision)
    for frame in range(24):  # our ids are 1.. in order of appearance; the model's are 0..
        assert len(ours[frame]) == len(reference[frame])
        for ours_mask, ref_mask in zip((ours[frame][k] for k in sorted(ours[frame])),
                                       (reference[frame][k] for k in sorted(reference[frame]))):
            if precision == "fp32":
                assert np.array_equal(ours_mask, ref_mask)
            else:  # our frame features are stored in bf16 between the ViT and the heads
                assert iou(ours_mask, ref_mask) >= 0.98


def test_hot_start_hold_back_releases_frames_like_the_iterator(checkpoint, clip):
    """With SAM 3's hot start on (the real model's default), results are held back and released in order."""
    from sam3_api.engine.engine import Sam3Engine
    from tests.conftest import dev_settings

    engine = Sam3Engine(dev_settings())
    try:
        assert engine.wait_ready(120).ready
        model = engine.runtime.model
        model.hotstart_delay, model.hotstart_unmatch_thresh, model.hotstart_dup_thresh = 5, 3, 3
        run, results = run_to_end(engine, clip, video_request(texts=["cat", "dog"]))
    finally:
        engine.stop()
    assert sorted(r.frame for r in results) == list(range(24))
    import transformers

    reference_model = transformers.Sam3VideoModel
    original = reference_model.__init__

    def with_hot_start(self, config):
        original(self, config)
        self.hotstart_delay, self.hotstart_unmatch_thresh, self.hotstart_dup_thresh = 5, 3, 3

    reference_model.__init__ = with_hot_start
    try:
        reference = reference_concepts(checkpoint, clip, ["cat", "dog"])
    finally:
        reference_model.__init__ = original
    ours = decoded(results)
    assert [len(ours[f]) for f in range(24)] == [len(reference[f]) for f in range(24)]


def test_text_and_objects_in_one_run_share_one_vit_pass_per_frame(engine, clip):
    calls = []
    backbone = engine.runtime.model.detector_model.vision_encoder.backbone
    handle = backbone.register_forward_hook(lambda *args: calls.append(1))
    try:
        run, results = run_to_end(engine, clip, video_request(texts=["cat"], objects=[ObjectPrompt(1, 0, box=[0, 0, 80, 60])],
                                                             direction="forward"))
    finally:
        handle.remove()
    assert len(results) == 24
    assert len(calls) == 1 + 24, "the prompt's frame once, then one ViT pass per frame for both sessions"
    ours = decoded(results)
    assert all(1 in ours[f] and len(ours[f]) > 1 for f in range(24)), "the picked object and text objects"


def test_tracker_state_and_frames_in_memory_stay_bounded_on_a_long_clip(engine):
    frames = moving_square_frames(90)
    prompts = [ObjectPrompt(i + 1, 0, box=[10 * i, 10, 10 * i + 40, 60]) for i in range(3)]
    stored, in_memory = [], []

    async def go():
        run = engine.video_run(ArrayFrames(frames), video_request(objects=prompts, direction="forward"))
        while not run.done:
            await engine.video_step(run)
            if getattr(run, "objects", None) is not None:
                outputs = run.objects.session.output_dict_per_obj.values()
                stored.append(max((len(o["non_cond_frame_outputs"]) for o in outputs), default=0))
                in_memory.append(run.objects.session.processed_frames.frames_in_memory)
                assert not any("high_res_masks" in out for o in outputs for out in o["non_cond_frame_outputs"].values())
        return run
    run = asyncio.run(go())
    window = memory_window(engine.runtime.model.tracker_model.config)
    assert max(stored) <= window + 1, "only the frames the memory attention can still read are kept"
    assert max(in_memory) <= 16, "at most two chunks of preprocessed frames"
    assert run.objects.session.processed_frames.chunks_loaded == 90 // 8 + 1


def test_chunked_frames_equal_the_processor_on_the_whole_clip(engine, clip):
    from sam3_api.engine.video.frames import ChunkedFrames

    processor = engine.runtime.video_processor.video_processor
    chunked = ChunkedFrames(ArrayFrames(clip), processor, chunk=5)
    whole = processor(videos=[clip], return_tensors="pt").pixel_values_videos[0]
    assert len(chunked) == 24
    for frame in (0, 4, 5, 23, 11):
        assert torch.equal(chunked[frame], whole[frame])
    assert chunked.frames_in_memory <= 10


@pytest.mark.parametrize("request_,field", [
    (video_request(), "objects"),
    (video_request(objects=[ObjectPrompt(1, 24, box=[0, 0, 10, 10])]), "objects[0]"),
    (video_request(objects=[ObjectPrompt(1, 0, box=[0, 0, 170, 10])]), "objects[0].box"),
    (video_request(objects=[ObjectPrompt(1, 0, points=[[5, 500]])]), "objects[0].points"),
    (video_request(objects=[ObjectPrompt(1, 0)]), "objects[0]"),
    (video_request(objects=[ObjectPrompt(2, 0, box=[0, 0, 9, 9]), ObjectPrompt(2, 1, box=[0, 0, 9, 9])]), "objects"),
    (video_request(objects=[ObjectPrompt(i + 1, 0, box=[0, 0, 9, 9]) for i in range(33)]), "objects"),
    (video_request(texts=["   "]), "texts[0]"),
    (video_request(texts=["cat"], direction="sideways"), "direction"),
])
def test_invalid_video_requests_are_rejected_naming_the_field(engine, clip, request_, field):
    with pytest.raises(InvalidPrompt) as caught:
        engine.video_run(ArrayFrames(clip), request_)
    assert caught.value.field == field and caught.value.status_code == 422


def test_a_click_is_answered_between_two_frame_steps_of_a_running_video(engine):
    frames = moving_square_frames(60)
    image = np.ascontiguousarray(frames[0])

    async def go():
        run = engine.video_run(ArrayFrames(frames), video_request(objects=[ObjectPrompt(1, 0, box=[10, 40, 50, 80])],
                                                                direction="forward"))
        await engine.embed(image)  # the click's image is already encoded, as after a WebSocket init

        async def track():
            while not run.done:
                await engine.video_step(run)

        tracking = asyncio.create_task(track())
        await asyncio.sleep(0.05)
        await engine.segment_points(image, [[60, 60]], [1], thresholds=limits())
        steps_done_at_click = run.frames_done
        await tracking
        return steps_done_at_click, run.frames_done

    at_click, total = asyncio.run(go())
    assert at_click < total, "the click was answered while the video was still being tracked"


def test_a_text_runs_confidence_threshold_applies_to_that_run_only(engine, clip):
    _, strict = run_to_end(engine, clip[:6], video_request(texts=["cat"], confidence_threshold=0.99))
    _, default = run_to_end(engine, clip[:6], video_request(texts=["cat"]))
    assert not any(result.objects for result in strict), "the dev detector's ~0.98 scores are below 0.99"
    assert all(result.objects for result in default)
    model = engine.runtime.model
    assert (model.score_threshold_detection, model.new_det_thresh) == (0.5, 0.7), "restored after each step"


def test_a_text_longer_than_the_encoder_reads_is_tracked_under_the_callers_text(engine, clip):
    long_text = " ".join(["cat"] * 45)
    run, results = run_to_end(engine, clip[:4], video_request(texts=[long_text]))
    assert {entry["prompt"] for entry in run.catalog.values()} == {long_text}
    assert len(results) == 4
