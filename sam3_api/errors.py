"""Domain errors. Each carries the HTTP status it maps to and a message that says how to fix it.

This module imports nothing internal so every layer (media, engine, api) can raise these.
"""

from __future__ import annotations

import copy


class Sam3Error(Exception):
    """Base class: a client-visible failure with a status code and a machine-readable code."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}

    def with_message(self, message: str, *, field: str | None = None) -> "Sam3Error":
        """The same error (class, status, code, headers, field) with another message: an adapter's prefix.

        A copy, not `type(self)(message, ...)`: subclasses have constructors of their own (ModelOutOfMemory
        takes a retry delay, no field), and rebuilding one would turn it into a TypeError."""
        clone = copy.copy(self)
        clone.args, clone.message = (message,), message
        if field is not None:
            clone.field = field
        return clone


class InvalidImage(Sam3Error):
    """The bytes are not a decodable image of a supported format."""

    code = "invalid_image"


class ImageTooLarge(Sam3Error):
    """Upload, download or decoded pixel count exceeds a configured limit."""

    status_code = 413
    code = "image_too_large"


class InvalidVideo(Sam3Error):
    """The bytes are not a decodable video of a supported container and codec (or are truncated/corrupt)."""

    code = "invalid_video"


class VideoTooLarge(Sam3Error):
    """Bytes, frames, duration, resolution, decoded size or decode time exceed a configured limit."""

    status_code = 413
    code = "video_too_large"


class InvalidPrompt(Sam3Error):
    """A prompt (box, point, label, text, threshold) is malformed or outside the image."""

    status_code = 422
    code = "invalid_prompt"


class UrlNotAllowed(Sam3Error):
    """The image URL's scheme or address is not allowed (SSRF protection)."""

    code = "url_not_allowed"


class UrlFetchFailed(Sam3Error):
    """The image URL could not be fetched (connection error, HTTP error, timeout, too many redirects)."""

    code = "url_fetch_failed"


class NotFound(Sam3Error):
    """A referenced resource (image_id, session) does not exist or has expired."""

    status_code = 404
    code = "not_found"


class ModelNotReady(Sam3Error):
    """The model is still loading or failed to load."""

    status_code = 503
    code = "model_not_ready"


class EngineBusy(Sam3Error):
    """The model worker's queue is full; the client should retry later."""

    status_code = 503
    code = "engine_busy"

    def __init__(self, message: str, *, retry_after_s: int = 1):
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class Conflict(Sam3Error):
    """The resource is not in a state that allows the request (cancel a finished job, read an unfinished output)."""

    status_code = 409
    code = "conflict"


class PathNotAllowed(Sam3Error):
    """A server-side file path was refused: reading is off, or the path leaves the allowed root."""

    status_code = 403
    code = "path_not_allowed"


class RequestTimeout(Sam3Error):
    """A request waited longer than SAM3_REQUEST_TIMEOUT_S for the model and was dropped without running."""

    status_code = 504
    code = "queue_timeout"


class ModelOutOfMemory(Sam3Error):
    """The model ran out of (GPU or host) memory on this request; caches were cleared, the next may succeed."""

    status_code = 503
    code = "out_of_memory"

    def __init__(self, message: str, *, retry_after_s: int = 1):
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class RateLimited(Sam3Error):
    """The API key used up its SAM3_RATE_LIMIT; Retry-After says when the next request is allowed."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})

