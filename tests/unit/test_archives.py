"""Archives of images are read in memory, member by member, and hostile ones are refused before they expand."""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from sam3_api.errors import BatchTooLarge, ImageTooLarge, InvalidArchive, InvalidImage
from sam3_api.media import archives
from sam3_api.media.archives import iter_archive_images, list_archive
from sam3_api.media.batch_sources import BatchLimits, clean_file_name

LIMITS = BatchLimits(max_images=100, max_members=1000, max_total_bytes=10 * 1024**2, max_image_bytes=1024**2)
BOMB_BYTES = 20 * 1024**2  # zeros: deflate makes ~20 KB of them, twice the 10 MiB cap once expanded


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 12, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


IMAGES = {"a.png": png(1), "photos/b.png": png(2), "photos/deeper/c.jpg": png(3)}


def make_zip(members: dict[str, bytes], **kwargs) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, **kwargs) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    out.seek(0)
    return out


def make_tar(members: dict[str, bytes], mode: str = "w:gz", extra=()) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    out.seek(0)
    return out


def read_all(source, limits=LIMITS, **kwargs) -> dict:
    return {image.file_name: image.data if image.error is None else image.error
            for image in iter_archive_images(source, limits, **kwargs)}


@pytest.mark.parametrize("maker", [make_zip, lambda m: make_tar(m, "w"), lambda m: make_tar(m, "w:gz"),
                                   lambda m: make_tar(m, "w:bz2"), lambda m: make_tar(m, "w:xz")],
                         ids=["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_images_are_listed_and_read_with_relative_names_and_other_files_skipped(maker):
    members = {**IMAGES, "doc.pdf": b"%PDF-1.4 not an image", "__MACOSX/._a.png": b"apple double"}
    listing = list_archive(maker(members), LIMITS)
    assert listing.file_names == tuple(IMAGES)
    assert {skip.file_name: skip.reason.split(" (")[0] for skip in listing.skipped} == {
        "doc.pdf": "not an image file", "__MACOSX/._a.png": "hidden file or macOS metadata"}
    assert listing.total_bytes == sum(len(data) for data in members.values())
    assert read_all(maker(members)) == IMAGES


def test_a_zip_from_a_path_on_disk_is_read_and_nothing_is_written(tmp_path, monkeypatch):
    path = tmp_path / "batch.zip"
    path.write_bytes(make_zip(IMAGES).getvalue())
    monkeypatch.chdir(tmp_path)
    for owner in (zipfile.ZipFile, tarfile.TarFile):
        for method in ("extract", "extractall"):
            monkeypatch.setattr(owner, method, lambda *a, **k: pytest.fail("an archive was extracted"))
    assert list_archive(path, LIMITS).file_names == tuple(IMAGES)
    assert read_all(path) == IMAGES
    assert sorted(os.listdir(tmp_path)) == ["batch.zip"]


def test_names_in_skip_are_not_read_again():
    assert list(read_all(make_tar(IMAGES), skip={"a.png", "photos/b.png"})) == ["photos/deeper/c.jpg"]
    assert list(read_all(make_zip(IMAGES), skip={"photos/deeper/c.jpg"})) == ["a.png", "photos/b.png"]


@pytest.mark.parametrize("name", ["../escape.png", "photos/../../escape.png", "..\\escape.png"])
@pytest.mark.parametrize("maker", [make_zip, make_tar], ids=["zip", "tar"])
def test_a_member_leaving_the_top_folder_is_refused(maker, name):
    with pytest.raises(InvalidArchive, match="parent folder") as refused:
        list_archive(maker({"a.png": png(1), name: png(2)}), LIMITS)
    assert refused.value.status_code == 400 and repr(name) in refused.value.message


@pytest.mark.parametrize("name", ["/etc/passwd.png", "C:/windows/x.png", "\\\\server\\x.png"])
@pytest.mark.parametrize("maker", [make_zip, make_tar], ids=["zip", "tar"])
def test_a_member_with_an_absolute_path_is_refused(maker, name):
    with pytest.raises(InvalidArchive, match="absolute path"):
        list(iter_archive_images(maker({name: png(1)}), LIMITS))


def test_a_zip_symlink_is_refused():
    out = make_zip(IMAGES)
    with zipfile.ZipFile(out, "a") as archive:
        link = zipfile.ZipInfo("photos/link.png")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    out.seek(0)
    with pytest.raises(InvalidArchive, match="symbolic link"):
        list_archive(out, LIMITS)


@pytest.mark.parametrize("kind, words", [(tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link"),
                                         (tarfile.CHRTYPE, "device"), (tarfile.FIFOTYPE, "FIFO")])
def test_tar_links_and_devices_are_refused(kind, words):
    special = tarfile.TarInfo("photos/special.png")
    special.type, special.linkname = kind, "/etc/passwd"
    with pytest.raises(InvalidArchive, match=words):
        list_archive(make_tar(IMAGES, extra=[special]), LIMITS)


class ReadLog(io.BytesIO):
    """A BytesIO that records the (offset, length) of every read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.reads: list[tuple[int, int]] = []

    def read(self, size=-1):
        start = self.tell()
        data = super().read(size)
        self.reads.append((start, len(data)))
        return data


def test_a_zip_bomb_is_refused_on_its_declared_size_before_any_member_is_read():
    bomb = make_zip({"a.png": png(1), "bomb.png": bytes(BOMB_BYTES)}).getvalue()
    central_directory = bomb.rindex(b"PK\x01\x02", 0, bomb.rindex(b"PK\x01\x02"))  # the first entry's
    for reader in (lambda s: list_archive(s, LIMITS), lambda s: list(iter_archive_images(s, LIMITS))):
        source = ReadLog(bomb)
        with pytest.raises(BatchTooLarge) as refused:
            reader(source)
        assert refused.value.status_code == 413 and "SAM3_BATCH_MAX_ARCHIVE_BYTES" in refused.value.message
        assert source.reads and all(start >= central_directory or length <= 4 for start, length in source.reads)


def test_a_zip_member_whose_declared_size_lies_yields_no_more_than_it_declared():
    bomb = bytearray(make_zip({"a.png": png(1), "bomb.png": bytes(BOMB_BYTES)}).getvalue())
    entry = bomb.rindex(b"PK\x01\x02")
    struct.pack_into("<L", bomb, entry + 24, 1000)  # the central directory's uncompressed size: 1000 bytes
    assert list_archive(io.BytesIO(bomb), LIMITS).total_bytes == len(png(1)) + 1000
    source = ReadLog(bytes(bomb))
    images = read_all(source)
    assert images["a.png"] == png(1)
    assert isinstance(images["bomb.png"], InvalidImage) and "corrupt" in images["bomb.png"].message
    compressed = int.from_bytes(bomb[entry + 20:entry + 24], "little")
    assert sum(length for _, length in source.reads) < len(bomb) - compressed // 2  # most of it never read


def test_a_tar_gz_bomb_is_refused_at_the_header_before_its_data_is_inflated():
    bomb = make_tar({"a.png": png(1), "bomb.png": bytes(BOMB_BYTES)}).getvalue()
    source = ReadLog(bomb)
    with pytest.raises(BatchTooLarge, match="SAM3_BATCH_MAX_ARCHIVE_BYTES"):
        list_archive(source, LIMITS)
    assert sum(length for _, length in source.reads) < len(bomb) // 2


def test_a_tar_with_an_oversized_metadata_record_is_refused_before_it_is_read_whole():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.png")
        info.pax_headers = {"comment": "x" * (3 * 1024**2)}
        archive.addfile(info, io.BytesIO(b""))
    out.seek(0)
    with pytest.raises(InvalidArchive, match="metadata"):
        list_archive(out, LIMITS)


def many_member_zip(count: int) -> bytes:
    """A valid stored zip of `count` empty members, assembled directly (zipfile takes seconds for 100,000)."""
    local, central = [], []
    offset = 0
    for index in range(count):
        name = b"%06d.png" % index
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0,
                                   0, 0, offset) + name)
        local.append(header)
        offset += len(header)
    directory = b"".join(central)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory), offset, 0)
    zip64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(directory), 1)
    return b"".join(local) + directory + zip64 + locator + end


def test_a_zip_of_100000_tiny_members_is_refused_by_count_before_its_directory_is_parsed(monkeypatch):
    data = many_member_zip(100_000)
    assert len(zipfile.ZipFile(io.BytesIO(many_member_zip(3))).infolist()) == 3  # the builder makes real zips
    monkeypatch.setattr(archives.zipfile, "ZipFile", lambda *a, **k: pytest.fail("the central directory was parsed"))
    with pytest.raises(BatchTooLarge, match="100000 entries.*SAM3_BATCH_MAX_ARCHIVE_MEMBERS"):
        list_archive(io.BytesIO(data), LIMITS)


def test_a_tar_with_too_many_members_is_refused_by_count():
    limits = BatchLimits(max_images=100, max_members=5, max_total_bytes=LIMITS.max_total_bytes, max_image_bytes=1024)
    with pytest.raises(BatchTooLarge, match="6 entries"):
        list_archive(make_tar({f"{index}.txt": b"" for index in range(6)}), limits)


@pytest.mark.parametrize("maker", [make_zip, make_tar], ids=["zip", "tar"])
def test_more_images_than_the_limit_are_refused(maker):
    limits = BatchLimits(max_images=2, max_members=100, max_total_bytes=LIMITS.max_total_bytes, max_image_bytes=1024)
    with pytest.raises(BatchTooLarge, match="more than 2 images.*SAM3_BATCH_MAX_IMAGES"):
        list_archive(maker(IMAGES), limits)


@pytest.mark.parametrize("maker", [make_zip, make_tar], ids=["zip", "tar"])
def test_one_image_over_the_byte_limit_fails_alone(maker):
    limits = BatchLimits(max_images=100, max_members=100, max_total_bytes=LIMITS.max_total_bytes,
                         max_image_bytes=1000)
    images = read_all(maker({"small.png": b"x" * 10, "large.png": b"y" * 1001, "after.png": b"z"}), limits)
    assert images["small.png"] == b"x" * 10 and images["after.png"] == b"z"
    assert isinstance(images["large.png"], ImageTooLarge) and "SAM3_MAX_UPLOAD_BYTES" in images["large.png"].message


@pytest.mark.parametrize("maker", [make_zip, make_tar], ids=["zip", "tar"])
def test_a_second_member_with_the_same_name_is_skipped_and_the_first_is_read(maker):
    archive = maker({"a.png": b"first", "./a.png": b"second"})
    listing = list_archive(archive, LIMITS)
    assert listing.file_names == ("a.png",) and listing.skipped[0].file_name == "a.png"
    archive.seek(0)
    assert read_all(archive) == {"a.png": b"first"}


@pytest.mark.parametrize("data", [b"", png(1), b"PK\x03\x04 truncated", b"\x1f\x8b\x08 broken gzip"])
def test_a_file_that_is_no_archive_is_refused_with_400(data):
    with pytest.raises(InvalidArchive, match="not a readable") as refused:
        list_archive(io.BytesIO(data), LIMITS)
    assert refused.value.status_code == 400


def test_a_zip_with_a_comment_after_its_end_record_is_read():
    out = make_zip(IMAGES)
    with zipfile.ZipFile(out, "a") as archive:
        archive.comment = b"made by a scanner " * 100
    out.seek(0)
    assert read_all(out) == IMAGES


def test_reading_a_member_stops_past_its_declared_size_and_past_the_archive_cap():
    # zipfile itself stops at the declared size; this counting is the second line of defence, tested alone
    assert archives._read_counted(io.BytesIO(b"x" * 10), 10, archives._Total(100)) == b"x" * 10
    assert archives._read_counted(io.BytesIO(b"x" * 10), 5, archives._Total(100)) is None
    with pytest.raises(BatchTooLarge):
        archives._read_counted(io.BytesIO(b"x" * 10), 10, archives._Total(9))


@pytest.mark.parametrize("raw, clean", [("../../a.jpg", "a.jpg"), ("/etc/x.png", "etc/x.png"),
                                        ("C:\\d\\e.jpg", "d/e.jpg"), ("a/./b\x00\n.jpg", "a/b.jpg"), ("..", "image"),
                                        ("", "image")])
def test_a_client_given_file_name_is_cleaned_into_a_relative_path(raw, clean):
    assert clean_file_name(raw) == clean
