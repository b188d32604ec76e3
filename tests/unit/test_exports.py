"""Batch exports: COCO (RLE and polygons), COCO results, YOLO and PNG label zips, read back by pycocotools,
OpenCV and zipfile, streamed while the records are read."""

from __future__ import annotations

import io
import json
import zipfile

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from sam3_api.errors import Conflict
from sam3_api.media.exports import export_chunks
from sam3_api.media.exports.yolo import merge_multi_segment
from sam3_api.media.masks import mask_to_rle
from tests.unit.batch_records import CATEGORIES, exported_masks, ring, sample_records


def export(export_format: str, records=None, **kwargs) -> bytes:
    return b"".join(export_chunks(export_format, sample_records() if records is None else records, CATEGORIES,
                                  **kwargs))


def load_coco(data: bytes, tmp_path) -> COCO:
    path = tmp_path / "dataset.json"
    path.write_bytes(data)
    return COCO(str(path))


def iou(first: np.ndarray, second: np.ndarray) -> float:
    return np.logical_and(first, second).sum() / max(np.logical_or(first, second).sum(), 1)


def fill_outer(mask: np.ndarray) -> np.ndarray:
    """The mask with its holes filled: what a polygon of its outer boundaries covers."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.drawContours(np.zeros(mask.shape, np.uint8), contours, -1, 1, cv2.FILLED).astype(bool)


def test_the_coco_dataset_loads_in_pycocotools_with_exact_rle_masks(tmp_path):
    coco = load_coco(export("coco"), tmp_path)
    expected = exported_masks()
    assert [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)] == ["photos/a.jpg", "empty.png", "street/b.png"]
    assert sorted(coco.imgs) == [1, 3, 4]  # the failed image keeps id 2 free
    assert [coco.cats[i]["name"] for i in sorted(coco.cats)] == CATEGORIES
    for image_id, image in coco.imgs.items():
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert [coco.cats[a["category_id"]]["name"] for a in annotations] == [c for c, _ in expected[image["file_name"]]]
        for annotation, (_, mask) in zip(annotations, expected[image["file_name"]]):
            assert np.array_equal(coco.annToMask(annotation).astype(bool), mask)
            assert annotation["area"] == mask.sum() and annotation["iscrowd"] == 0
            x1, y1, x2, y2 = (float(v) for v in (np.flatnonzero(mask.any(0))[0], np.flatnonzero(mask.any(1))[0],
                                                 np.flatnonzero(mask.any(0))[-1] + 1, np.flatnonzero(mask.any(1))[-1] + 1))
            assert annotation["bbox"] == [x1, y1, x2 - x1, y2 - y1]
    assert len(coco.anns) == 4 and sorted(coco.anns) == [1, 2, 3, 4]


def test_coco_polygons_cover_each_mask_without_its_holes(tmp_path):
    coco = load_coco(export("coco", mask_format="polygon"), tmp_path)
    expected = exported_masks()
    for annotation in coco.anns.values():
        assert isinstance(annotation["segmentation"], list) and all(len(p) >= 6 for p in annotation["segmentation"])
        image = coco.imgs[annotation["image_id"]]
        mask = expected[image["file_name"]][[a["id"] for a in coco.loadAnns(
            coco.getAnnIds(imgIds=[image["id"]]))].index(annotation["id"])][1]
        assert iou(coco.annToMask(annotation).astype(bool), fill_outer(mask)) > 0.9


def test_coco_results_load_against_the_dataset_with_the_same_ids(tmp_path):
    coco = load_coco(export("coco"), tmp_path)
    results = json.loads(export("coco_results"))
    detections = coco.loadRes(results)
    assert len(detections.anns) == 4
    for detection, ground_truth in zip(detections.anns.values(), coco.anns.values()):
        assert (detection["image_id"], detection["category_id"]) == (ground_truth["image_id"],
                                                                     ground_truth["category_id"])
        assert np.array_equal(detections.annToMask(detection), coco.annToMask(ground_truth))
        assert detection["score"] == ground_truth["score"]


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def test_yolo_labels_hold_one_normalised_polygon_per_instance(tmp_path):
    files = read_zip(export("yolo"))
    assert sorted(files) == ["data.yaml", "labels/empty.txt", "labels/photos/a.txt", "labels/street/b.txt"]
    assert files["labels/empty.txt"] == b""
    assert '  2: "traffic light"' in files["data.yaml"].decode() and "nc: 3" in files["data.yaml"].decode()
    sizes = {"photos/a.jpg": (160, 120), "street/b.png": (256, 192)}
    for file_name, instances in exported_masks().items():
        if not instances:
            continue
        lines = files[f"labels/{file_name.rsplit('.', 1)[0]}.txt"].decode().splitlines()
        assert [int(line.split()[0]) for line in lines] == [CATEGORIES.index(c) for c, _ in instances]
        width, height = sizes[file_name]
        for line, (_, mask) in zip(lines, instances):
            values = np.array(line.split()[1:], dtype=np.float64)
            assert values.min() >= 0 and values.max() <= 1 and len(values) >= 6
            polygon = np.round(values.reshape(-1, 2) * [width, height]).astype(np.int32)
            drawn = cv2.fillPoly(np.zeros((height, width), np.uint8), [polygon], 1).astype(bool)
            assert iou(drawn, fill_outer(mask)) > 0.9  # every part of a multi-part mask is in the one polygon


def test_merged_rings_pass_through_every_point_with_bridges_at_the_closest_pairs():
    # the middle ring is entered at its index 3 and left at its index 1: it is walked reversed
    rings = [np.array([[0, 30], [4, 30], [4, 34], [0, 34]]), np.array([[20, 20], [24, 20], [24, 24], [20, 24]]),
             np.array([[40, 0], [44, 0], [44, 4], [40, 4]]), np.array([[60, 0], [64, 0], [64, 4]])]
    merged = merge_multi_segment(rings)
    assert all(tuple(point) in set(map(tuple, merged)) for ring in rings for point in ring)
    closed = np.concatenate([merged, merged[:1]])
    steps = set(zip(map(tuple, closed[:-1]), map(tuple, closed[1:])))
    for first, second in [((4, 30), (20, 24)), ((24, 20), (40, 4)), ((44, 0), (60, 0))]:  # the closest pairs
        assert (first, second) in steps and (second, first) in steps  # bridged there and back
    # first and last ring closed (n + 1 points), each middle ring walked out and back (n + 2: it leaves twice)
    assert tuple(merged[0]) == (4, 30) and len(merged) == 5 + 6 + 6 + 4
    drawn = cv2.fillPoly(np.zeros((40, 70), np.uint8), [merged.astype(np.int32)], 1).astype(bool)
    for ring_points in rings:  # each ring's whole area is inside the one polygon
        alone = cv2.fillPoly(np.zeros((40, 70), np.uint8), [ring_points.astype(np.int32)], 1).astype(bool)
        assert drawn[alone].all()
    assert np.array_equal(merge_multi_segment(rings[:1]), rings[0])


def test_mask_pngs_hold_16_bit_instance_ids_and_8_bit_class_ids_best_first():
    files = read_zip(export("masks"))
    index = json.loads(files["index.json"])
    assert [c["name"] for c in index["categories"]] == CATEGORIES
    assert [image["file_name"] for image in index["images"]] == ["photos/a.jpg", "empty.png", "street/b.png"]
    for image, (file_name, instances) in zip(index["images"], exported_masks().items()):
        instance_ids = cv2.imdecode(np.frombuffer(files[image["instances"]], np.uint8), cv2.IMREAD_UNCHANGED)
        class_ids = cv2.imdecode(np.frombuffer(files[image["classes"]], np.uint8), cv2.IMREAD_UNCHANGED)
        assert instance_ids.dtype == np.uint16 and class_ids.dtype == np.uint8
        claimed = np.zeros(instance_ids.shape, dtype=bool)
        for number, (category, mask) in enumerate(instances, start=1):
            assert np.array_equal(instance_ids == number, mask & ~claimed)  # an earlier instance keeps overlaps
            assert (class_ids[mask & ~claimed] == CATEGORIES.index(category) + 1).all()
            claimed |= mask
        assert not instance_ids[~claimed].any() and not class_ids[~claimed].any()
        assert [o["category"] for o in image["objects"]] == [c for c, _ in instances]


def test_two_images_with_the_same_stem_keep_the_first_label_file_and_list_the_second():
    records = [{"file_name": "a.jpg", "width": 4, "height": 4, "annotations": []},
               {"file_name": "a.png", "width": 4, "height": 4, "annotations": []}]
    assert sorted(read_zip(export("yolo", records))) == ["data.yaml", "labels/a.txt"]
    assert '"a.png"' in read_zip(export("yolo", records))["data.yaml"].decode()
    assert json.loads(read_zip(export("masks", records))["index.json"])["left_out"] == ["a.png"]


@pytest.mark.parametrize("export_format", ["coco", "coco_results", "yolo", "masks"])
def test_exports_stream_while_the_records_are_read(export_format):
    consumed = []

    def records():
        for record in sample_records() * 3:
            consumed.append(record["file_name"])
            yield record

    chunks, read_when_sent = [], []
    for chunk in export_chunks(export_format, records(), CATEGORIES):
        chunks.append(chunk)
        read_when_sent.append(len(consumed))
    assert read_when_sent[1] < 12 and len(chunks) > 3  # output went out before the last record was read
    data = b"".join(chunks)
    assert read_zip(data) if export_format in ("yolo", "masks") else json.loads(data)


def test_the_masks_export_refuses_more_categories_than_8_bits_hold():
    with pytest.raises(Conflict, match="255"):
        export_chunks("masks", [], [f"c{index}" for index in range(256)])


def test_a_ring_mask_keeps_its_hole_in_rle_and_loses_it_in_polygons(tmp_path):
    records = [{"file_name": "r.png", "width": 100, "height": 50,
                "annotations": [{"category": "cat", "score": 1.0, "box": [60, 10, 90, 40],
                                 "mask": mask_to_rle(ring(50, 100))}]}]
    rle = load_coco(export("coco", records), tmp_path)
    assert np.array_equal(rle.annToMask(rle.anns[1]).astype(bool), ring(50, 100))
    polygon = load_coco(export("coco", records, mask_format="polygon"), tmp_path)
    assert polygon.annToMask(polygon.anns[1]).astype(bool)[24, 74]  # COCO polygons are filled whole
    assert not ring(50, 100)[24, 74] and rle.anns[1]["area"] == 30 * 30 - 64


@pytest.mark.parametrize("arguments", [{"export_format": "voc"}, {"export_format": "coco", "mask_format": "svg"}])
def test_an_unknown_format_is_refused_before_anything_is_written(arguments):
    with pytest.raises(ValueError, match="must be one of"):
        export_chunks(records=iter(()), categories=CATEGORIES, **arguments)


@pytest.mark.parametrize("export_format", ["yolo", "masks"])
def test_zip_member_names_never_leave_the_folder_they_are_extracted_to(export_format):
    records = [{"file_name": name, "width": 4, "height": 4, "annotations": []}
               for name in ("../../evil.jpg", "/etc/cron.jpg", "C:\\windows\\x.png", "ok/./y.png")]
    names = sorted(read_zip(export(export_format, records)))
    assert not any(".." in name.split("/") or name.startswith("/") or ":" in name for name in names)
    folder = "labels" if export_format == "yolo" else "classes"
    suffix = ".txt" if export_format == "yolo" else ".png"
    assert {f"{folder}/{stem}{suffix}" for stem in ("evil", "etc/cron", "windows/x", "ok/y")} <= set(names)
