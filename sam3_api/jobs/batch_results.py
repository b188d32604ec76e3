"""A batch job's per-image results: one JSON line per finished image in results.ndjson, keyed by file_name.

The same append-only log as video jobs' frames (results.py: flushed at once, fsynced every few lines, an
in-memory index of where each line is, readers woken on every append), with what a resumable batch needs:
- each image's line is written once: a second append for a done image is ignored, and when a file holds two
  lines for one image (a restarted job that ran it again before its first line was indexed), the first wins;
- a torn last line (the process died mid-write) is cut off when the log is opened, so the next append starts
  on a clean line and that image simply runs again;
- `done()` is the set of finished images a resumed job skips, `records(order)` reads every image exactly once,
  from disk, one line at a time (in the job's listing order, so exports number images the same way each time).
Keep one instance per job per process (the runner's): opening cuts a line that another writer is still writing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .results import SYNC_EVERY, ResultsLog

RESULTS_FILE = "results.ndjson"


class BatchResults(ResultsLog):
    """file_name -> the image's result line ({"file_name", "width", "height", "error"?, "annotations"})."""

    def __init__(self, path: Path):
        self._written: list[str] = []  # file names in the order their lines were written
        self.failed = 0  # images whose line carries an error
        super().__init__(path)

    def done(self) -> frozenset[str]:
        """The images with a result on disk: a resumed job skips these."""
        return frozenset(self._index)

    def append_record(self, record: dict) -> bool:
        """Write one finished image's line and flush it; False (nothing written) when that image is done."""
        file_name = record["file_name"]
        if file_name in self._index:
            return False
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with open(self.path, "ab") as out:
            offset = out.tell()
            out.write(data)
            out.flush()
            self._appended += 1
            if self._appended >= SYNC_EVERY:
                os.fsync(out.fileno())
                self._appended = 0
        self._remember(file_name, offset, len(data), bool(record.get("error")))
        self.notify()
        return True

    def append(self, lines: list[dict]) -> None:
        """ResultsLog's batch append, by file_name (the first line for an image wins)."""
        for line in lines:
            self.append_record(line)

    def records(self, order: Iterable[str] | None = None) -> Iterator[dict]:
        """Each done image's record once: in `order` (names not done are passed over), or in the order written."""
        with open(self.path, "rb") as source:
            for file_name in self._written if order is None else order:
                place = self._index.get(file_name)
                if place is not None:
                    source.seek(place[0])
                    yield json.loads(source.read(place[1]))

    def lines_since(self, position: int) -> list[bytes]:
        """The raw lines written after the first `position` ones (a streaming reader's cursor), in write order."""
        return [self.read(file_name) for file_name in self._written[position:]]

    def _remember(self, file_name: str, offset: int, length: int, failed: bool) -> None:
        self._index[file_name] = (offset, length)
        self._written.append(file_name)
        self.failed += failed

    def _scan(self) -> None:
        """Rebuild the index; cut a torn last line off the file; ignore any later line for a done image."""
        if not self.path.exists():
            return
        offset = 0
        with open(self.path, "rb") as source:
            for data in source:
                if not data.endswith(b"\n"):
                    break  # torn: the write of this line never finished
                try:
                    record = json.loads(data)
                    file_name = record["file_name"]
                except (ValueError, KeyError, TypeError):
                    file_name = None  # a complete line that is not a record: skipped, never fatal
                if isinstance(file_name, str) and file_name not in self._index:
                    self._remember(file_name, offset, len(data), bool(record.get("error")))
                offset += len(data)
        if offset < self.path.stat().st_size:
            os.truncate(self.path, offset)
