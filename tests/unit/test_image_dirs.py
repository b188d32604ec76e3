"""A batch's image_dir is searched recursively below SAM3_IMAGE_ROOT, and never leads out of it."""

from __future__ import annotations

import os

import pytest

from sam3_api.errors import BatchTooLarge, ImageTooLarge, NotFound, PathNotAllowed
from sam3_api.media.batch_sources import BatchLimits
from sam3_api.media.image_dirs import iter_dir_images, list_image_dir

LIMITS = BatchLimits(max_images=100, max_members=1000, max_total_bytes=10**9, max_image_bytes=1000)


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "root"
    files = {"set/a.jpg": b"a", "set/sub/b.PNG": b"bb", "set/sub/deeper/c.webp": b"ccc", "set/notes.pdf": b"%PDF",
             "set/.cache/d.jpg": b"hidden", "other/e.jpg": b"e"}
    for name, data in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(data)
    (tmp_path / "secret.jpg").write_bytes(b"outside the root")
    return base


def test_images_are_found_recursively_with_paths_relative_to_the_folder(root):
    listing = list_image_dir(root, "set", LIMITS)
    assert listing.file_names == ("a.jpg", "sub/b.PNG", "sub/deeper/c.webp")
    assert {skip.file_name: skip.reason.split(" (")[0] for skip in listing.skipped} == {
        "notes.pdf": "not an image file", ".cache": "a hidden folder"}
    assert {image.file_name: image.data for image in
            iter_dir_images(root, "set", listing.file_names, max_image_bytes=1000)} == {
        "a.jpg": b"a", "sub/b.PNG": b"bb", "sub/deeper/c.webp": b"ccc"}


def test_without_an_image_root_the_folder_is_refused_with_403(root):
    with pytest.raises(PathNotAllowed, match="SAM3_IMAGE_ROOT") as refused:
        list_image_dir(None, "set", LIMITS)
    assert refused.value.field == "image_dir" and refused.value.status_code == 403


@pytest.mark.parametrize("image_dir", ["..", "set/../..", "/etc", "/"])
def test_a_folder_outside_the_root_is_refused_with_403(root, image_dir):
    with pytest.raises(PathNotAllowed, match="image_dir"):
        list_image_dir(root, image_dir, LIMITS)


def test_a_missing_folder_or_a_file_is_404(root):
    for image_dir in ("missing", "set/a.jpg"):
        with pytest.raises(NotFound):
            list_image_dir(root, image_dir, LIMITS)


def test_links_out_of_the_root_are_skipped_and_links_inside_it_are_kept(root, tmp_path):
    (root / "set" / "escape.jpg").symlink_to(tmp_path / "secret.jpg")
    (root / "set" / "alias.jpg").symlink_to(root / "other" / "e.jpg")
    (root / "set" / "etc").symlink_to("/etc")
    (root / "set" / "again").symlink_to(root / "other")
    os.mkfifo(root / "set" / "pipe.jpg")  # reading it would block: it is never opened
    listing = list_image_dir(root, "set", LIMITS)
    assert "alias.jpg" in listing.file_names and "escape.jpg" not in listing.file_names
    assert not any(name.startswith(("etc/", "again/")) for name in listing.file_names)
    reasons = {skip.file_name: skip.reason for skip in listing.skipped}
    assert "outside SAM3_IMAGE_ROOT" in reasons["escape.jpg"]
    assert "not followed" in reasons["etc"] and "not followed" in reasons["again"]
    assert reasons["pipe.jpg"] == "not a regular file"


def test_a_file_swapped_for_a_link_out_of_the_root_after_listing_fails_alone(root, tmp_path):
    listing = list_image_dir(root, "set", LIMITS)
    (root / "set" / "a.jpg").unlink()
    (root / "set" / "a.jpg").symlink_to(tmp_path / "secret.jpg")
    (root / "set" / "sub" / "b.PNG").write_bytes(b"x" * 1001)
    images = {image.file_name: image for image in iter_dir_images(root, "set", listing.file_names,
                                                                  max_image_bytes=1000)}
    assert isinstance(images["a.jpg"].error, PathNotAllowed) and images["a.jpg"].data is None
    assert isinstance(images["sub/b.PNG"].error, ImageTooLarge)
    assert images["sub/deeper/c.webp"].data == b"ccc"


def test_too_many_images_or_entries_are_refused_with_413(root):
    with pytest.raises(BatchTooLarge, match="SAM3_BATCH_MAX_IMAGES"):
        list_image_dir(root, "set", BatchLimits(max_images=2, max_members=1000, max_total_bytes=10**9,
                                                max_image_bytes=1000))
    with pytest.raises(BatchTooLarge, match="SAM3_BATCH_MAX_ARCHIVE_MEMBERS") as refused:
        list_image_dir(root, ".", BatchLimits(max_images=100, max_members=4, max_total_bytes=10**9,
                                             max_image_bytes=1000))
    assert refused.value.status_code == 413
