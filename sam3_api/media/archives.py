"""Read a zip or tar (plain, gz, bz2, xz) archive of images: list it, then yield each image's bytes. Never extract.

Nothing is written anywhere: members are read into memory one at a time, so a member's name is only a label
(its `file_name`), never a path that is opened. Hostile archives are still refused, before anything expands:
- a member named with `..`, an absolute path (`/x`, `C:/x`) or a NUL, a symlink, a hard link, a device, a FIFO,
  a sparse or an encrypted member: InvalidArchive (400) naming the member;
- more entries than SAM3_BATCH_MAX_ARCHIVE_MEMBERS (a zip's count comes from its end record, before its
  central directory is parsed), more images than SAM3_BATCH_MAX_IMAGES, or declared sizes adding up to more
  than SAM3_BATCH_MAX_ARCHIVE_BYTES: BatchTooLarge (413).
Declared sizes can lie, so reading also counts the bytes it really gets: a member never yields more than its
declared size, and the archive as a whole never more than the cap (a tar stream is metered as it decompresses,
headers included). Non-image members (by suffix), hidden files and macOS metadata are skipped and listed.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Container, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sam3_api.errors import BatchTooLarge, ImageTooLarge, InvalidArchive, InvalidImage
from sam3_api.media.batch_sources import (
    BatchLimits, ImageListing, Names, SourceImage, check_member_count, classify_name, listing_from, refuse_member_kind,
    too_many_bytes,
)

_CHUNK = 1024 * 1024
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_EOCD = struct.Struct("<4s4H2LH")  # signature, disks, entries here, entries total, cd size, cd offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the zip64 end record, disks
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # ..., entries here, entries total, cd size, cd offset
_TAR_RECORD = tarfile.RECORDSIZE
_TAR_HEADER_ALLOWANCE = 1024 * 1024  # bytes a tar may use between members (headers, long names, pax records)
_TAR_MEMBER_OVERHEAD = 4096  # a header block, a pax record and padding, per member
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


def list_archive(source: Path | BinaryIO, limits: BatchLimits) -> ImageListing:
    """The images of a zip or tar, in archive order, and the members skipped; raises for a hostile archive."""
    with _opened(source) as handle:
        if _is_zip(handle):
            archive = _open_zip(handle, limits)
            return listing_from((verdict, info.file_size) for verdict, info in _walk_zip(archive, limits))
        with _tar_stream(handle, limits) as (tar, meter):
            return listing_from((name, member.size) for name, member in _walk_tar(tar, meter, limits))


def iter_archive_images(source: Path | BinaryIO, limits: BatchLimits, *,
                        skip: Container[str] = frozenset()) -> Iterator[SourceImage]:
    """Each image's bytes (or its own error: too large, corrupt), in archive order, except the names in `skip`.

    Raises InvalidArchive / BatchTooLarge for the archive as a whole, as list_archive does.
    """
    with _opened(source) as handle:
        if _is_zip(handle):
            archive, total = _open_zip(handle, limits), _Total(limits.max_total_bytes)
            for name, info in list(_walk_zip(archive, limits)):  # every member checked before any is read
                if isinstance(name, str) and name not in skip:
                    yield _read_zip_member(archive, info, name, limits, total)
            return
        with _tar_stream(handle, limits) as (tar, meter):
            for name, member in _walk_tar(tar, meter, limits):
                if isinstance(name, str) and name not in skip:
                    yield _read_tar_member(tar, member, name, meter, limits)


# --- zip ---------------------------------------------------------------------------------------------------

def _open_zip(handle: BinaryIO, limits: BatchLimits) -> zipfile.ZipFile:
    """zipfile over the handle, once the end record's entry count is within the limit (parsing is per entry)."""
    declared = _zip_entry_count(handle)
    if declared is not None:
        check_member_count(declared, limits)
    try:
        archive = zipfile.ZipFile(handle)
    except _CORRUPT as exc:
        raise InvalidArchive(f"not a readable zip archive: {exc}", field="archive") from None
    check_member_count(len(archive.infolist()), limits)
    return archive


def _walk_zip(archive: zipfile.ZipFile, limits: BatchLimits):
    """(file_name, info) per image and (SkippedFile, info) per skipped member, after every check."""
    names = Names(limits)
    for info in archive.infolist():
        _check_zip_member(info)
        verdict = classify_name(info.filename, is_dir=info.is_dir(), names=names, size=info.file_size)
        if verdict is not None:
            yield verdict, info


def _check_zip_member(info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # Unix: the high 16 bits hold st_mode
        refuse_member_kind(info.filename, _mode_kind(mode))
    if info.flag_bits & 0x1:
        raise InvalidArchive(f"archive member {info.filename!r} is encrypted; send an archive without a password",
                             field="archive")
    if info.compress_type not in _ZIP_METHODS:
        raise InvalidArchive(f"archive member {info.filename!r} uses zip compression method {info.compress_type}; "
                             "use deflate (the default of every zip tool), bzip2, lzma or none", field="archive")


def _zip_entry_count(handle: BinaryIO) -> int | None:
    """The entry count of the zip's end record (zip64 too), read before zipfile parses every entry."""
    size = handle.seek(0, os.SEEK_END)
    for tail_size in (_EOCD.size + _ZIP64_LOCATOR.size, _EOCD.size + _ZIP64_LOCATOR.size + 0xFFFF):  # no comment first
        handle.seek(max(0, size - tail_size))
        tail = handle.read()
        if tail.rfind(b"PK\x05\x06") >= 0:
            break
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return None  # zipfile will say what is wrong
    count = _EOCD.unpack_from(tail, at)[4]
    locator_at = at - _ZIP64_LOCATOR.size
    if count == 0xFFFF and locator_at >= 0 and tail[locator_at:locator_at + 4] == b"PK\x06\x07":
        handle.seek(_ZIP64_LOCATOR.unpack_from(tail, locator_at)[2])
        record = handle.read(_ZIP64_EOCD.size)
        if len(record) == _ZIP64_EOCD.size and record[:4] == b"PK\x06\x06":
            count = _ZIP64_EOCD.unpack(record)[7]
    return count


def _read_zip_member(archive, info, name, limits, total) -> SourceImage:
    """The member's bytes, or its own error: over the per-image cap, corrupt, longer than it declared."""
    size = info.file_size
    if size > limits.max_image_bytes:
        return _too_large(name, size, limits)
    try:
        with archive.open(info) as member:
            data = _read_counted(member, size, total)
    except BatchTooLarge:
        raise
    except _CORRUPT as exc:
        return SourceImage(name, error=InvalidImage(f"archive member {name!r} is corrupt ({exc})", field="archive"))
    if data is None:
        return SourceImage(name, error=InvalidImage(
            f"archive member {name!r} holds more bytes than its declared size {size}; the archive is corrupt",
            field="archive"))
    return SourceImage(name, data=data)


def _read_counted(member: BinaryIO, size: int, total: "_Total") -> bytes | None:
    """At most the declared size (None when there is more), every byte counted against the archive's total."""
    chunks, got = [], 0
    while chunk := member.read(min(_CHUNK, size + 1 - got)):
        got += len(chunk)
        total.add(len(chunk))
        if got > size:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _Total:
    """Bytes really read from an archive so far, against the cap on its uncompressed size."""

    def __init__(self, cap: int):
        self.cap, self.count = cap, 0

    def add(self, count: int) -> None:
        self.count += count
        if self.count > self.cap:
            raise too_many_bytes(self.cap)


# --- tar ---------------------------------------------------------------------------------------------------

@contextmanager
def _tar_stream(handle: BinaryIO, limits: BatchLimits):
    """tarfile over a metered, decompressed stream (sequential "r|" mode: nothing seeks, nothing is buffered)."""
    handle.seek(0)
    magic = handle.read(6)
    handle.seek(0)
    opener = {b"\x1f\x8b": gzip.GzipFile, b"BZh": bz2.BZ2File, b"\xfd7zXZ": lzma.LZMAFile}
    raw = next((open_(fileobj=handle) if open_ is gzip.GzipFile else open_(handle)
                for prefix, open_ in opener.items() if magic.startswith(prefix)), handle)
    meter = _Meter(raw, limits.max_total_bytes + limits.max_members * _TAR_MEMBER_OVERHEAD + _TAR_HEADER_ALLOWANCE,
                   limits.max_total_bytes)
    meter.allow(_TAR_HEADER_ALLOWANCE)  # tarfile.open reads the first header
    try:
        with tarfile.open(fileobj=meter, mode="r|") as tar:
            yield tar, meter
    except (BatchTooLarge, InvalidArchive):
        raise
    except _CORRUPT as exc:
        raise InvalidArchive(f"not a readable zip or tar archive (plain, .gz, .bz2 or .xz): {exc}",
                             field="archive") from None


def _walk_tar(tar: tarfile.TarFile, meter: "_Meter", limits: BatchLimits):
    """(file_name, member) per image and (SkippedFile, member) per skipped member, after every check."""
    names, count, previous_size = Names(limits), 0, 0
    while True:
        meter.allow(_TAR_HEADER_ALLOWANCE + previous_size)  # next() first skips what is left of the previous member
        member = tar.next()
        if member is None:
            return
        count += 1
        check_member_count(count, limits)
        refuse_member_kind(member.name, _tar_kind(member))
        verdict = classify_name(member.name, is_dir=member.isdir(), names=names, size=member.size)
        previous_size = member.size
        if verdict is not None:
            yield verdict, member


def _tar_kind(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.isdev():
        return "a device or FIFO"
    if member.issparse():
        return "a sparse file"
    return None if member.isreg() or member.isdir() else "not a regular file"


def _read_tar_member(tar, member, name, meter: "_Meter", limits: BatchLimits) -> SourceImage:
    if member.size > limits.max_image_bytes:
        return _too_large(name, member.size, limits)
    meter.allow(member.size + _TAR_RECORD)
    data = tar.extractfile(member).read()  # tarfile reads exactly the header's size; the meter caps the stream
    return SourceImage(name, data=data)


class _Meter:
    """A read-only stream that counts what it hands out: past `total_cap` BatchTooLarge, past the current
    allowance (one header, or one member's data) InvalidArchive, so no read ever materialises more."""

    def __init__(self, raw: BinaryIO, total_cap: int, content_cap: int):
        self.raw, self.total_cap, self.content_cap = raw, total_cap, content_cap
        self.count, self.limit = 0, 0

    def allow(self, size: int) -> None:
        self.limit = min(self.count + size + _TAR_RECORD, self.total_cap)

    def read(self, size: int = -1) -> bytes:
        room = self.limit + 1 - self.count
        if room <= 0:
            self._refuse()
        data = self.raw.read(room if size is None or size < 0 else min(size, room))
        self.count += len(data)
        if self.count > self.limit:
            self._refuse()
        return data

    def _refuse(self):
        if self.count >= self.total_cap:
            raise too_many_bytes(self.content_cap)
        raise InvalidArchive(f"the tar archive has a header or metadata record over {_TAR_HEADER_ALLOWANCE} bytes "
                             "(or a member longer than its header says); it is not a plain archive of images",
                             field="archive")


# --- shared ------------------------------------------------------------------------------------------------

@contextmanager
def _opened(source: Path | BinaryIO):
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            yield handle
    else:
        yield source


def _is_zip(handle: BinaryIO) -> bool:
    handle.seek(0)
    return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _mode_kind(mode: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        return "a device or FIFO"
    return "a socket" if stat.S_ISSOCK(mode) else None  # no type bits at all (zipfile's writestr): a file


def _too_large(name: str, size: int, limits: BatchLimits) -> SourceImage:
    return SourceImage(name, error=ImageTooLarge(
        f"archive member {name!r} is {size} bytes, over the limit of {limits.max_image_bytes} bytes "
        "(SAM3_MAX_UPLOAD_BYTES)", field="archive"))
