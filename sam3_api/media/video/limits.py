"""What a decode may do (VideoLimits), which frames it keeps (FrameSelection), and the accepted formats.

Both classes are plain frozen dataclasses that cross the process boundary to the decoder child as JSON.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from sam3_api.errors import InvalidPrompt, InvalidVideo, VideoTooLarge

# FFmpeg demuxer names (AVInputFormat.name) we open. Passed to FFmpeg as format_whitelist, so a file that
# probes as anything else (an HLS playlist, a concat script, an image sequence...) is refused before its
# demuxer reads a byte past the probe: those demuxers can open other files or URLs.
ACCEPTED_CONTAINERS: tuple[str, ...] = ("mov", "mp4", "matroska", "webm", "avi", "mpegts")
ACCEPTED_CONTAINERS_TEXT = "MP4 / MOV (incl. M4V, 3GP), Matroska / WebM, AVI or MPEG-TS"

# Codec names (FFmpeg's canonical codec id names, av.Codec.canonical_name). AV1 decodes with libdav1d.
ACCEPTED_CODECS: tuple[str, ...] = (
    "h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg", "mpeg1video", "mpeg2video",
)
ACCEPTED_CODECS_TEXT = "H.264, H.265/HEVC, VP8, VP9, AV1, MPEG-4 Part 2, Motion JPEG, MPEG-1 or MPEG-2 video"
# The decoders FFmpeg may open for those codecs while it probes a file (codec_whitelist; decoder names).
ACCEPTED_DECODERS: tuple[str, ...] = (
    "h264", "hevc", "vp8", "vp9", "libvpx", "libvpx-vp9", "libdav1d", "mpeg4", "mjpeg", "mpeg1video",
    "mpeg2video",
)


@dataclass(frozen=True)
class VideoLimits:
    """Limits of one decode. Build it with from_settings(settings); defaults equal the settings' defaults."""

    max_bytes: int = 256 * 1024**2
    max_frames: int = 3000
    max_duration_s: float = 600.0
    max_pixels: int = 4096 * 2160
    max_store_bytes: int = 8 * 1024**3
    decode_timeout_s: float = 300.0
    decoder_memory_bytes: int = 3 * 1024**3
    # Decoding threads in the child: enough to keep up with one model, few enough to leave the server's cores.
    decoder_threads: int = 2
    # The setting named when max_frames is exceeded (interactive sessions have a tighter limit of their own).
    frames_setting: str = "SAM3_VIDEO_MAX_FRAMES"

    @classmethod
    def from_settings(cls, settings: Any) -> "VideoLimits":
        """Read the video_* fields of sam3_api.config.Settings (duck-typed: media does not import config)."""
        return cls(
            max_bytes=settings.video_max_bytes,
            max_frames=settings.video_max_frames,
            max_duration_s=settings.video_max_duration_s,
            max_pixels=settings.video_max_pixels,
            max_store_bytes=settings.video_max_store_bytes,
            decode_timeout_s=settings.video_decode_timeout_s,
            decoder_memory_bytes=settings.video_decoder_memory_bytes,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VideoLimits":
        return cls(**data)


@dataclass(frozen=True)
class FrameSelection:
    """Keep source frames start_frame, start_frame + frame_stride, ... up to end_frame (inclusive).

    Invalid values raise InvalidPrompt (422) naming the field, at construction.
    """

    start_frame: int = 0
    end_frame: int | None = None
    stride: int = 1

    def __post_init__(self) -> None:
        _require_int("start_frame", self.start_frame, minimum=0)
        _require_int("frame_stride", self.stride, minimum=1)
        if self.end_frame is not None:
            _require_int("end_frame", self.end_frame, minimum=0)
            if self.end_frame < self.start_frame:
                raise InvalidPrompt(
                    f"end_frame {self.end_frame} is before start_frame {self.start_frame}; "
                    "end_frame is the last frame to process (inclusive) and must be >= start_frame",
                    field="end_frame",
                )

    def keeps(self, index: int) -> bool:
        """Whether source frame `index` is processed."""
        if index < self.start_frame or (self.end_frame is not None and index > self.end_frame):
            return False
        return (index - self.start_frame) % self.stride == 0

    def kept_count(self, source_frames: int) -> int:
        """How many frames are kept from a source of `source_frames` frames."""
        last = source_frames - 1 if self.end_frame is None else min(self.end_frame, source_frames - 1)
        return 0 if last < self.start_frame else (last - self.start_frame) // self.stride + 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FrameSelection":
        return cls(**data)


def _require_int(field: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidPrompt(f"{field} must be an integer >= {minimum}, got {value!r}", field=field)


def check_video_size(num_bytes: int, limits: VideoLimits) -> None:
    """Refuse an empty or oversized video before anything decodes it (use it while an upload streams in)."""
    if num_bytes > limits.max_bytes:
        raise VideoTooLarge(
            f"video is {num_bytes} bytes, over the limit of {limits.max_bytes} bytes (SAM3_VIDEO_MAX_BYTES); "
            "send a shorter or more compressed clip"
        )
    if num_bytes == 0:
        raise InvalidVideo("video is empty (0 bytes)")


def too_many_frames(frames: int, limits: VideoLimits, *, declared: bool) -> VideoTooLarge:
    origin = "the file's header declares" if declared else "decoding found more than"
    return VideoTooLarge(
        f"{origin} {frames} frames to process, over the limit of {limits.max_frames} ({limits.frames_setting}); "
        "process part of the clip with start_frame / end_frame, skip frames with frame_stride, or raise the limit"
    )


def too_long(seconds: float, limits: VideoLimits, *, declared: bool) -> VideoTooLarge:
    origin = "the file's header declares" if declared else "decoding reached"
    return VideoTooLarge(
        f"{origin} {seconds:.1f} s of video, over the limit of {limits.max_duration_s:g} s "
        "(SAM3_VIDEO_MAX_DURATION_S); cut the clip or set end_frame to stop earlier"
    )


def too_many_pixels(width: int, height: int, limits: VideoLimits) -> VideoTooLarge:
    return VideoTooLarge(
        f"video frames are {width}x{height} = {width * height} pixels, over the limit of {limits.max_pixels} "
        "pixels (SAM3_VIDEO_MAX_PIXELS); downscale the video (e.g. to 1920x1080)"
    )


def too_much_store(needed: int, limits: VideoLimits) -> VideoTooLarge:
    return VideoTooLarge(
        f"the decoded frames need {needed} bytes or more, over the limit of {limits.max_store_bytes} bytes "
        "(SAM3_VIDEO_MAX_STORE_BYTES); process fewer frames (frame_stride, end_frame) or a smaller video"
    )


def cpu_seconds_backstop(limits: VideoLimits) -> int:
    """RLIMIT_CPU of the child: every decoder thread busy for the whole wall-clock deadline, plus start-up."""
    return int(math.ceil(limits.decode_timeout_s * (limits.decoder_threads + 1))) + 10
