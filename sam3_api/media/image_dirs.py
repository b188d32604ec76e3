"""A folder of images below SAM3_IMAGE_ROOT, searched recursively: list it, then read each image.

The folder is resolved like seed 002's image_path (local_files.py: no `..`, nothing outside the root, 403 when
the root is unset). The walk never follows a symlinked folder; a symlinked file is kept only when it leads to
a file inside the root, else it is skipped and listed. Each image is read back through read_file_under_root,
so a file swapped for a link after listing is refused then too. `file_name`s are paths relative to the folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from sam3_api.errors import BatchTooLarge, NotFound, Sam3Error
from sam3_api.media.batch_sources import BatchLimits, ImageListing, Names, SkippedFile, SourceImage, skip_reason
from sam3_api.media.local_files import read_file_under_root, resolve_under_root

FIELD = "image_dir"


def list_image_dir(root: Path | str | None, image_dir: str, limits: BatchLimits) -> ImageListing:
    """The images below `image_dir` (sorted by relative path) and the files skipped, with why."""
    base, folder = resolve_under_root(root, image_dir, field=FIELD)
    if not folder.is_dir():
        raise NotFound(f"image_dir {image_dir!r} is not a folder below SAM3_IMAGE_ROOT", field=FIELD)
    names, entries = Names(limits), 0
    images: list[str] = []
    skipped: list[SkippedFile] = []
    for current, folders, files in os.walk(folder, followlinks=False):
        entries += len(folders) + len(files)
        if entries > limits.max_members:
            raise BatchTooLarge(f"image_dir {image_dir!r} holds more than {limits.max_members} files and folders "
                                "(SAM3_BATCH_MAX_ARCHIVE_MEMBERS); name a smaller folder", field=FIELD)
        here = Path(current)
        folders.sort()
        for pruned in [name for name in folders if (here / name).is_symlink() or name.startswith(".")]:
            folders.remove(pruned)  # neither descended nor counted: a .git folder may hold thousands of files
            reason = "a hidden folder" if pruned.startswith(".") else "a symbolic link to a folder (not followed)"
            skipped.append(SkippedFile(_relative(here / pruned, folder), reason))
        for name in sorted(files):
            verdict = _classify(base, here / name, _relative(here / name, folder))
            if isinstance(verdict, SkippedFile):
                skipped.append(verdict)
            else:
                names.add_image(verdict)
                names.total_bytes += (here / name).stat().st_size
                images.append(verdict)
    return ImageListing(tuple(sorted(images)), tuple(skipped), names.total_bytes)


def iter_dir_images(root: Path | str | None, image_dir: str, file_names: Sequence[str], *,
                    max_image_bytes: int) -> Iterator[SourceImage]:
    """Each listed image's bytes, or its own error (gone since listing, too large, now a link out of the root)."""
    _, folder = resolve_under_root(root, image_dir, field=FIELD)
    for file_name in file_names:
        try:
            data = read_file_under_root(root, str(folder / file_name), max_bytes=max_image_bytes)
        except Sam3Error as error:
            yield SourceImage(file_name, error=error)
        else:
            yield SourceImage(file_name, data=data)


def _classify(base: Path, path: Path, file_name: str) -> str | SkippedFile:
    reason = skip_reason(file_name)
    if reason is None and path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return SkippedFile(file_name, "a broken or looping symbolic link")
        if not target.is_relative_to(base) or not target.is_file():
            return SkippedFile(file_name, "a symbolic link leading outside SAM3_IMAGE_ROOT (not read)")
    elif reason is None and not path.is_file():
        return SkippedFile(file_name, "not a regular file")
    return file_name if reason is None else SkippedFile(file_name, reason)


def _relative(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()
