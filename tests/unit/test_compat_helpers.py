"""The shared pieces the drop-in adapters rely on: foreign mask forms, instance selection, key matching."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from sam3_api.api.auth import header_key, is_open_path, match_key, query_key
from sam3_api.compat.common import ScopedImages
from sam3_api.config import Settings
from sam3_api.engine.selection import centres_inside, keep_centred_in, suppress_across
from sam3_api.engine.types import PreparedImage, Segmentation
from sam3_api.media.masks import mask_nms, mask_to_outer_contours, mask_to_rgba_png_base64


def ring(size: int = 20) -> np.ndarray:
    """A square with a square hole, plus a separate 2x2 blob."""
    mask = np.zeros((size, size + 10), dtype=bool)
    mask[2:12, 2:12] = True
    mask[5:9, 5:9] = False
    mask[15:17, 20:22] = True
    return mask


def test_outer_contours_list_each_region_once_without_its_holes():
    contours = mask_to_outer_contours(ring())
    assert len(contours) == 2  # the ring's outside and the blob; the hole is not a contour
    assert all(isinstance(v, int) for contour in contours for point in contour for v in point)
    xs = sorted({x for contour in contours for x, _ in contour})
    assert xs[0] == 2 and xs[-1] == 21


def test_outer_contours_of_an_empty_mask_are_empty():
    assert mask_to_outer_contours(np.zeros((5, 5), dtype=bool)) == []


def test_rgba_png_is_the_colour_on_the_mask_and_transparent_elsewhere():
    mask = ring()
    image = Image.open(io.BytesIO(base64.b64decode(mask_to_rgba_png_base64(mask, (0, 255, 255)))))
    assert image.mode == "RGBA" and image.size == (mask.shape[1], mask.shape[0])
    pixels = np.asarray(image)
    assert (pixels[..., 3] == np.where(mask, 255, 0)).all()
    assert (pixels[mask][:, :3] == (0, 255, 255)).all()


def test_mask_nms_drops_a_worse_overlapping_mask_and_keeps_a_separate_one():
    a = np.zeros((10, 10), dtype=bool)
    a[:5, :5] = True
    b = a.copy()
    b[:5, 5] = True  # IoU(a, b) = 25 / 30
    c = np.zeros((10, 10), dtype=bool)
    c[6:, 6:] = True
    keep = mask_nms(np.stack([a, b, c]), np.array([0.5, 0.9, 0.1]), 0.5)
    assert keep.tolist() == [False, True, True]
    assert mask_nms(np.stack([a, b, c]), np.array([0.5, 0.9, 0.1]), 0.9).tolist() == [True, True, True]


def _segmentation(boxes, scores, size=20) -> Segmentation:
    masks = np.zeros((len(boxes), size, size), dtype=bool)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes):
        mask[int(y1):int(y2), int(x1):int(x2)] = True
    return Segmentation(masks=masks, boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                        scores=np.asarray(scores, dtype=np.float32), prompt="thing")


def test_centres_inside_counts_the_edges_and_any_of_several_regions():
    boxes = np.array([[0, 0, 4, 4], [10, 10, 20, 20], [0, 10, 2, 12]])
    assert centres_inside(boxes, [[2, 2, 3, 3]]).tolist() == [True, False, False]
    assert centres_inside(boxes, [[0, 0, 3, 3], [14, 14, 16, 16]]).tolist() == [True, True, False]


def test_keep_centred_in_keeps_masks_boxes_and_scores_together():
    found = _segmentation([[0, 0, 4, 4], [10, 10, 20, 20]], [0.9, 0.8])
    kept = keep_centred_in(found, [[12, 12, 18, 18]])
    assert kept.num_masks == 1 and kept.scores.tolist() == pytest.approx([0.8])
    assert kept.masks[0].sum() == 100 and kept.boxes.tolist() == [[10, 10, 20, 20]]


def test_suppress_across_removes_duplicates_between_prompts_and_keeps_each_prompts_own():
    first = _segmentation([[0, 0, 10, 10], [12, 12, 16, 16]], [0.9, 0.4])
    second = _segmentation([[0, 0, 10, 9]], [0.8])  # IoU 0.9 with first[0], lower score
    after = suppress_across([first, second], 0.5)
    assert [r.num_masks for r in after] == [2, 0]
    assert [r.num_masks for r in suppress_across([first, second], 0.95)] == [2, 1]


def test_match_key_finds_the_configured_key_and_nothing_else():
    keys = [b"alpha", b"beta"]
    assert match_key("beta", keys) == "beta"
    assert match_key("bet", keys) is None and match_key("", keys) is None and match_key(None, keys) is None


@pytest.mark.parametrize("headers, expected", [
    ({b"x-api-key": b" k1 "}, "k1"),
    ({b"authorization": b"Bearer k2"}, "k2"),
    ({b"authorization": b"bearer   k3"}, "k3"),
    ({b"authorization": b"k4"}, "k4"),
    ({}, None),
])
def test_header_key_reads_x_api_key_bearer_and_the_bare_authorization(headers, expected):
    assert header_key(headers) == expected


def test_query_key_reads_api_key_from_the_query_string():
    assert query_key({"query_string": b"a=1&api_key=k%2B1"}) == "k+1"
    assert query_key({"query_string": b""}) is None


@pytest.mark.parametrize("path, open_", [("/health", True), ("/healthz", True), ("/health/ready", True),
                                         ("/docs", True), ("/openapi.json", True), ("/app/app.js", True),
                                         ("/docs/assets/swagger-ui.css", True), ("/docsx", False),
                                         ("/segment/text", False), ("/metrics", False), ("/sam3/embed_image", False),
                                         ("/ws/realtime", False), ("/appx", False)])
def test_only_probes_docs_and_the_page_are_open(path, open_):
    assert is_open_path(path) is open_


def test_api_keys_setting_reads_a_comma_separated_list_and_never_prints_them(monkeypatch):
    monkeypatch.setenv("SAM3_API_KEYS", " k1, k2 ,,")
    settings = Settings()
    assert settings.api_keys == ["k1", "k2"]
    assert "k1" not in repr(settings)
    assert Settings(_env_file=None, api_keys="").api_keys == []


def test_scoped_images_are_visible_only_to_the_key_that_named_them():
    images = ScopedImages(max_entries=4, max_bytes=10_000)
    picture = PreparedImage.from_array(np.zeros((4, 4, 3), dtype=np.uint8))
    images.remember("key-a", "photo", picture)
    images.remember(None, "photo", picture)
    assert images.find("key-a", "photo") is picture
    assert images.find("key-b", "photo") is None
    assert images.find(None, "other") is None


def test_scoped_images_forget_the_oldest_beyond_their_bounds():
    images = ScopedImages(max_entries=2, max_bytes=10_000)
    pictures = [PreparedImage.from_array(np.full((4, 4, 3), i, dtype=np.uint8)) for i in range(3)]
    for index, picture in enumerate(pictures):
        images.remember(None, f"p{index}", picture)
    assert images.find(None, "p0") is None and images.find(None, "p2") is pictures[2]
    too_big = ScopedImages(max_entries=2, max_bytes=10)
    too_big.remember(None, "big", pictures[0])  # 48 bytes of pixels > 10: not kept at all
    assert len(too_big) == 0


def test_a_non_ascii_key_sent_as_utf8_matches_byte_for_byte():
    keys = ["schlüssel".encode()]
    assert match_key(header_key({b"x-api-key": "schlüssel".encode()}), keys) == "schlüssel"
    assert match_key(header_key({b"x-api-key": "schlüssel".encode("latin-1")}), keys) is None
