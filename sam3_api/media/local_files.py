"""Read a client-named file only from below an operator-chosen root directory (seed 002's `image_path`).

A client string never reaches open() as it is: the name must be relative to the root, or absolute and
inside it; no `..` component is accepted; the path is resolved with every symlink followed and must still
lie inside the root (a symlink pointing out is refused, one pointing within is fine); the last component
is opened with O_NOFOLLOW (and O_NONBLOCK), and the opened file must be a regular file no larger than the byte cap.
What remains is a race that needs write access to the root itself, which clients of this API do not have.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePath

from sam3_api.errors import ImageTooLarge, NotFound, PathNotAllowed

_NOT_CONFIGURED = ("image_path is switched off on this server: the operator can set SAM3_IMAGE_ROOT to a directory "
                   "whose files may be read; otherwise send the image as image_base64")


def read_file_under_root(root: Path | str | None, name: str, *, max_bytes: int) -> bytes:
    """The bytes of `name` below `root`; PathNotAllowed (403), NotFound (404) or ImageTooLarge (413)."""
    _, target = resolve_under_root(root, name)
    return _read_regular_file(target, name, max_bytes)


def resolve_under_root(root: Path | str | None, name: str, *, field: str = "image_path") -> tuple[Path, Path]:
    """(the resolved root, the resolved `name` below it), every symlink followed; raises as read_file_under_root.

    `field` names the request field in the messages (image_path, a batch job's image_dir).
    """
    if root is None or not str(root).strip():
        raise PathNotAllowed(_NOT_CONFIGURED.replace("image_path", field, 1), field=field)
    try:
        base = Path(root).resolve(strict=True)
    except OSError:
        raise PathNotAllowed(_NOT_CONFIGURED.replace("image_path", field, 1)
                             + f" (SAM3_IMAGE_ROOT {str(root)!r} does not exist)", field=field) from None
    return base, _resolve_inside(base, name, field)


def _outside(name: str, field: str) -> PathNotAllowed:
    return PathNotAllowed(f"{field} {name!r} is outside the directory this server may read (SAM3_IMAGE_ROOT); "
                          "name a path below it, e.g. 'photos/cat.jpg'", field=field)


def _resolve_inside(base: Path, name: str, field: str) -> Path:
    if not name or "\x00" in name:
        raise PathNotAllowed(f"{field} is empty or contains a NUL character", field=field)
    candidate = PurePath(name)
    if ".." in candidate.parts:
        raise _outside(name, field)
    joined = Path(candidate) if candidate.is_absolute() else base / candidate
    try:
        resolved = joined.resolve(strict=True)
    except FileNotFoundError:
        raise NotFound(f"{field} {name!r} does not exist below SAM3_IMAGE_ROOT", field=field) from None
    except (OSError, RuntimeError):  # a symlink loop, a permission problem: never a 500
        raise _outside(name, field) from None
    if not resolved.is_relative_to(base):
        raise _outside(name, field)
    return resolved


def _read_regular_file(path: Path, name: str, max_bytes: int) -> bytes:
    # O_NONBLOCK: a FIFO placed under the root must not hang the reader (no effect on regular files).
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        raise _outside(name, "image_path") from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise NotFound(f"image_path {name!r} is not a regular file", field="image_path")
    if info.st_size > max_bytes:
        os.close(descriptor)
        raise ImageTooLarge(f"image_path {name!r} is {info.st_size} bytes, over the limit of {max_bytes} bytes "
                            "(SAM3_MAX_UPLOAD_BYTES)", field="image_path")
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read(max_bytes + 1)  # decode_image re-checks the size of what was read
