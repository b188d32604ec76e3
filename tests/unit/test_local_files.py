"""read_file_under_root: a client-named path is read only from below the operator's root, never elsewhere."""

from __future__ import annotations

import os

import pytest

from sam3_api.errors import ImageTooLarge, NotFound, PathNotAllowed
from sam3_api.media.local_files import read_file_under_root


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "images"
    (base / "photos").mkdir(parents=True)
    (base / "photos" / "cat.jpg").write_bytes(b"cat bytes")
    (tmp_path / "secret.txt").write_bytes(b"outside the root")
    return base


def test_a_relative_name_inside_the_root_is_read(root):
    assert read_file_under_root(root, "photos/cat.jpg", max_bytes=1000) == b"cat bytes"


def test_an_absolute_path_inside_the_root_is_read(root):
    assert read_file_under_root(root, str(root / "photos" / "cat.jpg"), max_bytes=1000) == b"cat bytes"


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret.txt", "photos/../../secret.txt", "photos/../cat.jpg"])
def test_paths_leaving_the_root_are_refused_with_403(root, name):
    with pytest.raises(PathNotAllowed) as refused:
        read_file_under_root(root, name, max_bytes=1000)
    assert refused.value.status_code == 403 and "SAM3_IMAGE_ROOT" in refused.value.message


def test_a_symlink_pointing_out_of_the_root_is_refused(root):
    (root / "escape.jpg").symlink_to(root.parent / "secret.txt")
    (root / "etc").symlink_to("/etc")
    for name in ("escape.jpg", "etc/passwd"):
        with pytest.raises(PathNotAllowed):
            read_file_under_root(root, name, max_bytes=1000)


def test_a_symlink_within_the_root_is_followed(root):
    (root / "latest.jpg").symlink_to(root / "photos" / "cat.jpg")
    assert read_file_under_root(root, "latest.jpg", max_bytes=1000) == b"cat bytes"


@pytest.mark.parametrize("unset", [None, "", "  "])
def test_without_a_root_every_path_is_refused(unset):
    with pytest.raises(PathNotAllowed) as refused:
        read_file_under_root(unset, "/etc/passwd", max_bytes=1000)
    assert "SAM3_IMAGE_ROOT" in refused.value.message


def test_a_root_that_does_not_exist_refuses_and_says_so(tmp_path):
    with pytest.raises(PathNotAllowed, match="does not exist"):
        read_file_under_root(tmp_path / "missing", "cat.jpg", max_bytes=1000)


def test_a_missing_file_or_a_directory_is_404(root):
    for name in ("photos/dog.jpg", "photos"):
        with pytest.raises(NotFound):
            read_file_under_root(root, name, max_bytes=1000)


def test_a_file_over_the_byte_cap_is_413(root):
    with pytest.raises(ImageTooLarge):
        read_file_under_root(root, "photos/cat.jpg", max_bytes=4)


@pytest.mark.timeout(10)
def test_a_fifo_under_the_root_is_refused_without_hanging(root):
    os.mkfifo(root / "pipe.jpg")  # opening a FIFO for reading would block forever without O_NONBLOCK
    with pytest.raises(NotFound):
        read_file_under_root(root, "pipe.jpg", max_bytes=1000)


def test_nul_characters_are_refused(root):
    with pytest.raises(PathNotAllowed):
        read_file_under_root(root, "photos/cat.jpg\x00.png", max_bytes=1000)
