"""Turn the three input modes into decoded pixels, with every limit from Settings applied.

Decoding is CPU work, so it runs in a worker thread (asyncio.to_thread), never on the event loop. URL inputs
go through media/fetch.py (SSRF-safe); a local path is opened only by image_from_server_path, below the
operator's SAM3_IMAGE_ROOT (media/local_files.py).
"""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi import UploadFile

from ..config import Settings
from ..errors import ImageTooLarge, InvalidImage
from ..media.fetch import fetch_url
from ..media.images import decode_base64_image, decode_image
from ..media.local_files import read_file_under_root


async def image_from_upload(upload: UploadFile | None, settings: Settings) -> np.ndarray:
    if upload is None:
        raise InvalidImage("no image: send the file in the multipart field `image`", field="image")
    data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLarge(
            f"upload is over the limit of {settings.max_upload_bytes} bytes (SAM3_MAX_UPLOAD_BYTES)", field="image"
        )
    return await asyncio.to_thread(
        decode_image, data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )


async def image_from_base64(text: str, settings: Settings) -> np.ndarray:
    return await asyncio.to_thread(
        decode_base64_image, text, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )


async def image_from_url(url: str, settings: Settings) -> np.ndarray:
    data = await fetch_url(
        url,
        max_bytes=settings.max_upload_bytes,
        timeout_s=settings.url_timeout_s,
        max_redirects=settings.url_max_redirects,
        allow_private=settings.url_allow_private,
        allow_hosts=settings.url_allow_hosts,
    )
    return await asyncio.to_thread(
        decode_image, data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )


async def image_from_server_path(name: str, settings: Settings) -> np.ndarray:
    """A file below SAM3_IMAGE_ROOT, for services whose clients name server-side files (seed 002's image_path)."""
    data = await asyncio.to_thread(read_file_under_root, settings.image_root, name, max_bytes=settings.max_upload_bytes)
    return await asyncio.to_thread(
        decode_image, data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )
