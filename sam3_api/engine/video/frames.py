"""Video frames for transformers' video sessions, decoded and preprocessed a chunk at a time.

transformers' Sam3VideoInferenceSession / Sam3TrackerVideoInferenceSession read frames through
`session.processed_frames[frame_idx]` and the clip length through `len(session.processed_frames)` (the tracker's
object-pointer window depends on it). `ChunkedFrames` answers both without holding the clip: `len()` is the
number of frames in the run, and a frame is preprocessed (resize + normalise by the checkpoint's own video
processor, exactly as `init_video_session(video=...)` would) only when asked for, together with the rest of
its chunk; only the last `KEPT_CHUNKS` chunks stay in memory. A 1008 x 1008 float frame is 12 MB, so a clip
is never materialised as model input at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Protocol

import numpy as np
import torch

CHUNK_FRAMES = 8
KEPT_CHUNKS = 2  # the current chunk and the one before it (a backward pass walks chunks in reverse)


class FrameReader(Protocol):
    """Decoded RGB frames of one video run (media.video.FrameStore, or a list in tests)."""

    height: int
    width: int

    def __len__(self) -> int: ...

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as an (n, H, W, 3) uint8 array."""


class ArrayFrames:
    """A FrameReader over frames already in memory (tests, short clips)."""

    def __init__(self, frames: list[np.ndarray] | np.ndarray):
        self._frames = np.asarray(frames, dtype=np.uint8)
        self.height, self.width = int(self._frames.shape[1]), int(self._frames.shape[2])

    def __len__(self) -> int:
        return len(self._frames)

    def read_range(self, start: int, stop: int) -> np.ndarray:
        return self._frames[start:stop]


class ChunkedFrames(Mapping):
    """Mapping frame index -> preprocessed (3, S, S) float tensor, loaded and preprocessed per chunk."""

    def __init__(self, reader: FrameReader, video_processor, chunk: int = CHUNK_FRAMES):
        self.reader = reader
        self.video_processor = video_processor
        self.chunk = chunk
        self._chunks: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.chunks_loaded = 0  # how many chunks were preprocessed (tests check chunking really happens)

    def __len__(self) -> int:
        return len(self.reader)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.reader)))

    def __getitem__(self, frame_idx: int) -> torch.Tensor:
        if not 0 <= frame_idx < len(self.reader):
            raise KeyError(frame_idx)
        number = frame_idx // self.chunk
        chunk = self._chunks.get(number)
        if chunk is None:
            chunk = self._load(number)
        self._chunks.move_to_end(number)
        return chunk[frame_idx - number * self.chunk]

    def _load(self, number: int) -> torch.Tensor:
        start = number * self.chunk
        frames = self.reader.read_range(start, min(start + self.chunk, len(self.reader)))
        processed = self.video_processor(videos=[list(frames)], return_tensors="pt").pixel_values_videos[0]
        self._chunks[number] = processed
        self.chunks_loaded += 1
        while len(self._chunks) > KEPT_CHUNKS:
            self._chunks.popitem(last=False)
        return processed

    @property
    def frames_in_memory(self) -> int:
        return sum(len(chunk) for chunk in self._chunks.values())
