"""Decoding frames under limits with PyAV. Runs ONLY in the decoder child process (worker.py).

After header.py has accepted the file, every decoded frame is checked against max_pixels, max_duration_s
(frame timestamps), max_frames and the store budget, stopping at the first excess (headers lie). Kept
frames are turned for display (the container's rotation) and written to frames.raw one by one.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from sam3_api.errors import InvalidVideo
from sam3_api.media.video import limits as lim
from sam3_api.media.video.header import (
    Header,
    check_header,
    open_video,
    read_header,
    sane_rate,
    start_past_end,
)
from sam3_api.media.video.info import VideoInfo, VideoProbe
from sam3_api.media.video.limits import FrameSelection, VideoLimits
from sam3_api.media.video.store import FRAMES_FILE

_FALLBACK_FPS = 30.0  # when neither the header nor the timestamps give a usable rate
# Truncation tolerance. A container index (MP4 sample table, AVI header) counts frames exactly, but edit
# lists and decoder delay may drop a few: missing more than max(2, 10 %) of them means a cut file. A mere
# duration (Matroska / WebM) is vaguer, and audio can outlast video: below half of duration x fps.
_INDEX_MISSING_FRACTION = 0.10
_DURATION_FOUND_FRACTION = 0.5


class FrameReader:
    """Decodes the kept frames as displayed RGB arrays, enforcing the limits frame by frame."""

    def __init__(self, container, stream, header: Header, limits: VideoLimits, selection: FrameSelection):
        self.container, self.stream, self.header = container, stream, header
        self.limits, self.selection = limits, selection
        self.decoded = 0  # source frames decoded so far
        self.kept = 0
        self.reached_end = False  # True when the stream ended (not stopped at end_frame)
        self.size: tuple[int, int] | None = None  # coded (width, height) of the first frame
        self.rotation = 0
        self._first_time: float | None = None
        self._last_time: float | None = None
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = limits.decoder_threads

    def frames(self) -> Iterator[np.ndarray]:
        """Yield each kept frame (H, W, 3) uint8, rotated for display and at the first frame's size."""
        try:
            for frame in self.container.decode(self.stream):
                index = self.decoded
                self.decoded += 1
                self._check_frame(frame, index)
                if self.selection.keeps(index):
                    self._count_kept()
                    yield self._to_rgb(frame)
                if self.selection.end_frame is not None and index >= self.selection.end_frame:
                    return
        except MemoryError:
            raise
        except av.error.FFmpegError as exc:
            if exc.errno in (errno.ENOMEM, errno.EAGAIN):
                # FFmpeg could not allocate a buffer or start a decoding thread: RLIMIT_AS, not the file.
                raise MemoryError(str(exc)) from None
            raise InvalidVideo(
                f"decoding failed after {self.decoded} frames ({exc.strerror}): the file is truncated or "
                "corrupt; re-export or re-upload the complete video"
            ) from None
        self.reached_end = True

    def _check_frame(self, frame, index: int) -> None:
        if frame.width * frame.height > self.limits.max_pixels:
            raise lim.too_many_pixels(frame.width, frame.height, self.limits)
        seconds = self._seconds(frame, index)
        if seconds > self.limits.max_duration_s:
            raise lim.too_long(seconds, self.limits, declared=False)

    def _seconds(self, frame, index: int) -> float:
        """Time of this frame since the first one: its timestamp, else its index over the frame rate."""
        if frame.time is None:
            return index / (self.header.fps or _FALLBACK_FPS)
        if self._first_time is None:
            self._first_time = frame.time
        self._last_time = frame.time
        return frame.time - self._first_time

    def _count_kept(self) -> None:
        self.kept += 1
        if self.kept > self.limits.max_frames:
            raise lim.too_many_frames(self.limits.max_frames, self.limits, declared=False)

    def _to_rgb(self, frame) -> np.ndarray:
        if self.size is None:
            self.size = (frame.width, frame.height)
            self.rotation = int(round((frame.rotation or 0) / 90.0)) % 4 * 90
        needed = self.kept * self.size[0] * self.size[1] * 3
        if needed > self.limits.max_store_bytes:
            raise lim.too_much_store(needed, self.limits)
        # Frames of another size (a mid-stream resolution change) are scaled to the first frame's size.
        rgb = frame.to_ndarray(format="rgb24", width=self.size[0], height=self.size[1])
        if self.rotation:
            # The display matrix rotates counter-clockwise by `rotation` degrees; so does np.rot90.
            rgb = np.rot90(rgb, self.rotation // 90)
        return np.ascontiguousarray(rgb)

    def measured_fps(self) -> float | None:
        if self._first_time is None or self._last_time is None or self.decoded < 2:
            return None
        span = self._last_time - self._first_time
        return sane_rate((self.decoded - 1) / span) if span > 0 else None

    def check_complete(self) -> None:
        """After the stream ended: frames were found, enough of them, and the selection reached them."""
        if self.decoded == 0:
            raise InvalidVideo("the video stream has no decodable frames; send a video with at least one frame")
        declared, duration, fps = self.header.declared_frames, self.header.duration_s, self.header.fps
        if declared and declared - self.decoded > max(2, int(declared * _INDEX_MISSING_FRACTION)):
            raise _truncated(f"its header declares {declared} frames but only {self.decoded} could be decoded")
        if not declared and duration and fps and self.decoded < duration * fps * _DURATION_FOUND_FRACTION:
            raise _truncated(f"its header declares {duration:.1f} s but only {self.decoded} frames were found")
        if self.kept == 0:
            raise start_past_end(self.selection, self.decoded)


def _truncated(detail: str) -> InvalidVideo:
    return InvalidVideo(f"the video is truncated or corrupt: {detail}; re-export or re-upload the complete file")


def decode_to_store(source: str, store_dir: str, limits: VideoLimits, selection: FrameSelection) -> VideoInfo:
    """Decode the kept frames of source into store_dir/frames.raw; return what was stored."""
    container, stream = open_video(source)
    with container:
        header = read_header(container, stream)
        check_header(header, limits, selection)
        reader = FrameReader(container, stream, header, limits, selection)
        with open(Path(store_dir) / FRAMES_FILE, "wb") as out:
            for rgb in reader.frames():
                out.write(rgb.data)
        if reader.reached_end:
            reader.check_complete()
    return _video_info(header, reader, selection)


def _video_info(header: Header, reader: FrameReader, selection: FrameSelection) -> VideoInfo:
    fps = header.fps or reader.measured_fps() or _FALLBACK_FPS
    source_frames = reader.decoded if reader.reached_end else header.declared_frames
    width, height = reader.size
    if reader.rotation in (90, 270):
        width, height = height, width
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frame_count=reader.kept,
        start_frame=selection.start_frame,
        frame_stride=selection.stride,
        duration_s=header.duration_s or (source_frames or reader.decoded) / fps,
        container=header.container,
        codec=header.codec,
        rotation=reader.rotation,
        source_frame_count=source_frames,
        end_frame=selection.end_frame,
    )


def probe(source: str, limits: VideoLimits, selection: FrameSelection) -> VideoProbe:
    """Header checks (for this selection) plus the first frame, decoded: proves the stream decodes and
    gives its real size."""
    container, stream = open_video(source)
    with container:
        header = read_header(container, stream)
        check_header(header, limits, selection)
        reader = FrameReader(container, stream, header, limits, FrameSelection(end_frame=0))
        frames = reader.frames()
        first = next(frames, None)
        frames.close()
        if first is None:
            raise InvalidVideo("the video stream has no decodable frames; send a video with at least one frame")
    return VideoProbe(
        width=int(first.shape[1]),
        height=int(first.shape[0]),
        fps=header.fps or _FALLBACK_FPS,
        declared_frames=header.declared_frames,
        duration_s=header.duration_s,
        container=header.container,
        codec=header.codec,
        rotation=reader.rotation,
    )
