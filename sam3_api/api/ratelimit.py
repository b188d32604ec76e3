"""Per-API-key rate limits (SAM3_RATE_LIMIT, e.g. "120/minute"), with the `limits` library's moving window.

Active only when API keys are configured: the limit is counted per key, and a request without one (keys off)
is never limited here. A refused request answers 429 with Retry-After, rendered by the caller's own error
handler (RateLimited is a domain error like any other).

Integration point with api/auth.py (SAM3_API_KEYS): auth sets `request.state.api_key` (the matched key, or
None when keys are off). `deps.api_key` reads exactly that. When auth is a dependency, make it a
sub-dependency here so it has run first: `api_key: Annotated[str | None, Depends(auth.<its dependency>)]`.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from ..errors import RateLimited
from .deps import ApiKeyDep, ServicesDep


class KeyRateLimiter:
    """One moving window per API key, in this process's memory."""

    def __init__(self, rate: str):
        self.rate = rate
        self._item = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, key: str) -> None:
        """Count one request for `key`; raises RateLimited (429 + Retry-After) beyond the rate."""
        if self._limiter.hit(self._item, key):
            return
        reset_at, _ = self._limiter.get_window_stats(self._item, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(f"this API key is over its rate limit of {self.rate} (SAM3_RATE_LIMIT); "
                          f"retry in {retry_after} s", retry_after_s=retry_after)


async def enforce_rate_limit(connection: HTTPConnection, services: ServicesDep, api_key: ApiKeyDep) -> None:
    """App-wide dependency: counts HTTP requests per key (WebSocket messages are not rate limited)."""
    limiter = services.rate_limiter
    if limiter is None or api_key is None or connection.scope["type"] != "http":
        return
    try:
        limiter.check(api_key)
    except RateLimited:
        services.engine.metrics.rate_limited.inc()
        raise
