"""A batch job's images: kept at submission (uploads, an archive, URLs, a folder below SAM3_IMAGE_ROOT), listed
once, and read back image by image when the job runs (again after a restart, skipping the images done).

    <job>/listing.json   {"file_names": [...], "skipped": [{"file_name", "reason"}]}  (the job's image order)
    <job>/inputs/<n>     the n-th uploaded image (uploads)
    <job>/archive        the uploaded zip or tar, never extracted (media/archives.py reads its members)
URLs and image_dir are kept in the job's request and read when the job runs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from ..errors import BatchTooLarge, ImageTooLarge, InvalidImage
from ..media.archives import iter_archive_images, list_archive
from ..media.batch_sources import BatchLimits, ImageListing, SourceImage, clean_file_name
from ..media.image_dirs import iter_dir_images, list_image_dir

LISTING_FILE = "listing.json"
INPUTS_DIR = "inputs"
ARCHIVE_FILE = "archive"


@dataclass
class BatchInput:
    """What a client sent as images: exactly one of these is set (the route checks)."""

    uploads: list[Any] = field(default_factory=list)  # objects with .filename and .file (a binary file)
    archive: Any | None = None
    image_urls: list[str] = field(default_factory=list)
    image_dir: str | None = None


def batch_limits(settings) -> BatchLimits:
    return BatchLimits(max_images=settings.batch_max_images, max_members=settings.batch_max_archive_members,
                       max_total_bytes=settings.batch_max_archive_bytes, max_image_bytes=settings.max_upload_bytes)


def keep_input(batch: BatchInput, directory: Path, settings) -> tuple[dict, ImageListing]:
    """Store what the job needs to read its images later, list them; raises 4xx for a bad or too large batch.

    Blocking file I/O: call it in a thread.
    """
    limits = batch_limits(settings)
    if batch.archive is not None:
        _copy(batch.archive.file, directory / ARCHIVE_FILE)
        return {"kind": "archive"}, list_archive(directory / ARCHIVE_FILE, limits)
    if batch.image_dir is not None:
        return {"kind": "dir", "image_dir": batch.image_dir}, list_image_dir(settings.image_root, batch.image_dir,
                                                                              limits)
    if batch.image_urls:
        _check_count(len(batch.image_urls), limits, "image_urls")
        names = unique_names(_url_name(url, index) for index, url in enumerate(batch.image_urls))
        return {"kind": "urls", "urls": list(batch.image_urls)}, ImageListing(tuple(names), (), 0)
    if not batch.uploads:
        raise InvalidImage("no images: send files in `images`, one zip or tar in `archive`, or JSON with "
                           "image_urls or image_dir", field="images")
    _check_count(len(batch.uploads), limits, "images")
    (directory / INPUTS_DIR).mkdir()
    for index, upload in enumerate(batch.uploads):
        _copy(upload.file, directory / INPUTS_DIR / str(index), limits.max_image_bytes)
    names = unique_names(clean_file_name(upload.filename or "", f"image_{index}")
                         for index, upload in enumerate(batch.uploads))
    return {"kind": "uploads"}, ImageListing(tuple(names), (), 0)


def write_listing(directory: Path, listing: ImageListing) -> None:
    (directory / LISTING_FILE).write_text(json.dumps(
        {"file_names": list(listing.file_names), "skipped": [item.to_dict() for item in listing.skipped]}))


def read_listing(directory: Path) -> dict:
    return json.loads((directory / LISTING_FILE).read_text())


def local_images(directory: Path, source: dict, file_names: Sequence[str], done: frozenset[str],
                 settings) -> Iterator[SourceImage]:
    """The bytes (or own error) of each image not done, in listing order, for every source but URLs."""
    limits = batch_limits(settings)
    if source["kind"] == "archive":
        yield from iter_archive_images(directory / ARCHIVE_FILE, limits, skip=done)
    elif source["kind"] == "dir":
        todo = [name for name in file_names if name not in done]
        yield from iter_dir_images(settings.image_root, source["image_dir"], todo,
                                   max_image_bytes=limits.max_image_bytes)
    else:
        for index, name in enumerate(file_names):
            if name not in done:
                path = directory / INPUTS_DIR / str(index)
                yield SourceImage(name, data=path.read_bytes()) if path.exists() else SourceImage(name, error=(
                    ImageTooLarge(f"image is over SAM3_MAX_UPLOAD_BYTES={limits.max_image_bytes} bytes")))


def unique_names(names) -> list[str]:
    """Names made unique by a ' (2)' before the suffix, as file managers do."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, number = name, 1
        while candidate in seen:
            number += 1
            path = PurePosixPath(name)
            candidate = str(path.with_name(f"{path.stem} ({number}){path.suffix}"))
        seen.add(candidate)
        out.append(candidate)
    return out


def _url_name(url: str, index: int) -> str:
    return clean_file_name(unquote(urlsplit(url).path).rsplit("/", 1)[-1], f"image_{index}")


def _check_count(count: int, limits: BatchLimits, field_name: str) -> None:
    if count > limits.max_images:
        raise BatchTooLarge(f"the batch has {count} images, over SAM3_BATCH_MAX_IMAGES={limits.max_images}; "
                            "split it into several jobs", field=field_name)


def _copy(source: BinaryIO, target: Path, max_bytes: int | None = None) -> None:
    source.seek(0)
    with open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
        size = out.tell()
    if max_bytes is not None and size > max_bytes:
        os.remove(target)  # one image too large fails alone when the job reads it (local_images)
