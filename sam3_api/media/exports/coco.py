"""COCO exports of a batch job's records: the instance-segmentation dataset (`coco`) and the detection-results
list that pycocotools' COCO.loadRes reads (`coco_results`). Both are yielded as JSON text, image by image."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from sam3_api.media.exports.common import (
    category_ids, coco_box, decoded_mask, exported_images, instance_rings, instances,
)

MASK_FORMATS = ("rle", "polygon")


def coco_chunks(records: Iterable[dict], categories: Sequence[str], *, mask_format: str = "rle",
                description: str = "sam3-api batch labeling job") -> Iterator[bytes]:
    """A COCO instance-segmentation dataset: info, categories, annotations (streamed), then images.

    Key order is free in JSON, so the annotations go out while records are read and only the small image
    entries are held until the end. Category ids are 1-based in the job's category order; image ids are
    1-based over the job's records (a failed image keeps its id but is left out). `mask_format`: "rle"
    (COCO compressed RLE, exact) or "polygon" (outer boundaries, see instance_rings).
    """
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"mask_format must be one of {MASK_FORMATS}")
    ids = category_ids(categories)
    coco_categories = [{"id": index + 1, "name": name, "supercategory": "object"} for name, index in ids.items()]
    yield (f'{{"info":{_json({"description": description})},"licenses":[],'
           f'"categories":{_json(coco_categories)},"annotations":[').encode()
    images, annotation_id = [], 0
    for image_id, record in exported_images(records):
        images.append({"id": image_id, "file_name": record["file_name"], "width": record["width"],
                       "height": record["height"]})
        lines = []
        for annotation, area in instances(record):
            annotation_id += 1
            lines.append(_json(_dataset_annotation(annotation, area, annotation_id, image_id, ids, mask_format)))
        if lines:
            yield (("," if annotation_id > len(lines) else "") + ",".join(lines)).encode()
    yield f'],"images":{_json(images)}}}'.encode()


def coco_results_chunks(records: Iterable[dict], categories: Sequence[str]) -> Iterator[bytes]:
    """The results list COCO.loadRes reads: image_id, category_id, segmentation (RLE), bbox, score per instance.

    Its image and category ids are those of coco_chunks for the same records, so the two load side by side.
    """
    ids = category_ids(categories)
    yield b"["
    first = True
    for image_id, record in exported_images(records):
        for annotation, _ in instances(record):
            line = _json({"image_id": image_id, "category_id": ids[annotation["category"]] + 1,
                          "segmentation": annotation["mask"], "bbox": coco_box(annotation["box"]),
                          "score": annotation["score"]})
            yield (line if first else "," + line).encode()
            first = False
    yield b"]"


def _dataset_annotation(annotation: dict, area: int, annotation_id: int, image_id: int, ids: dict[str, int],
                        mask_format: str) -> dict:
    if mask_format == "polygon":
        segmentation = [[round(float(value), 2) for value in ring.reshape(-1)]
                        for ring in instance_rings(decoded_mask(annotation))]
    else:
        segmentation = annotation["mask"]
    return {"id": annotation_id, "image_id": image_id, "category_id": ids[annotation["category"]] + 1,
            "segmentation": segmentation, "area": area, "bbox": coco_box(annotation["box"]), "iscrowd": 0,
            "score": annotation["score"]}


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))
