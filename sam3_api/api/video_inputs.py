"""Video bytes from every input mode (multipart, base64, URL, a socket's binary message), written to a file.

Uploads stream to disk a chunk at a time (never the whole file in memory); base64 is size-checked before it
is decoded; URLs go through the SSRF-safe fetch. What the bytes are is decided later, by the isolated decoder.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from fastapi import Request
from starlette.datastructures import UploadFile  # what request.form() gives (FastAPI's is a subclass)
from pydantic import BaseModel, ValidationError

from ..config import Settings
from ..errors import InvalidVideo, VideoTooLarge
from ..media.fetch import fetch_url
from ..media.video import VideoLimits, check_video_size
from .errors import schema_error

CHUNK = 1024 * 1024
Fields = TypeVar("Fields", bound=BaseModel)
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


@dataclass(frozen=True)
class VideoInput:
    """Where a video comes from, whatever the body carried it in: give exactly one."""

    upload: UploadFile | None = None  # a multipart file
    base64: str | None = None  # video_base64 (a data: URL prefix is accepted)
    url: str | None = None  # video_url (SSRF-safe fetch)
    data: bytes | None = None  # a WebSocket binary message


async def save_video(source: VideoInput, target: Path, settings: Settings) -> Path:
    """Write the video to `target` under SAM3_VIDEO_MAX_BYTES (what it is is decided later, by the decoder)."""
    if source.upload is not None:
        return await video_from_upload(source.upload, target, settings)
    if source.data is not None:
        check_video_size(len(source.data), VideoLimits.from_settings(settings))
        await asyncio.to_thread(target.write_bytes, source.data)
        return target
    if bool(source.base64) == bool(source.url):
        raise InvalidVideo("give exactly one of video_base64 or video_url (or upload a multipart `video` file)",
                           field="video_base64")
    if source.base64:
        return await video_from_base64(source.base64, target, settings)
    return await video_from_url(source.url, target, settings)


async def read_video_request(request: Request, target: Path, settings: Settings, form_model: type[Fields],
                             json_model: type[Fields]) -> Fields:
    """The one reader of video request bodies (/video/jobs, /video/uploads): multipart with the file in the
    `video` field and the other fields as form values (JSON text for lists), or JSON with video_base64 or
    video_url beside the same fields. The video is written to `target`; the fields come back validated
    (a schema error is the native 422 validation_error)."""
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_part_size=settings.video_max_bytes)
            upload = form.get("video")
            if not isinstance(upload, UploadFile):
                raise InvalidVideo("no video: send the file in the multipart field `video`", field="video")
            fields = form_model.model_validate({key: (values if len(values := form.getlist(key)) > 1 else values[0])
                                                for key in form.keys() if key != "video"})
            await save_video(VideoInput(upload=upload), target, settings)
            return fields
        body = json_model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise schema_error(exc) from None
    await save_video(VideoInput(base64=body.video_base64, url=body.video_url), target, settings)
    return body
