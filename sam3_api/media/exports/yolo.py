"""The `yolo` export: a zip of labels/<path>/<stem>.txt (Ultralytics' segmentation format) and data.yaml.

Each line is one instance: its class index, then its polygon as x y pairs normalised to [0, 1] by the image's
width and height. A mask in several parts becomes ONE polygon, joined the way Ultralytics' own COCO converter
joins them (see merge_multi_segment). Put the images under images/ with the same relative paths, and
Ultralytics (or supervision's DetectionDataset.from_yolo) finds each image's labels by its path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from sam3_api.media.exports.common import (
    OutputNames, category_ids, decoded_mask, exported_images, instance_rings, instances, zip_stream,
)


def yolo_chunks(records: Iterable[dict], categories: Sequence[str]) -> Iterator[bytes]:
    """The zip, yielded member by member; one mask decoded at a time."""
    return zip_stream(_members(records, categories))


def _members(records: Iterable[dict], categories: Sequence[str]):
    ids, names = category_ids(categories), OutputNames(".txt")
    for _, record in exported_images(records):
        name = names(record["file_name"])
        if name is None:
            continue
        lines = [yolo_line(ids[annotation["category"]], decoded_mask(annotation), record["width"], record["height"])
                 for annotation, _ in instances(record)]
        yield f"labels/{name}", "".join(lines).encode(), True  # an empty file: an image with nothing to find
    yield "data.yaml", data_yaml(categories, names.left_out).encode(), True


def yolo_line(class_index: int, mask: np.ndarray, width: int, height: int) -> str:
    """`class x1 y1 x2 y2 ...`: the mask's outer boundary, its parts joined, normalised and clipped to [0, 1]."""
    polygon = merge_multi_segment(instance_rings(mask))
    normalised = np.clip(polygon / np.array([width, height], dtype=np.float64), 0.0, 1.0)
    return f"{class_index} " + " ".join(f"{value:.6f}" for value in normalised.reshape(-1)) + "\n"


def data_yaml(categories: Sequence[str], left_out: Sequence[str] = ()) -> str:
    """Ultralytics' dataset file. Names are JSON strings, which YAML reads as double-quoted scalars."""
    lines = ["# YOLO segmentation labels written by sam3-api: put the images under images/ with the same",
             "# relative paths as their labels under labels/.",
             "path: .", "train: images", "val: images", f"nc: {len(categories)}", "names:"]
    lines += [f"  {index}: {json.dumps(name)}" for index, name in enumerate(categories)]
    lines += [f"# left out (another image has the same folder and stem): {json.dumps(name)}" for name in left_out]
    return "\n".join(lines) + "\n"


def merge_multi_segment(rings: Sequence[np.ndarray]) -> np.ndarray:
    """Join several rings into one polygon through zero-width bridges between their nearest points.

    The algorithm of Ultralytics' `merge_multi_segment` (ultralytics/data/converter.py, AGPL-3.0), written
    anew here rather than depended on: link each ring to the next at their closest pair of points; walk
    forward (the first ring whole, each middle ring from where it is entered to where it leaves, the last ring
    whole) and back (each middle ring's other side, last to first), so the path ends where it began. A middle
    ring entered after the point where it leaves is walked reversed; this version maps the two link points
    into the reversed ring's indices, so the bridges always meet the rings at the chosen points.
    """
    rings = [np.asarray(ring, dtype=np.float64).reshape(-1, 2) for ring in rings]
    if len(rings) == 1:
        return rings[0]
    links = [_closest_pair(rings[index - 1], rings[index]) for index in range(1, len(rings))]
    forward, backward = [], []
    for index, ring in enumerate(rings):
        entry = links[index - 1][1] if index > 0 else None
        leave = links[index][0] if index < len(links) else None
        if entry is None or leave is None:  # first or last ring: all of it, from its link point back to it
            forward.append(_closed_from(ring, leave if entry is None else entry))
            continue
        if entry > leave:
            ring, entry, leave = ring[::-1], len(ring) - 1 - entry, len(ring) - 1 - leave
        closed = _closed_from(ring, entry)
        forward.append(closed[:leave - entry + 1])
        backward.append(closed[leave - entry:])
    return np.concatenate(forward + backward[::-1])


def _closest_pair(first: np.ndarray, second: np.ndarray, rows: int = 256) -> tuple[int, int]:
    """Indices of the closest points of two rings; the distance matrix is built a block of rows at a time,
    so two rings of thousands of points never need one huge array (the first closest pair wins ties)."""
    best = (np.inf, 0, 0)
    for start in range(0, len(first), rows):
        distances = ((first[start:start + rows, None, :] - second[None, :, :]) ** 2).sum(-1)
        row, column = np.unravel_index(np.argmin(distances), distances.shape)
        if distances[row, column] < best[0]:
            best = (distances[row, column], start + int(row), int(column))
    return best[1], best[2]


def _closed_from(ring: np.ndarray, start: int) -> np.ndarray:
    """The ring starting at `start`, with that point repeated at the end."""
    rolled = np.roll(ring, -start, axis=0)
    return np.concatenate([rolled, rolled[:1]])
