"""What a decode found: VideoInfo (a decoded, stored video) and VideoProbe (header + first frame).

Both are frozen dataclasses with a JSON round trip: the decoder child reports them on stdout, and the
frame store keeps VideoInfo as meta.json next to the frames.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VideoInfo:
    """A decoded video as stored: frame k of the store is source frame source_index(k).

    width / height are the displayed size (after the container's rotation); every stored frame has it.
    fps is the source's average frame rate; output_fps is the rate of the kept frames (fps / frame_stride).
    """

    width: int
    height: int
    fps: float
    frame_count: int  # frames kept (stored)
    start_frame: int
    frame_stride: int
    duration_s: float  # of the whole source: the header's figure, else measured while decoding
    container: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # canonical codec name, e.g. "h264"
    rotation: int = 0  # degrees counter-clockwise applied to the coded frames (0, 90, 180, 270)
    source_frame_count: int | None = None  # frames in the source: counted when decoding reached the end,
    # else the header's figure (None when the header has none)
    end_frame: int | None = None  # the end_frame asked for (inclusive), None = to the end

    def source_index(self, k: int) -> int:
        """Original frame index of stored frame k."""
        if not 0 <= k < self.frame_count:
            raise IndexError(f"frame {k} is outside 0..{self.frame_count - 1}")
        return self.start_frame + k * self.frame_stride

    @property
    def frame_bytes(self) -> int:
        """Bytes of one stored RGB frame."""
        return self.width * self.height * 3

    @property
    def output_fps(self) -> float:
        """Frame rate that plays the kept frames at the source's speed (for an annotated MP4)."""
        return self.fps / self.frame_stride

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VideoInfo":
        return cls(**_known_fields(cls, data))

    @classmethod
    def from_json(cls, text: str) -> "VideoInfo":
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class VideoProbe:
    """A probed video: the header's figures, checked against the limits, and the first frame's real size."""

    width: int  # of the first decoded frame, after rotation
    height: int
    fps: float
    declared_frames: int | None  # the header's frame count (None when it has none)
    duration_s: float | None  # the header's duration (None when it has none)
    container: str
    codec: str
    rotation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VideoProbe":
        return cls(**_known_fields(cls, data))


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Drop keys this version does not know, so a meta.json written by a newer version still opens."""
    names = {field.name for field in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}
