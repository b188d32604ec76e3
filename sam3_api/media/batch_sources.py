"""What a batch's image sources (an archive, a folder below SAM3_IMAGE_ROOT) have in common: limits, member
names turned into safe `file_name`s, which files count as images, and the listing they produce."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from sam3_api.errors import BatchTooLarge, InvalidArchive, Sam3Error

# Suffixes decode_image's formats use; anything else is skipped (and listed) rather than failed.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


@dataclass(frozen=True)
class BatchLimits:
    """The SAM3_BATCH_* settings (and SAM3_MAX_UPLOAD_BYTES per image), passed in: media/ reads no settings."""

    max_images: int
    max_members: int
    max_total_bytes: int
    max_image_bytes: int


@dataclass(frozen=True)
class SkippedFile:
    file_name: str
    reason: str

    def to_dict(self) -> dict:
        return {"file_name": self.file_name, "reason": self.reason}


@dataclass(frozen=True)
class ImageListing:
    """The images of a source in reading order (their `file_name`s, unique) and what was skipped, with why."""

    file_names: tuple[str, ...]
    skipped: tuple[SkippedFile, ...]
    total_bytes: int  # declared (archive) or on-disk (folder) size of every file listed, images or not


@dataclass(frozen=True)
class SourceImage:
    """One image's bytes, or the error that image alone gets (too large, unreadable); never both."""

    file_name: str
    data: bytes | None = None
    error: Sam3Error | None = None


def safe_member_name(raw: str) -> str:
    """A member's name as a relative POSIX path without `.` parts; InvalidArchive for `..`, absolute or NUL names."""
    name = raw.replace("\\", "/")  # zips made on Windows may use backslashes
    if "\x00" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InvalidArchive(f"archive member {raw!r} has an absolute path; an archive of images must name its "
                             "members relative to its top (e.g. 'photos/cat.jpg')", field="archive")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidArchive(f"archive member {raw!r} names a parent folder ('..'); an archive of images must keep "
                             "its members below its top", field="archive")
    return "/".join(parts)


def clean_file_name(raw: str, default: str = "image") -> str:
    """A client-given name (an upload's filename, a URL's path) as a safe relative file_name, never refused:
    backslashes become `/`, empty, `.` and `..` parts, drive letters and control characters are dropped."""
    text = "".join(char for char in raw.replace("\\", "/") if char.isprintable())
    parts = [part for part in text.split("/") if part not in ("", ".", "..")]
    if parts and len(parts[0]) == 2 and parts[0][1] == ":":
        parts = parts[1:]
    return "/".join(parts) or default


def skip_reason(file_name: str) -> str | None:
    """Why a file is not an image of the batch (None: it is one)."""
    path = PurePosixPath(file_name)
    if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
        return "hidden file or macOS metadata"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file ({path.suffix.lower() or 'no suffix'}); accepted: " + \
            ", ".join(sorted(IMAGE_SUFFIXES))
    return None


class Names:
    """Running totals of a listing: unique names, the image count and the bytes, each against its limit."""

    def __init__(self, limits: BatchLimits):
        self.limits = limits
        self.seen: set[str] = set()
        self.images = 0
        self.total_bytes = 0

    def add_file(self, size: int) -> None:
        self.total_bytes += size
        if self.total_bytes > self.limits.max_total_bytes:
            raise too_many_bytes(self.limits.max_total_bytes)

    def add_image(self, file_name: str) -> None:
        self.seen.add(file_name)
        self.images += 1
        if self.images > self.limits.max_images:
            raise BatchTooLarge(f"the batch has more than {self.limits.max_images} images (SAM3_BATCH_MAX_IMAGES); "
                                "split it into several jobs")


def check_member_count(count: int, limits: BatchLimits) -> None:
    if count > limits.max_members:
        raise BatchTooLarge(f"the archive has {count} entries, over the limit of {limits.max_members} "
                            "(SAM3_BATCH_MAX_ARCHIVE_MEMBERS); split it into several jobs", field="archive")


def refuse_member_kind(name: str, kind: str | None) -> None:
    """InvalidArchive when `kind` names something other than a file or folder (a link, a device, ...)."""
    if kind is not None:
        raise InvalidArchive(f"archive member {name!r} is {kind}; only regular files and folders are accepted "
                             "(archive the files themselves, e.g. zip without --symlinks)", field="archive")


def too_many_bytes(cap: int) -> BatchTooLarge:
    return BatchTooLarge(f"the archive expands to more than {cap} bytes (SAM3_BATCH_MAX_ARCHIVE_BYTES); split it "
                         "into several jobs", field="archive")


def classify_name(raw: str, *, is_dir: bool, names: Names, size: int) -> str | SkippedFile | None:
    """An archive member -> its image file_name, a SkippedFile, or None for a folder; raises on a hostile name."""
    file_name = safe_member_name(raw)
    if is_dir or not file_name:
        return None
    names.add_file(size)
    reason = skip_reason(file_name)
    if reason is None and file_name in names.seen:
        reason = "a second member with the same name (the first one is used)"
    if reason is not None:
        return SkippedFile(file_name, reason)
    names.add_image(file_name)
    return file_name


def listing_from(verdicts: Iterable[tuple[str | SkippedFile, int]]) -> ImageListing:
    """Collect (file_name or SkippedFile, size) pairs into an ImageListing."""
    images, skipped, total = [], [], 0
    for verdict, size in verdicts:
        total += size
        (skipped if isinstance(verdict, SkippedFile) else images).append(verdict)
    return ImageListing(tuple(images), tuple(skipped), total)
