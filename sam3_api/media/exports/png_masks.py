"""The `masks` export: a zip of label images per image, for semantic and instance segmentation trainers.

    instances/<path>/<stem>.png   16-bit: 0 background, k for the image's k-th instance (best first on top)
    classes/<path>/<stem>.png     8-bit: 0 background, c for the job's c-th category (1-based)
    index.json                    categories, and per image its two files and each instance's id, category, score

Where masks overlap, the earlier instance of the record (the better one: records list the best first) keeps
the pixel. Images are rendered one at a time, each mask decoded in turn.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np

from sam3_api.errors import Conflict
from sam3_api.media.exports.common import (
    OutputNames, category_ids, decoded_mask, exported_images, instances, zip_stream,
)

MAX_CATEGORIES = 255  # class ids are 8-bit, 0 is the background
MAX_INSTANCES = 65535  # instance ids are 16-bit


def mask_png_chunks(records: Iterable[dict], categories: Sequence[str]) -> Iterator[bytes]:
    """The zip, yielded image by image; Conflict (409) at once when the categories do not fit in 8 bits."""
    if len(categories) > MAX_CATEGORIES:
        raise Conflict(f"the masks export stores class ids in 8 bits, so at most {MAX_CATEGORIES} categories; this "
                       f"job has {len(categories)}: use format=coco or format=yolo")
    return zip_stream(_members(records, categories))


def _members(records: Iterable[dict], categories: Sequence[str]):
    ids, names, index = category_ids(categories), OutputNames(".png"), []
    for _, record in exported_images(records):
        name = names(record["file_name"])
        if name is None:
            continue
        instance_ids, class_ids, objects = label_images(record, ids)
        yield f"instances/{name}", _png(instance_ids), False  # PNG is compressed already
        yield f"classes/{name}", _png(class_ids), False
        index.append({"file_name": record["file_name"], "instances": f"instances/{name}",
                      "classes": f"classes/{name}", "objects": objects})
    catalogue = {"categories": [{"id": number + 1, "name": name} for name, number in ids.items()],
                 "images": index, "left_out": names.left_out}
    yield "index.json", json.dumps(catalogue, separators=(",", ":")).encode(), True


def label_images(record: dict, ids: dict[str, int]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(16-bit instance ids, 8-bit class ids, the instances' index entries) of one record."""
    shape = (int(record["height"]), int(record["width"]))
    instance_ids = np.zeros(shape, dtype=np.uint16)
    class_ids = np.zeros(shape, dtype=np.uint8)
    objects = []
    for number, (annotation, area) in enumerate(instances(record), start=1):
        if number > MAX_INSTANCES:
            break
        free = decoded_mask(annotation) & (instance_ids == 0)  # an earlier (better) instance keeps its pixels
        instance_ids[free] = number
        class_ids[free] = ids[annotation["category"]] + 1
        objects.append({"id": number, "category": annotation["category"], "class_id": ids[annotation["category"]] + 1,
                        "score": annotation["score"], "area": area})
    return instance_ids, class_ids, objects


def _png(pixels: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", pixels)  # uint16 arrays are written as 16-bit grayscale
    if not ok:
        raise ValueError("OpenCV could not encode a label image as PNG")
    return buffer.tobytes()
