"""supervision (Roboflow's dataset toolkit) loads our COCO and YOLO exports as a user's training code would.

`DetectionDataset.from_coco(..., force_masks=True)` reads the coco export in both mask formats and
`from_yolo(..., force_masks=True)` the yolo zip (unpacked, with the images beside it under images/): each must
find the same images, categories and instances, class by class, with masks of the right area.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

import pytest
import supervision as sv
from PIL import Image

from sam3_api.media.exports import export_chunks
from tests.unit.batch_records import CATEGORIES, exported_masks, sample_records

# from_yolo lists one folder (not its subfolders): the judged dataset is flat.
RECORDS = [{**record, "file_name": PurePosixPath(record["file_name"]).name} for record in sample_records()]
EXPECTED = {PurePosixPath(name).name: instances for name, instances in exported_masks().items()}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("supervision-dataset")
    (root / "images").mkdir()
    for record in RECORDS:
        if not record.get("error"):
            Image.new("RGB", (record["width"], record["height"])).save(root / "images" / record["file_name"])
    for mask_format in ("rle", "polygon"):
        (root / f"coco_{mask_format}.json").write_bytes(
            b"".join(export_chunks("coco", RECORDS, CATEGORIES, mask_format=mask_format)))
    with zipfile.ZipFile(io.BytesIO(b"".join(export_chunks("yolo", RECORDS, CATEGORIES)))) as archive:
        archive.extractall(root)  # our own zip, into a temporary folder
    return root


def load(root, export_name: str) -> sv.DetectionDataset:
    if export_name == "yolo":
        return sv.DetectionDataset.from_yolo(images_directory_path=str(root / "images"),
                                             annotations_directory_path=str(root / "labels"),
                                             data_yaml_path=str(root / "data.yaml"), force_masks=True)
    return sv.DetectionDataset.from_coco(images_directory_path=str(root / "images"),
                                         annotations_path=str(root / f"{export_name}.json"), force_masks=True)


@pytest.mark.parametrize("export_name", ["coco_rle", "coco_polygon", "yolo"])
def test_supervision_finds_every_image_category_and_instance(dataset_dir, export_name):
    dataset = load(dataset_dir, export_name)
    assert list(dataset.classes) == CATEGORIES
    found = {PurePosixPath(path).name: detections for path, _, detections in dataset}
    assert sorted(found) == sorted(EXPECTED)  # the failed image is not in the dataset
    assert sum(len(detections) for detections in found.values()) == 4
    for file_name, instances in EXPECTED.items():
        detections = found[file_name]
        assert list(detections.class_id) == [CATEGORIES.index(category) for category, _ in instances]
        areas = [int(mask.sum()) for _, mask in instances]
        got = [int(mask.sum()) for mask in detections.mask] if len(detections) else []
        if export_name == "coco_rle":
            assert got == areas  # RLE is exact
        else:  # polygons fill holes; a joined multi-part polygon adds its zero-width bridges' pixels
            assert all(want <= value <= 1.1 * want + 64 for value, want in zip(got, areas, strict=True))
