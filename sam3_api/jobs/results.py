"""A job's per-frame results: an append-only NDJSON file plus an in-memory index of where each frame is.

Frames are appended in the order they finish (a backward pass finishes frames in reverse), one JSON line each,
flushed at once and fsynced every few frames, so a crash loses at most the last few. Readers get any frame
by index (the index is rebuilt by scanning the file after a restart) and can wait for the next one.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

SYNC_EVERY = 16  # frames between fsyncs


class ResultsLog:
    """frame index -> JSON line, persisted in `path`. Appends come from one writer (the job runner)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._index: dict[int, tuple[int, int]] = {}  # frame -> (offset, length)
        self._appended = 0
        self.version = 0  # bumped on every append or notify; readers wait for it to move
        self._changed: asyncio.Event | None = None
        self._scan()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, frame: int) -> bool:
        return frame in self._index

    def frames(self) -> list[int]:
        return sorted(self._index)

    def append(self, lines: list[dict]) -> None:
        """Append finished frames ({"frame_index": ..., ...}); the first line for a frame wins."""
        with open(self.path, "ab") as out:
            offset = out.tell()
            for line in lines:
                if line["frame_index"] in self._index:
                    continue
                data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
                out.write(data)
                self._index[line["frame_index"]] = (offset, len(data))
                offset += len(data)
                self._appended += 1
            out.flush()
            if self._appended >= SYNC_EVERY:
                os.fsync(out.fileno())
                self._appended = 0
        self.notify()

    def read(self, frame: int) -> bytes:
        offset, length = self._index[frame]
        with open(self.path, "rb") as source:
            source.seek(offset)
            return source.read(length)

    def notify(self) -> None:
        """Wake readers waiting for new frames, progress or the job's end (event-loop thread only)."""
        self.version += 1
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def wait(self, seen_version: int, timeout: float) -> None:
        """Return once `version` differs from `seen_version`, or after `timeout` seconds."""
        if self.version != seen_version:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _scan(self) -> None:
        """Rebuild the index from the file; a torn last line (crash mid-write) is ignored."""
        if not self.path.exists():
            return
        offset = 0
        with open(self.path, "rb") as source:
            for data in source:
                try:
                    frame = json.loads(data)["frame_index"]
                except (ValueError, KeyError, TypeError):
                    break
                self._index.setdefault(frame, (offset, len(data)))
                offset += len(data)
