"""Video bytes from the three input modes, written to a scratch file under the byte limit.

Uploads stream to disk a chunk at a time (never the whole file in memory); base64 is size-checked before it
is decoded; URLs go through the SSRF-safe fetch. What the bytes are is decided later, by the isolated decoder.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from pathlib import Path

from fastapi import UploadFile

from ..config import Settings
from ..errors import InvalidVideo, VideoTooLarge
from ..media.fetch import fetch_url

CHUNK = 1024 * 1024
_DATA_URL = re.compile(r"^\s*data:[^,]*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def _too_large(what: str, settings: Settings) -> VideoTooLarge:
    return VideoTooLarge(f"{what} is over the limit of {settings.video_max_bytes} bytes (SAM3_VIDEO_MAX_BYTES)",
                         field="video")


async def video_from_upload(upload: UploadFile, target: Path, settings: Settings) -> Path:
    written = 0
    with open(target, "wb") as out:
        while chunk := await upload.read(CHUNK):
            written += len(chunk)
            if written > settings.video_max_bytes:
                raise _too_large("the uploaded video", settings)
            out.write(chunk)
    if written == 0:
        raise InvalidVideo("the uploaded video is empty (0 bytes)", field="video")
    return target


async def video_from_base64(text: str, target: Path, settings: Settings) -> Path:
    payload = _DATA_URL.sub("", text[:512], count=1) + text[512:] if _DATA_URL.match(text[:512]) else text
    if len(payload) > (settings.video_max_bytes + 2) // 3 * 4 * 2 + 1024:  # whitespace slack, then exact check
        raise _too_large("video_base64", settings)
    data = await asyncio.to_thread(_decode_base64, payload)
    if len(data) > settings.video_max_bytes:
        raise _too_large("video_base64", settings)
    await asyncio.to_thread(target.write_bytes, data)
    return target


def _decode_base64(payload: str) -> bytes:
    payload = _WHITESPACE.sub("", payload).translate(str.maketrans("-_", "+/"))
    payload += "=" * (-len(payload) % 4)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidVideo("video_base64 is not valid base64 (expected plain base64 or a data:video/...;base64, "
                           "URL)", field="video_base64") from None
    if not data:
        raise InvalidVideo("video_base64 is empty", field="video_base64")
    return data


async def video_from_url(url: str, target: Path, settings: Settings) -> Path:
    data = await fetch_url(url, max_bytes=settings.video_max_bytes, timeout_s=settings.url_timeout_s,
                           max_redirects=settings.url_max_redirects, allow_private=settings.url_allow_private,
                           allow_hosts=settings.url_allow_hosts)
    await asyncio.to_thread(target.write_bytes, data)
    return target


async def video_from_json(video_base64: str | None, video_url: str | None, target: Path, settings: Settings) -> Path:
    """A JSON body's video: exactly one of video_base64 / video_url, written to `target`."""
    if bool(video_base64) == bool(video_url):
        raise InvalidVideo("give exactly one of video_base64 or video_url (or upload a multipart `video` file)",
                           field="video_base64")
    if video_base64:
        return await video_from_base64(video_base64, target, settings)
    return await video_from_url(video_url, target, settings)

