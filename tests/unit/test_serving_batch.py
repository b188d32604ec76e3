"""serving/batch.py on its own: which prompt kind a job is, how boxes find their images, and the record filters."""

from __future__ import annotations

import numpy as np
import pytest

from sam3_api.engine.types import Segmentation
from sam3_api.errors import InvalidPrompt
from sam3_api.media.coco_boxes import CocoBoxes
from sam3_api.serving.batch import BatchSpec, annotations, batch_spec, image_prompts


def spec(**fields) -> BatchSpec:
    return batch_spec(**{"texts": None, "mode": None, "annotations": None, "file_names": ["a.png", "sub/b.png"],
                         "options": {}, **fields})


@pytest.mark.parametrize("fields", [{}, {"texts": ["cat"], "mode": "auto"}, {"texts": [" "]}])
def test_a_job_needs_exactly_one_prompt_kind(fields):
    with pytest.raises(InvalidPrompt):
        spec(**fields)


def test_texts_are_the_categories_once_each_and_auto_has_one():
    assert spec(texts=["cat", " dog", "cat"]).categories == ["cat", "dog"]
    assert spec(mode="auto").categories == ["object"] and image_prompts(spec(mode="auto"), "a.png").auto


def test_coco_boxes_find_their_images_by_normalised_file_name():
    boxes = CocoBoxes(("car", "tree"), {"./sub\\b.png": (("tree", (1, 2, 3, 4)),), "gone.png": (("car", (0, 0, 1, 1)),)})
    job = spec(annotations=boxes)
    assert job.mode == "boxes" and job.categories == ["car", "tree"] and list(job.boxes) == ["sub/b.png"]
    assert image_prompts(job, "sub/b.png").boxes == [[1, 2, 3, 4]] and image_prompts(job, "a.png") is None
    assert BatchSpec.from_dict(job.to_dict()) == job
    with pytest.raises(InvalidPrompt, match="file_name"):
        spec(annotations=CocoBoxes(("car",), {"other.png": (("car", (0, 0, 1, 1)),)}))


def test_min_area_drops_small_masks_and_max_masks_caps_what_is_left():
    masks = np.zeros((3, 10, 10), dtype=bool)
    masks[0, :5, :5] = True  # 25 pixels
    masks[1, :2, :2] = True  # 4
    masks[2, :, :] = True  # 100
    found = Segmentation(masks, np.zeros((3, 4), np.float32), np.array([0.9, 0.8, 0.7], np.float32))
    kept = annotations(found, ["a", "b", "c"], BatchSpec("texts", ["a"], min_area=5, max_masks=1))
    assert [a["category"] for a in kept] == ["a"]
    kept = annotations(found, ["a", "b", "c"], BatchSpec("texts", ["a"], min_area=5))
    assert [a["category"] for a in kept] == ["a", "c"] and kept[1]["mask"]["size"] == [10, 10]


def test_texts_are_cleaned_as_the_engine_cleans_them_so_categories_match_the_masks():
    assert spec(texts=["red  car", "red car "]).categories == ["red car"]
