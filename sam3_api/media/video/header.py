"""Opening an untrusted file and judging its header. Runs ONLY in the decoder child process.

Order: container allow-list (FFmpeg format_whitelist, so other demuxers never parse the file), a video
stream, codec allow-list, then the header's resolution, frame count and duration against the limits: a
header that already shows an excess (10**6 frames, 8K) is refused before a frame is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

from sam3_api.errors import InvalidPrompt, InvalidVideo
from sam3_api.media.video import limits as lim
from sam3_api.media.video.limits import FrameSelection, VideoLimits

_MAX_SANE_FPS = 1000.0


@dataclass(frozen=True)
class Header:
    """What the container claims, before any frame is decoded."""

    container: str
    codec: str
    width: int
    height: int
    fps: float | None
    declared_frames: int | None
    duration_s: float | None

    def estimated_frames(self) -> int | None:
        if self.declared_frames:
            return self.declared_frames
        if self.duration_s and self.fps:
            return int(round(self.duration_s * self.fps))
        return None


def open_video(source: str) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open source with only the accepted demuxers and decoders; return it and its video stream."""
    try:
        container = av.open(
            source,
            mode="r",
            container_options={
                "format_whitelist": ",".join(lim.ACCEPTED_CONTAINERS),
                "codec_whitelist": ",".join(lim.ACCEPTED_DECODERS),
            },
        )
    except av.error.FFmpegError as exc:
        raise InvalidVideo(
            f"the file could not be opened as a video ({exc.strerror}); send {lim.ACCEPTED_CONTAINERS_TEXT} "
            "with a video track, complete and undamaged"
        ) from None
    try:
        return container, _video_stream(container)
    except BaseException:
        container.close()
        raise


def _video_stream(container) -> av.video.stream.VideoStream:
    if not set(container.format.name.split(",")) & set(lim.ACCEPTED_CONTAINERS):
        raise InvalidVideo(
            f"container {container.format.name!r} is not accepted; send {lim.ACCEPTED_CONTAINERS_TEXT}"
        )
    # Cover art (MP4 / Matroska "attached pictures") is a one-picture video stream: not a video.
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        kinds = sorted({stream.type for stream in container.streams}) or ["no streams"]
        raise InvalidVideo(
            f"the file has no video stream (it holds: {', '.join(kinds)}); an audio-only file cannot be "
            "segmented, send a video"
        )
    stream = streams[0]
    codec = _codec_name(stream)
    if codec not in lim.ACCEPTED_CODECS:
        raise InvalidVideo(f"video codec {codec!r} is not accepted; send {lim.ACCEPTED_CODECS_TEXT}")
    return stream


def _codec_name(stream) -> str:
    context = stream.codec_context
    if context is None or context.codec is None:
        return "unknown"
    return context.codec.canonical_name


def read_header(container, stream) -> Header:
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base  # the container's duration covers every stream
    return Header(
        container=container.format.name,
        codec=_codec_name(stream),
        width=int(stream.codec_context.width or 0),
        height=int(stream.codec_context.height or 0),
        fps=sane_rate(stream.average_rate) or sane_rate(stream.guessed_rate),
        declared_frames=int(stream.frames) or None,
        duration_s=duration,
    )


def sane_rate(rate) -> float | None:
    if rate is None or rate <= 0 or rate > _MAX_SANE_FPS:
        return None
    return float(rate)


def check_header(header: Header, limits: VideoLimits, selection: FrameSelection) -> None:
    """Refuse at once what the header already shows to be over a limit (or a selection past the end)."""
    if header.width * header.height > limits.max_pixels:
        raise lim.too_many_pixels(header.width, header.height, limits)
    frames = header.estimated_frames()
    if frames is not None:
        kept = selection.kept_count(frames)
        if kept > limits.max_frames:
            raise lim.too_many_frames(kept, limits, declared=True)
        if kept * header.width * header.height * 3 > limits.max_store_bytes:
            raise lim.too_much_store(kept * header.width * header.height * 3, limits)
    if header.declared_frames and selection.start_frame >= header.declared_frames:
        raise start_past_end(selection, header.declared_frames)
    span = header.duration_s
    if span is not None and selection.end_frame is not None and header.fps:
        span = min(span, (selection.end_frame + 1) / header.fps)  # decoding stops after end_frame
    if span is not None and span > limits.max_duration_s:
        raise lim.too_long(span, limits, declared=True)


def start_past_end(selection: FrameSelection, frames: int) -> InvalidPrompt:
    return InvalidPrompt(
        f"start_frame {selection.start_frame} is past the last frame: the video has {frames} frames "
        f"(0..{frames - 1})",
        field="start_frame",
    )

