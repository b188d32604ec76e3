"""Untrusted bytes / base64 / data URLs -> RGB uint8 arrays, with format, byte and pixel limits.

Pure functions: no FastAPI, no torch. Every failure is a domain error (errors.py) whose message says
which limit or format rule was hit, so the API layer only has to render it.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

import numpy as np
from PIL import Image, ImageOps

from sam3_api.errors import ImageTooLarge, InvalidImage, Sam3Error

# Pillow plugin names we accept. Multi-picture JPEGs from phone cameras (Pillow's "MPO") open through
# the JPEG plugin, so they need no entry of their own.
_PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
ACCEPTED_FORMATS_TEXT = "JPEG, PNG, WebP, BMP, TIFF or GIF (first frame)"

_DATA_URL = re.compile(r"^data:([^,]*),", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
# Cheap pre-check before stripping whitespace: base64 wrapped at 76 columns adds ~1.3 %, so allowing
# twice the encoded size leaves room for any sane formatting while refusing a gigabyte string at once.
_WHITESPACE_SLACK = 2


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Decode image bytes to a C-contiguous RGB uint8 array of shape (H, W, 3).

    Order matters: byte cap, then format sniffing, then the header's width x height against max_pixels,
    and only then the (expensive) pixel decode, so a decompression bomb costs a header read.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"image is {len(data)} bytes, over the limit of {max_bytes} bytes (SAM3_MAX_UPLOAD_BYTES)"
        )
    if not data:
        raise InvalidImage("image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel check below is the limit that counts; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open(data) as im:
                _check_pixels(im.size, max_pixels)
                return _to_rgb_array(_load_oriented(im))
    except Sam3Error:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's hard cap (2 x PIL.Image.MAX_IMAGE_PIXELS) fires inside Image.open, before our check,
        # when the image is far over; it also guards plugins that decode sub-images. Never a 500.
        raise ImageTooLarge(
            f"image has too many pixels ({exc}); the limit is {max_pixels} pixels (SAM3_MAX_IMAGE_PIXELS)"
        ) from None
    except MemoryError:
        raise ImageTooLarge("image is too large to decode in memory (SAM3_MAX_IMAGE_PIXELS)") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types (OSError, SyntaxError, ...)
        # on corrupt input; all of them mean "not a decodable image", never a server error.
        raise InvalidImage(f"image could not be decoded: {exc}") from None


def _open(data: bytes) -> Image.Image:
    """Identify the format lazily (header only), restricted to the formats we accept."""
    try:
        return Image.open(io.BytesIO(data), formats=list(_PILLOW_FORMATS))
    except Image.UnidentifiedImageError:
        raise InvalidImage(f"not a supported image format; send {ACCEPTED_FORMATS_TEXT}") from None


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"image has an empty size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels} "
            "pixels (SAM3_MAX_IMAGE_PIXELS)"
        )


def _load_oriented(im: Image.Image) -> Image.Image:
    """Decode all pixels of the first frame, then apply the EXIF orientation."""
    im.seek(0)  # GIF / TIFF / WebP animations: the first frame only
    im.load()  # raises on truncated or corrupt data (PIL.ImageFile.LOAD_TRUNCATED_IMAGES stays False)
    return ImageOps.exif_transpose(im)


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to 8-bit RGB.

    16-bit and 32-bit integer modes are scaled (>> 8), not clipped: Pillow's own convert("RGB") clips
    everything above 255 to white. Alpha is dropped rather than composited, the same as
    PIL's convert("RGB") and transformers' load_image, so pixels match reference pipelines.
    """
    if im.mode.startswith("I;16") or im.mode == "I":
        gray = np.asarray(im).astype(np.int64)
        gray8 = (np.clip(gray, 0, 65535) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray8[:, :, None], 3, axis=2))
    if im.mode == "F":
        gray = np.nan_to_num(np.asarray(im, dtype=np.float64))
        scale = 255.0 if gray.max(initial=0.0) <= 1.0 else 1.0  # 0..1 float data vs 0..255 data
        gray8 = np.clip(gray * scale, 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray8[:, :, None], 3, axis=2))
    if im.mode != "RGB":
        im = im.convert("RGB")  # L, 1, P, PA, LA, RGBA, CMYK, YCbCr, ...
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def decode_base64_image(text: str, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Decode plain base64 or a base64 data URL ("data:image/png;base64,...") to an RGB array.

    Whitespace and newlines are ignored; URL-safe alphabet and missing padding are tolerated. The size
    is checked from the encoded length before decoding, so an oversized string costs nothing.
    """
    payload = _strip_data_url(text)
    encoded_limit = (max_bytes + 2) // 3 * 4
    if len(payload) > encoded_limit * _WHITESPACE_SLACK + 1024:
        raise _too_large_base64(len(payload) * 3 // 4, max_bytes)
    payload = _WHITESPACE.sub("", payload)
    decoded_size = len(payload) * 3 // 4 - (len(payload) - len(payload.rstrip("=")))
    if decoded_size > max_bytes:
        raise _too_large_base64(decoded_size, max_bytes)
    data = _b64decode(payload)
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def _strip_data_url(text: str) -> str:
    match = _DATA_URL.match(text[:256].lstrip())
    if match is None:
        return text
    if not match.group(1).lower().endswith(";base64"):
        raise InvalidImage("data URL must be base64-encoded (data:image/png;base64,...)", field="image_base64")
    return text.lstrip()[match.end():]


def _b64decode(payload: str) -> bytes:
    if "-" in payload or "_" in payload:
        payload = payload.translate(str.maketrans("-_", "+/"))  # URL-safe alphabet
    if len(payload) % 4:
        payload += "=" * (-len(payload) % 4)  # clients often strip padding
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(
            "image_base64 is not valid base64 (expected plain base64 or a data:image/...;base64, URL)",
            field="image_base64",
        ) from None


def _too_large_base64(size: int, max_bytes: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"image_base64 decodes to about {size} bytes, over the limit of {max_bytes} bytes "
        "(SAM3_MAX_UPLOAD_BYTES)",
        field="image_base64",
    )


def encode_png(image: np.ndarray) -> bytes:
    """Encode an RGB (H, W, 3) or grayscale (H, W) uint8 array as PNG bytes."""
    return _png_bytes(Image.fromarray(np.ascontiguousarray(image)))


def _png_bytes(im: Image.Image) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode an RGB (H, W, 3) uint8 array as JPEG bytes (video frames for the web page)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
