"""A client's COCO detection JSON (images, categories, annotations with `bbox`) read as boxes to turn into masks.

A batch job's `annotations` input: each box becomes a single-object box prompt on its image, and the mask
keeps the box's category, so a box dataset becomes a mask dataset. Images are matched to the job's images by
`file_name` (a relative path; `./` and backslashes are normalised). Every rule broken is a 422 that names the
entry, e.g. `annotations[3].bbox must be [x, y, width, height] ...`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import PurePosixPath

from sam3_api.errors import BatchTooLarge, InvalidPrompt

FIELD = "annotations"
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class CocoBoxes:
    """Categories in COCO id order, and per file_name its (category, [x1, y1, x2, y2]) boxes in file order."""

    categories: tuple[str, ...]
    boxes: dict[str, tuple[tuple[str, Box], ...]]


def read_coco_boxes(document: bytes | str | dict, *, max_images: int, max_boxes: int) -> CocoBoxes:
    """Parse and check a COCO detection document; images without annotations get no boxes."""
    data = _as_object(document)
    categories = _categories(data)
    images = _images(data, max_images)
    boxes: dict[str, list[tuple[str, Box]]] = {name: [] for name in images.values()}
    for index, annotation in enumerate(_list(data, "annotations")):
        where = f"annotations[{index}]"
        if not isinstance(annotation, dict):
            raise _invalid(f"{where} must be an object")
        file_name = images.get(annotation.get("image_id"))
        if file_name is None:
            raise _invalid(f"{where}.image_id {annotation.get('image_id')!r} is not the id of an entry in images")
        category = categories.get(annotation.get("category_id"))
        if category is None:
            raise _invalid(f"{where}.category_id {annotation.get('category_id')!r} is not the id of an entry in "
                           "categories")
        boxes[file_name].append((category, _box(annotation.get("bbox"), where)))
        if len(boxes[file_name]) > max_boxes:
            raise _invalid(f"image {file_name!r} has more than {max_boxes} boxes (SAM3_MAX_PROMPTS per image)")
    ordered = tuple(categories[key] for key in sorted(categories))
    return CocoBoxes(ordered, {name: tuple(items) for name, items in boxes.items()})


def normalise_file_name(name: str) -> str:
    """'./photos\\a.jpg' -> 'photos/a.jpg': how a COCO file_name is matched to a job's image file_name."""
    return PurePosixPath(name.replace("\\", "/")).as_posix()


def _as_object(document: bytes | str | dict) -> dict:
    if isinstance(document, (bytes, str)):
        try:
            document = json.loads(document)
        except (ValueError, UnicodeError) as exc:
            raise _invalid(f"is not JSON ({exc}); send a COCO detection file") from None
    if not isinstance(document, dict):
        raise _invalid("must be a COCO object with images, categories and annotations lists")
    return document


def _list(data: dict, key: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise _invalid(f"must have a '{key}' list (COCO detection format: images, categories, annotations)")
    return value


def _categories(data: dict) -> dict[int, str]:
    categories: dict[int, str] = {}
    for index, entry in enumerate(_list(data, "categories")):
        identifier, name = (entry.get("id"), entry.get("name")) if isinstance(entry, dict) else (None, None)
        if not _is_id(identifier) or not isinstance(name, str) or not name.strip():
            raise _invalid(f"categories[{index}] must have an integer id and a non-empty name")
        if identifier in categories or name in categories.values():
            raise _invalid(f"categories[{index}] repeats the id {identifier} or the name {name!r}; masks are "
                           "labelled by name, so each must be unique")
        categories[identifier] = name
    return categories


def _images(data: dict, max_images: int) -> dict[int, str]:
    entries = _list(data, "images")
    if len(entries) > max_images:
        raise BatchTooLarge(f"annotations lists {len(entries)} images, over the limit of {max_images} "
                            "(SAM3_BATCH_MAX_IMAGES); split it into several jobs", field=FIELD)
    images: dict[int, str] = {}
    for index, entry in enumerate(entries):
        identifier, name = (entry.get("id"), entry.get("file_name")) if isinstance(entry, dict) else (None, None)
        if not _is_id(identifier) or not isinstance(name, str) or not name.strip():
            raise _invalid(f"images[{index}] must have an integer id and a non-empty file_name")
        name = normalise_file_name(name)
        if identifier in images or name in images.values():
            raise _invalid(f"images[{index}] repeats the id {identifier} or the file_name {name!r}")
        images[identifier] = name
    return images


def _box(bbox, where: str) -> Box:
    numbers = bbox if isinstance(bbox, list) and len(bbox) == 4 else None
    if numbers is None or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                  for v in numbers) or numbers[2] <= 0 or numbers[3] <= 0:
        raise _invalid(f"{where}.bbox must be [x, y, width, height] with finite numbers and width, height > 0, "
                       f"got {bbox!r}")
    x, y, width, height = (float(v) for v in numbers)
    return (x, y, x + width, y + height)


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _invalid(message: str) -> InvalidPrompt:
    return InvalidPrompt(f"annotations {message}", field=FIELD)
