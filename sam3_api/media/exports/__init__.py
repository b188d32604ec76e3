"""Exports of a batch labeling job's per-image records, each yielded as bytes while the records are read.

A record: {"file_name", "width", "height", "error"?, "annotations": [{"category", "score", "box" [x1, y1, x2, y2],
"mask" (COCO compressed RLE {"size", "counts"})}]}. Records with an error and empty masks are left out; image ids
count every record, so they stay the same whatever failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from sam3_api.media.exports.coco import MASK_FORMATS, coco_chunks, coco_results_chunks
from sam3_api.media.exports.png_masks import mask_png_chunks
from sam3_api.media.exports.yolo import yolo_chunks

# format -> (media type, file suffix)
EXPORT_FORMATS: dict[str, tuple[str, str]] = {
    "coco": ("application/json", ".json"),
    "coco_results": ("application/json", ".json"),
    "yolo": ("application/zip", ".zip"),
    "masks": ("application/zip", ".zip"),
}


def export_chunks(export_format: str, records: Iterable[dict], categories: Sequence[str], *,
                  mask_format: str = "rle") -> Iterator[bytes]:
    """The export in `export_format` (a key of EXPORT_FORMATS); `mask_format` applies to coco only.

    A bad format or mask_format raises ValueError here, before anything is yielded (the route checks both first).
    """
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"mask_format must be one of {MASK_FORMATS}")
    if export_format == "coco":
        return coco_chunks(records, categories, mask_format=mask_format)
    if export_format == "coco_results":
        return coco_results_chunks(records, categories)
    if export_format == "yolo":
        return yolo_chunks(records, categories)
    if export_format == "masks":
        return mask_png_chunks(records, categories)
    raise ValueError(f"export format must be one of {sorted(EXPORT_FORMATS)}")


__all__ = ["EXPORT_FORMATS", "MASK_FORMATS", "export_chunks"]
