"""What the drop-in adapters share: the foreign error envelopes and the client-named image map."""

from __future__ import annotations

import hashlib

from fastapi.responses import JSONResponse

from ..engine.cache import EmbeddingCache
from ..engine.types import PreparedImage


def detail_error(status_code: int, message: str, code: str, headers: dict | None = None) -> JSONResponse:
    """FastAPI's own envelope, which seeds 001 and 002 answer: {"detail": "<message>"}."""
    return JSONResponse({"detail": message}, status_code=status_code, headers=headers)


def message_error(status_code: int, message: str, code: str, headers: dict | None = None) -> JSONResponse:
    """Roboflow's envelope (seed 004): {"message": "<message>"}."""
    return JSONResponse({"message": message}, status_code=status_code, headers=headers)


class ScopedImages:
    """Images named by a client-chosen id, each visible only to the API key that named it.

    The id is only a name: it maps to a PreparedImage (decoded pixels + the hash of those pixels, the
    engine's embedding-cache key) that this server decoded itself, so a client can never make the engine
    use an embedding for pixels it did not send. LRU, bounded by entries and by pixel bytes (settings);
    touched only on the event loop, so it needs no lock.
    """

    def __init__(self, max_entries: int, max_bytes: int):
        self._images: EmbeddingCache[PreparedImage] = EmbeddingCache(max_entries, max_bytes)

    @staticmethod
    def _key(api_key: str | None, image_id: str) -> str:
        scope = "" if api_key is None else hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).hexdigest()
        return f"{scope}\x00{image_id}"

    def remember(self, api_key: str | None, image_id: str, image: PreparedImage) -> None:
        self._images.put(self._key(api_key, image_id), image)

    def find(self, api_key: str | None, image_id: str) -> PreparedImage | None:
        return self._images.get(self._key(api_key, image_id))

    def __len__(self) -> int:
        return len(self._images)


def error_field(status_code: int, message: str, code: str, headers: dict | None = None) -> JSONResponse:
    """Runpod's envelope (seed 003): {"error": "<message>"}, the field a FAILED job carries too."""
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)
