"""media/masks.py: PNG / RLE / polygon encodings agree, holes survive, overlay draws where it should."""

from __future__ import annotations

import base64
import warnings

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from sam3_api.errors import InvalidPrompt
from sam3_api.media.masks import (
    mask_area,
    mask_to_box,
    mask_to_png_base64,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_mask,
    render_overlay,
    rle_to_mask,
)


def _ring_mask(height: int = 60, width: int = 90) -> np.ndarray:
    """A filled disc with a square hole, an island inside the hole, and a separate blob: non-square."""
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (35, 30), 25, 1, -1)
    mask[20:41, 25:46] = 0  # hole
    mask[28:33, 33:38] = 1  # island inside the hole
    cv2.ellipse(mask, (75, 45), (10, 6), 30, 0, 360, 1, -1)
    return mask.astype(bool)


def _decode_png_base64(text: str) -> np.ndarray:
    buffer = np.frombuffer(base64.b64decode(text), np.uint8)
    return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)


def _boundary_band(mask: np.ndarray) -> np.ndarray:
    """Pixels within one pixel of the mask's edge (where polygon rasterisation may differ)."""
    kernel = np.ones((3, 3), np.uint8)
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) - cv2.erode(m, kernel)).astype(bool)


def test_png_is_grayscale_0_and_255_with_the_same_pixels():
    mask = _ring_mask()
    png = _decode_png_base64(mask_to_png_base64(mask))
    assert png.shape == mask.shape and png.dtype == np.uint8
    assert set(np.unique(png)) == {0, 255}
    np.testing.assert_array_equal(png == 255, mask)


def test_rle_round_trips_exactly_and_pycocotools_reads_it():
    mask = _ring_mask()
    rle = mask_to_rle(mask)
    assert rle["size"] == [60, 90] and isinstance(rle["counts"], str)
    with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert decoded.shape == (60, 90)
    np.testing.assert_array_equal(decoded.astype(bool), mask)
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    assert int(coco_mask.area({"size": rle["size"], "counts": rle["counts"].encode()})) == mask_area(mask)


def test_uncompressed_rle_is_accepted():
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True  # column-major runs: 4 zeros, 1 one, 2 zeros, 1 one, 4 zeros
    np.testing.assert_array_equal(rle_to_mask({"size": [3, 4], "counts": [4, 1, 2, 1, 4]}), mask)


@pytest.mark.parametrize(
    "rle",
    [{"counts": "abc"}, {"size": [2, 2], "counts": [1, 1]}, {"size": "x", "counts": ""},
     {"size": [5, 5], "counts": ""}, {"size": [5, 5], "counts": "!!!!"}, {"size": [-1, -1], "counts": [1]}],
)
def test_malformed_rle_is_rejected(rle):
    # pycocotools alone would decode some of these into uninitialised memory instead of failing.
    with pytest.raises(InvalidPrompt):
        rle_to_mask(rle)


def test_rle_of_another_size_than_expected_is_rejected():
    rle = mask_to_rle(np.ones((4, 4), bool))
    with pytest.raises(InvalidPrompt):
        rle_to_mask(rle, expected_size=(4, 5))
    assert rle_to_mask(rle, expected_size=(4, 4)).all()


def test_png_rle_and_polygons_describe_the_same_pixels():
    mask = _ring_mask()
    from_png = _decode_png_base64(mask_to_png_base64(mask)) == 255
    from_rle = rle_to_mask(mask_to_rle(mask))
    from_polygons = polygons_to_mask(mask_to_polygons(mask), *mask.shape)
    np.testing.assert_array_equal(from_png, from_rle)
    mismatched = from_polygons != mask
    assert not (mismatched & ~_boundary_band(mask)).any(), "polygon differs away from the edge"
    assert mismatched.sum() <= 0.05 * mask.sum()


def test_polygons_keep_holes_and_islands():
    mask = _ring_mask()
    rings = mask_to_polygons(mask)
    # disc outer + its hole, island outer, separate blob outer
    assert len(rings) == 4
    assert all(len(ring) >= 3 and all(len(point) == 2 for point in ring) for ring in rings)
    filled = polygons_to_mask(rings, *mask.shape)
    assert not filled[23, 28], "hole was filled in"
    assert filled[30, 35], "island inside the hole was lost"
    assert filled[30, 12] and filled[45, 75]


def test_polygon_coordinates_are_x_then_y():
    mask = np.zeros((20, 50), bool)
    mask[2:6, 30:45] = True  # wide and near the top: x values must exceed the image height
    xs = [x for ring in mask_to_polygons(mask) for x, _ in ring]
    ys = [y for ring in mask_to_polygons(mask) for _, y in ring]
    assert min(xs) == 30 and max(xs) == 44 and min(ys) == 2 and max(ys) == 5


def test_single_pixel_speck_yields_no_degenerate_ring():
    mask = np.zeros((10, 10), bool)
    mask[5, 5] = True
    assert mask_to_polygons(mask) == []


def test_empty_mask_encodes_to_nothing():
    mask = np.zeros((7, 11), bool)
    assert mask_to_polygons(mask) == []
    assert mask_area(mask) == 0 and mask_to_box(mask) == [0, 0, 0, 0]
    assert not rle_to_mask(mask_to_rle(mask)).any()
    assert not _decode_png_base64(mask_to_png_base64(mask)).any()


def test_full_mask_round_trips():
    mask = np.ones((7, 11), bool)
    assert rle_to_mask(mask_to_rle(mask)).all()
    assert mask_area(mask) == 77 and mask_to_box(mask) == [0, 0, 11, 7]
    assert polygons_to_mask(mask_to_polygons(mask), 7, 11).all()


def test_box_uses_pixel_edges():
    mask = np.zeros((10, 20), bool)
    mask[3:6, 4:15] = True
    assert mask_to_box(mask) == [4, 3, 15, 6]


def _image(height: int = 120, width: int = 160) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_overlay_tints_inside_the_mask_and_leaves_the_rest_untouched():
    image = _image()
    mask = np.zeros(image.shape[:2], bool)
    mask[50:100, 60:140] = True
    png = render_overlay(image, [mask], [0.91], alpha=0.5)
    out = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert out.shape == image.shape
    inside = np.zeros_like(mask)
    inside[60:95, 70:135] = True  # away from outline
    far = np.zeros_like(mask)
    far[:, :40] = True  # left of the mask, far from outline and score label
    assert (out[inside] != image[inside]).any(axis=1).mean() > 0.95
    np.testing.assert_array_equal(out[far], image[far])
    assert not np.array_equal(out[30:50, 60:100], image[30:50, 60:100]), "no score label above the mask"


def test_overlay_gives_each_mask_its_own_colour():
    image = np.full((60, 100, 3), 128, np.uint8)
    masks = np.zeros((2, 60, 100), bool)
    masks[0, 20:50, 5:45] = True
    masks[1, 20:50, 55:95] = True
    out = cv2.imdecode(np.frombuffer(render_overlay(image, masks, [0.5, 0.7]), np.uint8), cv2.IMREAD_COLOR)
    assert not np.array_equal(out[40, 25], out[40, 75])


def test_overlay_with_no_masks_is_the_plain_image():
    image = _image()
    png = render_overlay(image, np.zeros((0, *image.shape[:2]), bool), [])
    out = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(out, image)


def test_overlay_rejects_a_mask_of_the_wrong_size():
    with pytest.raises(ValueError):
        render_overlay(_image(), [np.ones((10, 10), bool)], [0.5])
