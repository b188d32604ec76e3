"""The pixels of a Label Studio task's image, from wherever its URL points, without reaching unnamed hosts.

- `/data/upload/...`, `/data/local-files/?d=...`, `/tasks/.../presign/...` (relative to Label Studio) and
  absolute URLs on the same origin: fetched from the operator's SAM3_LABEL_STUDIO_URL only, with the token
  Label Studio sent in /setup, then, if Label Studio refuses that one (401/403), SAM3_LABEL_STUDIO_API_KEY.
  A legacy token goes as `Token <key>`; a personal access token (a JWT refresh token) is first exchanged at
  /api/token/refresh/ for an access token, sent as `Bearer`.
  A redirect to another origin (cloud storage presigning) is followed without the token, through the
  SSRF-safe fetcher.
- any other http(s) URL: the SSRF-safe fetcher (media/fetch.py) with the server's URL rules.
- `data:` URIs: decoded in place.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx
import numpy as np

from ...api.inputs import image_from_base64, image_from_url
from ...config import Settings
from ...errors import ImageTooLarge, InvalidImage, UrlFetchFailed
from ...media.images import decode_image

SETTING = "SAM3_LABEL_STUDIO_URL"
log = logging.getLogger(__name__)


@dataclass
class LabelStudioSource:
    """Label Studio as the operator configured it, and the tokens to read its files with, tried in order: the
    one /setup sent (Label Studio 1.23 sends the project owner's legacy token, which it refuses itself unless
    legacy tokens are enabled), then SAM3_LABEL_STUDIO_API_KEY."""

    base_url: str | None
    tokens: tuple[str, ...]
    _current: int = field(default=0, init=False)
    _header: str | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)  # prefetched tasks share the token

    def owns(self, url: httpx.URL) -> bool:
        base = httpx.URL(self.base_url) if self.base_url else None
        return base is not None and (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)

    async def auth_header(self, client: httpx.AsyncClient) -> dict[str, str]:
        """Authorization for Label Studio's file routes: `Token <key>` for a legacy token; a personal access
        token (a JWT refresh token) is exchanged once per call for an access token, sent as `Bearer`."""
        async with self._lock:
            while self._header is None and self._current < len(self.tokens):
                token = self.tokens[self._current]
                if not (token.count(".") == 2 and token.startswith("eyJ")):
                    self._header = f"Token {token}"
                elif (access := await self._access_token(client, token)) is not None:
                    self._header = f"Bearer {access}"
                else:
                    self._current += 1
        return {"Authorization": self._header} if self._header else {}

    async def refused(self, headers: dict[str, str]) -> bool:
        """Label Studio refused `headers` (401/403): move on to the next token; False when none is left."""
        async with self._lock:
            if self._header is not None and headers.get("Authorization") == self._header:
                self._current, self._header = self._current + 1, None
            return self._current < len(self.tokens)

    async def _access_token(self, client: httpx.AsyncClient, token: str) -> str | None:
        response = await client.post(f"{self.base_url.rstrip('/')}/api/token/refresh/", json={"refresh": token})
        try:
            access = response.json().get("access") if response.status_code == 200 else None
        except (ValueError, AttributeError):  # not a JSON object
            access = None
        if not isinstance(access, str):
            log.warning("Label Studio refused a personal access token (HTTP %s from /api/token/refresh/)",
                        response.status_code)
            return None
        return access


async def load_image(url: object, source: LabelStudioSource, client: httpx.AsyncClient,
                     settings: Settings) -> np.ndarray:
    """Decoded RGB pixels of one task image; InvalidImage / UrlFetchFailed / UrlNotAllowed say why not."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidImage("the task has no image URL in the field the labeling config's <Image value> names")
    url = url.strip()
    if url.startswith("data:"):
        return await image_from_base64(url, settings)
    if url.startswith("/") and not url.startswith("//"):
        if not source.base_url:
            raise InvalidImage(f"the image URL {url[:100]!r} is relative to Label Studio: set {SETTING} to Label "
                               "Studio's address (e.g. http://localhost:8080) so this server can fetch it")
        return await _from_label_studio(httpx.URL(source.base_url.rstrip("/") + url), source, client, settings)
    parsed = httpx.URL(url)
    if parsed.scheme in ("http", "https") and source.owns(parsed):
        return await _from_label_studio(parsed, source, client, settings)
    return await image_from_url(url, settings)


async def _from_label_studio(url: httpx.URL, source: LabelStudioSource, client: httpx.AsyncClient,
                             settings: Settings) -> np.ndarray:
    for _ in range(settings.url_max_redirects + len(source.tokens) + 1):
        headers = await source.auth_header(client)
        async with client.stream("GET", url, headers=headers) as response:
            if response.is_redirect and "location" in response.headers:
                url = url.join(response.headers["location"])
                if not source.owns(url):  # e.g. a presigned cloud-storage URL: no token, SSRF rules
                    return await image_from_url(str(url), settings)
                continue
            if response.status_code in (401, 403) and await source.refused(headers):
                continue  # the next token
            if response.status_code != 200:
                raise UrlFetchFailed(f"Label Studio answered HTTP {response.status_code} for {url.path}: check the "
                                     "token (/setup's access_token or SAM3_LABEL_STUDIO_API_KEY) and the file")
            data = await _read_capped(response, settings.max_upload_bytes)
        return await asyncio.to_thread(decode_image, data, max_bytes=settings.max_upload_bytes,
                                       max_pixels=settings.max_image_pixels)
    raise UrlFetchFailed(f"Label Studio redirected more than {settings.url_max_redirects} times "
                         "(SAM3_URL_MAX_REDIRECTS)")


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise ImageTooLarge(f"the image is over the limit of {max_bytes} bytes (SAM3_MAX_UPLOAD_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def label_studio_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=settings.url_timeout_s, follow_redirects=False,
                             headers={"User-Agent": "sam3-api", "Accept-Encoding": "identity"})
