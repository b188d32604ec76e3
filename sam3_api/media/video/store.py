"""The on-disk frame store of one decoded video: store_dir/frames.raw + store_dir/meta.json.

frames.raw holds the kept frames as raw RGB uint8, frame after frame (height * width * 3 bytes each).
meta.json (the VideoInfo) is written last, atomically (temp file + os.replace), by the server process
after it has checked the decoder's report and the size of frames.raw: a store without meta.json is
unfinished and FrameStore refuses it. Reads use positional reads (os.preadv) into numpy arrays, not
np.memmap: mapped pages that were touched count in the server's RSS.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from sam3_api.media.video.info import VideoInfo

FRAMES_FILE = "frames.raw"
META_FILE = "meta.json"


def clear_store(store_dir: Path) -> None:
    """Remove a previous (finished or half-written) store's files from store_dir."""
    for name in (META_FILE, META_FILE + ".tmp", FRAMES_FILE):
        try:
            (store_dir / name).unlink()
        except FileNotFoundError:
            pass


def finish_store(store_dir: Path, info: VideoInfo) -> None:
    """Mark the store complete: check frames.raw against info, then write meta.json atomically."""
    size = (store_dir / FRAMES_FILE).stat().st_size
    if size != info.frame_count * info.frame_bytes:
        raise ValueError(
            f"{store_dir / FRAMES_FILE} holds {size} bytes, expected {info.frame_count} frames of "
            f"{info.frame_bytes} bytes"
        )
    temporary = store_dir / (META_FILE + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(info.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, store_dir / META_FILE)


class FrameStore:
    """Read access to a finished store; safe to share between threads. Close it (or use `with`)."""

    def __init__(self, store_dir: Path | str):
        self.store_dir = Path(store_dir)
        meta = self.store_dir / META_FILE
        if not meta.is_file():
            raise FileNotFoundError(f"{meta} does not exist: the video was not (completely) decoded")
        self.info = VideoInfo.from_json(meta.read_text(encoding="utf-8"))
        self._file = open(self.store_dir / FRAMES_FILE, "rb", buffering=0)
        self._lock = threading.Lock()  # only for platforms without os.preadv (seek + read must pair up)
        size = os.fstat(self._file.fileno()).st_size
        if size != self.info.frame_count * self.info.frame_bytes:
            self._file.close()
            raise ValueError(f"{self.store_dir / FRAMES_FILE} has {size} bytes, which does not match meta.json")

    def __len__(self) -> int:
        return self.info.frame_count

    def read(self, k: int) -> np.ndarray:
        """Stored frame k as a new (H, W, 3) uint8 array."""
        return self.read_range(k, k + 1)[0]

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """Stored frames start..stop-1 as a new (n, H, W, 3) uint8 array."""
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f"frames {start}..{stop} are outside the store's 0..{len(self)}")
        info = self.info
        frames = np.empty((stop - start, info.height, info.width, 3), dtype=np.uint8)
        self._read_into(memoryview(frames.reshape(-1)), start * info.frame_bytes)
        return frames

    def _read_into(self, buffer: memoryview, offset: int) -> None:
        done = 0
        while done < len(buffer):
            count = self._read_at(buffer[done:], offset + done)
            if count <= 0:
                raise OSError(f"{self.store_dir / FRAMES_FILE} ended early (was it changed while open?)")
            done += count

    def _read_at(self, buffer: memoryview, offset: int) -> int:
        if hasattr(os, "preadv"):
            return os.preadv(self._file.fileno(), [buffer], offset)
        with self._lock:  # Windows: no positional reads
            self._file.seek(offset)
            return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "FrameStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
