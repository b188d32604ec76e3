"""Interactive video sessions in the engine on dev-tiny: prompts answered at once, propagation, corrections,
text concepts, removal, and bounded state."""

from __future__ import annotations

import pytest

from sam3_api.engine.video import ArrayFrames
from sam3_api.engine.video.interactive import InteractiveVideo
from sam3_api.serving.defaults import MASK_THRESHOLD
from tests.video_reference import moving_square_frames

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def video(engine):
    return InteractiveVideo(engine.runtime, ArrayFrames(moving_square_frames(30)), MASK_THRESHOLD)


def propagate(video, **kwargs) -> dict:
    stepper, finished = video.propagation(**kwargs), {}
    while not stepper.done:
        for result in stepper.step():
            finished[result.frame] = result
    return finished


def counts(video, object_id: int) -> dict[int, str]:
    return {frame: objects[object_id].mask["counts"] for frame, objects in video.results.items()
            if object_id in objects}


def test_a_second_click_on_a_frame_runs_no_backbone_and_refines_the_mask(video):
    first = video.prompt(1, 4, points=[[30, 50]], labels=[1])
    runs = video.backbone_runs
    second = video.prompt(1, 4, points=[[30, 50], [120, 100]], labels=[1, 0])
    assert video.backbone_runs == runs == 1
    assert [o.object_id for o in first.objects] == [1] and second.frame == 4
    assert first.objects[0].mask["size"] == [120, 160]


def test_propagation_both_ways_reports_every_frame_once_and_keeps_only_conditioning_state(video):
    video.prompt(1, 10, box=[38, 40, 78, 80])
    finished = propagate(video, direction="both")
    assert sorted(finished) == list(range(30))
    assert all([o.object_id for o in finished[f].objects] == [1] for f in finished)
    outputs = video.tracker.session.output_dict_per_obj[0]
    assert not outputs["non_cond_frame_outputs"], "between propagations only the prompted frames stay"
    assert list(outputs["cond_frame_outputs"]) == [10]


def test_a_correction_retracks_from_its_frame_and_keeps_earlier_frames(video):
    video.prompt(1, 0, points=[[30, 50]], labels=[1])
    propagate(video, direction="forward")
    before = counts(video, 1)
    video.prompt(1, 15, box=[50, 40, 100, 80])
    assert video.changed_from == 15
    stepper = video.propagation(direction="forward")
    assert stepper.frames_total == 15, "only frames 15-29 can change"
    while not stepper.done:
        stepper.step()
    after = counts(video, 1)
    assert all(after[f] == before[f] for f in range(15))
    assert any(after[f] != before[f] for f in range(15, 30))
    assert 15 in video.tracker.session.output_dict_per_obj[0]["cond_frame_outputs"], "the correction anchors"


def test_a_text_concept_adds_every_instance_as_an_object_that_is_then_tracked(video):
    video.prompt(1, 2, points=[[30, 50]], labels=[1])
    new_ids, result = video.add_concept(2, "cat", 0.5, next_id=2)
    assert new_ids == [2, 3], "the dev detector finds two instances"
    assert {o.object_id for o in result.objects} == {1, 2, 3}
    assert {video.objects[i].label for i in new_ids} == {"cat"}
    finished = propagate(video, direction="forward")
    assert all({o.object_id for o in finished[f].objects} == {1, 2, 3} for f in range(2, 30))


def test_removing_an_object_drops_it_from_every_frame_and_tracking_continues(video):
    video.prompt(1, 0, points=[[30, 50]], labels=[1])
    video.prompt(2, 5, box=[90, 60, 140, 110])
    propagate(video, direction="forward")
    video.remove(1)
    assert all(1 not in objects for objects in video.results.values())
    finished = propagate(video, direction="forward", from_frame=5)
    assert all([o.object_id for o in finished[f].objects] == [2] for f in range(5, 30))


def test_undoing_an_objects_last_prompt_removes_it_and_reset_clears_everything(video):
    video.prompt(1, 0, points=[[30, 50]], labels=[1])
    video.prompt(2, 0, points=[[100, 80]], labels=[1])
    video.clear_prompt(2, 0)
    assert sorted(video.objects) == [1] and [o.object_id for o in video.frame_result(0).objects] == [1]
    video.reset()
    assert not video.objects and not video.results and video.propagation().done


def test_undoing_a_click_on_a_concept_object_brings_back_the_mask_it_was_found_with(video):
    [found, _], result = video.add_concept(2, "cat", 0.5, next_id=1)
    concept_mask = {o.object_id: o.mask["counts"] for o in result.objects}[found]
    clicked = video.prompt(found, 2, points=[[5, 5]], labels=[1])
    assert {o.object_id: o.mask["counts"] for o in clicked.objects}[found] != concept_mask, "the click refines it"
    restored = video.clear_prompt(found, 2)
    assert found in video.objects, "undoing the click must not remove an object the concept found"
    assert {o.object_id: o.mask["counts"] for o in restored.objects}[found] == concept_mask


def test_the_engine_runs_interactive_calls_and_propagation_on_its_model_thread(engine):
    import asyncio

    async def go():
        video = engine.interactive_video(ArrayFrames(moving_square_frames(12)), MASK_THRESHOLD)
        assert not video.has_features(3)
        first = await engine.video_prompt(video, 1, 3, [[30, 50]], [1], None)
        assert video.has_features(3), "a second click on frame 3 runs at interactive priority, no ViT"
        stepper, done = video.propagation(direction="forward"), []
        while not stepper.done:
            done += await engine.video_step(stepper)
        return first, done

    first, done = asyncio.run(go())
    assert [o.object_id for o in first.objects] == [1]
    assert sorted(r.frame for r in done) == list(range(3, 12))
