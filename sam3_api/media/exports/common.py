"""What the export formats share: which records are exported and their image ids, category ids, one decoded
mask at a time, output names per image, and a zip written as a stream of bytes."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import PurePosixPath

import numpy as np
from pycocotools import mask as coco_mask

from sam3_api.media.batch_sources import clean_file_name
from sam3_api.media.masks import mask_to_box, mask_to_outer_contours, rle_to_mask


def exported_images(records: Iterable[dict]) -> Iterator[tuple[int, dict]]:
    """(image id, record) of every record without an error, ids 1-based over ALL records in order.

    A failed image (unreadable, too large, a refused URL) has no labels, so no export claims it has no objects;
    counting it anyway keeps every other image's id the same whether or not it failed.
    """
    for image_id, record in enumerate(records, start=1):
        if not record.get("error"):
            yield image_id, record


def instances(record: dict) -> Iterator[tuple[dict, int]]:
    """(annotation, area) of each non-empty mask of a record: an empty mask labels nothing, so no export has it."""
    for annotation in record["annotations"]:
        if area := rle_area(annotation["mask"]):
            yield annotation, area


def rle_area(rle: dict) -> int:
    """Object pixels, counted on the COCO RLE itself (pycocotools), without decoding the mask."""
    counts = rle["counts"]
    return int(coco_mask.area({"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str)
                               else counts}))


def category_ids(categories: Sequence[str]) -> dict[str, int]:
    """Category name -> index in the job's category list (0-based; COCO adds 1, YOLO uses it as it is)."""
    return {name: index for index, name in enumerate(categories)}


def decoded_mask(annotation: dict) -> np.ndarray:
    """The annotation's COCO RLE as a bool (H, W) array: one mask at a time, never the whole image's."""
    return rle_to_mask(annotation["mask"])


def instance_rings(mask: np.ndarray) -> list[np.ndarray]:
    """The mask's outer boundaries as (N, 2) float arrays of pixel coordinates, each of 3 points or more.

    A polygon of fewer points is no polygon to its readers (pycocotools takes 4 numbers for a box, YOLO readers
    take a 5-value line for one), so a mask whose every part is a speck or a 1-pixel line becomes its box.
    Holes are not kept: COCO polygons and YOLO lines are filled whole (use the RLE or the PNGs for holes).
    """
    rings = [np.asarray(ring, dtype=np.float64) for ring in mask_to_outer_contours(mask) if len(ring) >= 3]
    if rings or not mask.any():
        return rings
    x1, y1, x2, y2 = mask_to_box(mask)
    return [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)]


def coco_box(box: Sequence[float]) -> list[float]:
    """[x1, y1, x2, y2] -> COCO's [x, y, width, height]."""
    x1, y1, x2, y2 = (float(value) for value in box)
    return [x1, y1, x2 - x1, y2 - y1]


class OutputNames:
    """file_name -> "<folder>/<stem><suffix>" for per-image outputs; a second image with the same stem (a.jpg
    and a.png) would overwrite the first's labels, so it gets None and is left out (and listed)."""

    def __init__(self, suffix: str):
        self.suffix = suffix
        self.used: set[str] = set()
        self.left_out: list[str] = []

    def __call__(self, file_name: str) -> str | None:
        # file_names are made safe where they enter a job; cleaning them again here keeps `..` and absolute
        # paths out of the zips we hand out, whatever a record holds (users extract them)
        name = PurePosixPath(clean_file_name(file_name)).with_suffix(self.suffix).as_posix()
        if name in self.used:
            self.left_out.append(file_name)
            return None
        self.used.add(name)
        return name


class _Chunks:
    """A write-only sink for zipfile: what was written since the last take(), as bytes."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zip_stream(members: Iterable[tuple[str, bytes, bool]]) -> Iterator[bytes]:
    """A zip archive of (name, data, compress) members, yielded as it is written (member by member).

    The sink is not seekable, so zipfile writes each member's sizes in a data descriptor after its data.
    """
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w") as archive:
        for name, data, compress in members:
            archive.writestr(name, data, zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
            if chunk := sink.take():
                yield chunk
    yield sink.take()
