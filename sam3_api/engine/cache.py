"""Image-embedding LRU: the vision backbone runs once per distinct image.

Keyed by the hash of the decoded pixels (PreparedImage.key), bounded by entry count and by bytes. Only the
model thread touches it, so it needs no lock.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
V = TypeVar("V")


class EmbeddingCache(Generic[V]):
    """LRU of values that report their own size through `nbytes`."""

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, V] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def peek(self, key: str) -> V | None:
        """The value without counting a hit or a miss or refreshing it (a batch job reading the shared cache)."""
        return self._items.get(key)

    def put(self, key: str, value: V) -> None:
        size = value.nbytes
        if self.max_entries == 0 or size > self.max_bytes:
            return  # would evict everything and still not fit: do not cache
        if key in self._items:
            self._bytes -= self._items.pop(key).nbytes
        self._items[key] = value
        self._bytes += size
        while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= evicted.nbytes
        log.debug("embedding cache: %d entries, %.1f MiB", len(self._items), self._bytes / 2**20)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
