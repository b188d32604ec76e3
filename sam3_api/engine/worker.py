"""One model thread fed by a bounded queue.

Every model call runs here, never on the event loop or FastAPI's shared threadpool: one thread means the GPU
sees one job at a time and no lock is needed around the model or the cache. A full queue fails fast with
EngineBusy (503 + Retry-After) instead of letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from ..errors import EngineBusy

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelWorker:
    """Runs callables one at a time on a dedicated thread; at most `max_queue` jobs in flight."""

    def __init__(self, max_queue: int, retry_after_s: int = 1):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam3-model")
        self._max_queue = max_queue
        self._retry_after_s = retry_after_s
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return self._pending

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future:
        """Queue a job; raises EngineBusy when `max_queue` jobs are already queued or running."""
        with self._lock:
            if self._pending >= self._max_queue:
                raise EngineBusy(
                    f"The model is busy: {self._pending} requests are queued (SAM3_MAX_QUEUE={self._max_queue}). "
                    f"Retry in {self._retry_after_s} s.",
                    retry_after_s=self._retry_after_s,
                )
            self._pending += 1
        try:
            return self._executor.submit(self._run, fn, args, kwargs)
        except BaseException:
            self._release()
            raise

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Queue a job and await its result without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1
