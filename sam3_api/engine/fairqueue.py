"""The model worker's waiting room: three priorities, highest first, and nobody starves.

INTERACTIVE work (a click, a box or points on an image whose embedding is cached: milliseconds) goes ahead of
NORMAL work, which goes ahead of HEAVY work (new-image encodes, automatic mode, video frame steps). Strict
priority alone would starve heavy work under a steady stream of clicks, so once `burst` jobs have been picked
ahead of a waiting job of a lower priority, that job goes next. Not thread-safe: the worker holds its lock.
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class Priority(IntEnum):
    """Lower value runs first."""

    INTERACTIVE = 0
    NORMAL = 1
    HEAVY = 2


class FairQueue(Generic[T]):
    """FIFO per priority; `pop()` picks the level by priority with a starvation guard."""

    def __init__(self, burst: int):
        self.burst = max(1, burst)
        self._queues: dict[Priority, deque[T]] = {p: deque() for p in Priority}
        self._passed_over = {p: 0 for p in Priority}

    def __bool__(self) -> bool:
        return any(self._queues.values())

    def __iter__(self) -> Iterator[T]:
        for queue in self._queues.values():
            yield from queue

    def counts(self) -> dict[str, int]:
        return {p.name.lower(): len(q) for p, q in self._queues.items()}

    def push(self, item: T, priority: Priority) -> None:
        self._queues[priority].append(item)

    def remove(self, item: T, priority: Priority) -> None:
        self._queues[priority].remove(item)

    def clear(self) -> None:
        for queue in self._queues.values():
            queue.clear()

    def pop(self, only: Priority | None = None) -> T | None:
        """The next item: from level `only` if given, else the highest waiting level unless one is starved."""
        if only is not None:
            return self._queues[only].popleft() if self._queues[only] else None
        waiting = [p for p in Priority if self._queues[p]]
        if not waiting:
            return None
        starved = [p for p in waiting if self._passed_over[p] >= self.burst]
        chosen = max(starved, key=lambda p: self._passed_over[p]) if starved else waiting[0]
        for priority in Priority:
            if priority > chosen and self._queues[priority]:
                self._passed_over[priority] += 1
            elif priority == chosen or not self._queues[priority]:
                self._passed_over[priority] = 0
        return self._queues[chosen].popleft()
