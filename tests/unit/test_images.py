"""media/images.py: formats, orientation, modes, limits and base64 handling."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from tests.conftest import png_header_only
from sam3_api.errors import ImageTooLarge, InvalidImage
from sam3_api.media.images import decode_base64_image, decode_image, encode_png

LIMITS = {"max_bytes": 10 * 1024**2, "max_pixels": 10_000_000}


def _gradient(width: int, height: int) -> np.ndarray:
    """An RGB image whose pixels tell rows and columns apart (catches transposed output)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                     np.full((height, width), 128, np.float32)], axis=2).astype(np.uint8)


def _encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
@pytest.mark.parametrize("size", [(640, 360), (360, 640), (64, 64)])
def test_each_format_decodes_to_rgb_of_the_right_shape(fmt, size):
    width, height = size
    pixels = _gradient(width, height)
    data = _encode(Image.fromarray(pixels), fmt)
    decoded = decode_image(data, **LIMITS)
    assert decoded.shape == (height, width, 3)
    assert decoded.dtype == np.uint8 and decoded.flags.c_contiguous
    if fmt in ("PNG", "BMP", "TIFF"):  # lossless formats keep the exact pixels
        np.testing.assert_array_equal(decoded, pixels)
    else:  # lossy / palette: close on average, and the gradient runs the right way
        assert np.abs(decoded.astype(int) - pixels).mean() < 12
        assert decoded[0, -1, 0] > decoded[0, 0, 0] + 150


def test_gif_decodes_only_its_first_frame():
    first = Image.new("RGB", (32, 16), (255, 0, 0))
    second = Image.new("RGB", (32, 16), (0, 0, 255))
    data = _encode(first, "GIF", save_all=True, append_images=[second])
    decoded = decode_image(data, **LIMITS)
    assert tuple(decoded[8, 16]) == (255, 0, 0)


def test_exif_orientation_6_is_applied():
    # A 60x40 landscape JPEG tagged "rotate 90 CW to display" must come out 40 wide, 60 tall.
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :10] = 255  # white stripe on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.fromarray(pixels), "JPEG", exif=exif.tobytes(), quality=95)
    decoded = decode_image(data, **LIMITS)
    assert decoded.shape == (60, 40, 3)
    # Rotating 90 degrees clockwise moves the left edge to the top.
    assert decoded[:5].mean() > 200 and decoded[-5:].mean() < 50


def test_16_bit_grayscale_png_is_scaled_not_clipped():
    values = np.array([[0, 4096, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    data = _encode(Image.fromarray(values), "PNG")
    decoded = decode_image(data, **LIMITS)
    np.testing.assert_array_equal(decoded[0, :, 0], [0, 16, 128, 255])
    np.testing.assert_array_equal(decoded[..., 0], decoded[..., 2])


def test_rgba_drops_alpha_and_keeps_colour():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[..., 3] = 0  # fully transparent
    decoded = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), **LIMITS)
    assert decoded.shape == (8, 8, 3)
    assert tuple(decoded[0, 0]) == (10, 200, 30)


def test_grayscale_becomes_three_equal_channels():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    decoded = decode_image(_encode(Image.fromarray(gray, "L"), "PNG"), **LIMITS)
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], gray)


def test_palette_image_is_expanded_to_its_colours():
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 12, 34, 56] + [0] * 762)
    decoded = decode_image(_encode(im, "PNG"), **LIMITS)
    assert tuple(decoded[3, 3]) == (12, 34, 56)


def test_cmyk_jpeg_becomes_rgb():
    im = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    decoded = decode_image(_encode(im, "JPEG", quality=95), **LIMITS)
    assert decoded.shape == (16, 16, 3)
    r, g, b = (int(v) for v in decoded[8, 8])
    assert r > 200 and g < 60 and b < 60


def test_truncated_jpeg_is_rejected():
    data = _encode(Image.fromarray(_gradient(200, 100)), "JPEG")
    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_pdf_bytes_are_rejected_naming_accepted_formats():
    pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    with pytest.raises(InvalidImage) as info:
        decode_image(pdf, **LIMITS)
    assert "JPEG" in info.value.message and "PNG" in info.value.message


def test_pdf_renamed_jpg_is_rejected():
    # Pillow can write PDFs; the content, not a filename, decides.
    pdf = _encode(Image.new("RGB", (10, 10)), "PDF")
    with pytest.raises(InvalidImage):
        decode_image(pdf, **LIMITS)


@pytest.mark.parametrize("data", [b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"hello world", b"\x00" * 64])
def test_non_image_bytes_are_rejected(data):
    with pytest.raises(InvalidImage):
        decode_image(data, **LIMITS)


def test_empty_bytes_are_rejected():
    with pytest.raises(InvalidImage):
        decode_image(b"", **LIMITS)


def test_png_header_claiming_30000_squared_is_rejected_before_decoding(monkeypatch):
    # Any attempt to decode pixels would fail loudly: the check must come from the header alone.
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
    with pytest.raises(ImageTooLarge):
        decode_image(png_header_only(30000, 30000), **LIMITS)


def test_pixel_limit_below_pillows_own_cap_names_the_setting():
    # 4000x4000 = 16 M pixels: under Pillow's bomb threshold, over our configured 10 M.
    with pytest.raises(ImageTooLarge) as info:
        decode_image(png_header_only(4000, 4000), **LIMITS)
    assert "SAM3_MAX_IMAGE_PIXELS" in info.value.message and "4000x4000" in info.value.message
    assert info.value.status_code == 413


def test_pillow_bomb_error_above_a_generous_limit_is_still_image_too_large():
    # With our limit set above Pillow's hard cap, Pillow's DecompressionBombError must not become a 500.
    with pytest.raises(ImageTooLarge):
        decode_image(png_header_only(30000, 30000), max_bytes=1024**2, max_pixels=10**12)


def test_bytes_over_the_cap_are_rejected_naming_the_setting():
    data = _encode(Image.fromarray(_gradient(64, 64)), "PNG")
    with pytest.raises(ImageTooLarge) as info:
        decode_image(data, max_bytes=len(data) - 1, max_pixels=10**7)
    assert str(len(data)) in info.value.message and "SAM3_MAX_UPLOAD_BYTES" in info.value.message


def test_base64_with_data_url_prefix_and_newlines_decodes():
    pixels = _gradient(40, 30)
    encoded = base64.b64encode(encode_png(pixels)).decode()
    wrapped = "\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    decoded = decode_base64_image("data:image/png;base64," + wrapped, **LIMITS)
    np.testing.assert_array_equal(decoded, pixels)


def test_plain_base64_decodes():
    pixels = _gradient(20, 10)
    decoded = decode_base64_image(base64.b64encode(encode_png(pixels)).decode(), **LIMITS)
    np.testing.assert_array_equal(decoded, pixels)


@pytest.mark.parametrize("text", ["not base64 at all!!", "data:image/png;base64,@@@@", "QUJD=QUJD"])
def test_invalid_base64_is_rejected_on_the_base64_field(text):
    with pytest.raises(InvalidImage) as info:
        decode_base64_image(text, **LIMITS)
    assert info.value.field == "image_base64"


def test_huge_base64_string_is_rejected_quickly_without_decoding(monkeypatch):
    monkeypatch.setattr(base64, "b64decode", lambda *a, **k: pytest.fail("decoded anyway"))
    huge = "A" * (200 * 1024**2)
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge) as info:
        decode_base64_image(huge, max_bytes=1024**2, max_pixels=10**7)
    assert time.perf_counter() - started < 0.5
    assert info.value.field == "image_base64"


def test_base64_just_over_the_byte_cap_is_rejected():
    text = base64.b64encode(b"\x00" * 3000).decode()
    with pytest.raises(ImageTooLarge):
        decode_base64_image(text, max_bytes=2999, max_pixels=10**7)
