"""A client's COCO detection file is read as per-image boxes with categories, or refused with a 4xx naming the entry."""

from __future__ import annotations

import copy
import json

import pytest
from pycocotools.coco import COCO

from sam3_api.errors import BatchTooLarge, InvalidPrompt
from sam3_api.media.coco_boxes import read_coco_boxes
from sam3_api.media.exports import export_chunks
from tests.unit.batch_records import CATEGORIES, sample_records

DETECTIONS = {
    "images": [{"id": 7, "file_name": "./photos/a.jpg", "width": 160, "height": 120},
               {"id": 9, "file_name": "street\\b.png", "width": 256, "height": 192},
               {"id": 11, "file_name": "none.jpg", "width": 10, "height": 10}],
    "categories": [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}],
    "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [8, 8, 32.5, 40], "area": 1300, "iscrowd": 0},
                    {"id": 2, "image_id": 9, "category_id": 3, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
                    {"id": 3, "image_id": 7, "category_id": 3, "bbox": [60, 10, 30, 30], "area": 900, "iscrowd": 0}],
}


def test_boxes_keep_their_categories_and_images_match_by_normalised_file_name(tmp_path):
    (tmp_path / "detections.json").write_text(json.dumps(DETECTIONS))
    assert len(COCO(str(tmp_path / "detections.json")).anns) == 3  # a document pycocotools reads
    parsed = read_coco_boxes(json.dumps(DETECTIONS).encode(), max_images=10, max_boxes=10)
    assert parsed.categories == ("cat", "dog")  # COCO id order
    assert parsed.boxes == {"photos/a.jpg": (("cat", (8.0, 8.0, 40.5, 48.0)), ("dog", (60.0, 10.0, 90.0, 40.0))),
                            "street/b.png": (("dog", (0.0, 0.0, 10.0, 10.0)),), "none.jpg": ()}


def test_our_own_coco_export_reads_back_as_the_boxes_it_was_made_from():
    exported = json.loads(b"".join(export_chunks("coco", sample_records(), CATEGORIES)))
    parsed = read_coco_boxes(exported, max_images=10, max_boxes=10)
    assert parsed.categories == tuple(CATEGORIES)
    for record in sample_records():
        if record.get("error"):
            continue
        expected = [(a["category"], tuple(a["box"])) for a in record["annotations"] if a["box"] != [0, 0, 0, 0]]
        assert list(parsed.boxes[record["file_name"]]) == expected


def broken(change) -> dict:
    document = copy.deepcopy(DETECTIONS)
    change(document)
    return document


@pytest.mark.parametrize("document, words", [
    (b"{not json", "is not JSON"),
    ([1, 2], "must be a COCO object"),
    (broken(lambda d: d.pop("categories")), "'categories' list"),
    (broken(lambda d: d["annotations"][0].update(image_id=99)), "annotations[0].image_id 99"),
    (broken(lambda d: d["annotations"][1].update(category_id=2)), "annotations[1].category_id 2"),
    (broken(lambda d: d["annotations"][2].update(bbox=[1, 2, -3, 4])), "annotations[2].bbox"),
    (broken(lambda d: d["annotations"][2].update(bbox=[1, 2, 3])), "annotations[2].bbox"),
    (broken(lambda d: d["annotations"][2].update(bbox=[1, 2, True, 4])), "annotations[2].bbox"),
    (broken(lambda d: d["categories"].append({"id": 4, "name": "cat"})), "categories[2] repeats"),
    (broken(lambda d: d["images"].append({"id": 7, "file_name": "c.jpg"})), "images[3] repeats"),
    (broken(lambda d: d["images"].append({"id": 12, "file_name": "photos/a.jpg"})), "images[3] repeats"),
    (broken(lambda d: d["images"][0].pop("file_name")), "images[0] must have"),
    (broken(lambda d: d["annotations"].extend([d["annotations"][0]] * 2)), "more than 2 boxes"),
])
def test_a_broken_document_is_refused_with_422_naming_the_entry(document, words):
    with pytest.raises(InvalidPrompt) as refused:
        read_coco_boxes(document if isinstance(document, bytes) else json.dumps(document), max_images=10,
                        max_boxes=2)
    assert refused.value.status_code == 422 and refused.value.field == "annotations"
    assert words in refused.value.message


def test_more_images_than_a_batch_may_hold_are_refused_with_413():
    with pytest.raises(BatchTooLarge, match="SAM3_BATCH_MAX_IMAGES"):
        read_coco_boxes(DETECTIONS, max_images=2, max_boxes=10)
