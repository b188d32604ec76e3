"""Untrusted video in, frames on disk; annotated MP4 out. Pure functions and classes: no FastAPI, no torch.

Decoding (decode.py) runs FFmpeg, through PyAV, in a child process (worker.py + demux.py) under hard
resource limits and a wall-clock deadline, and stores the kept frames as raw RGB on disk (store.py),
read back by FrameStore. Accepted input:

* containers: MP4 / MOV family (mov, mp4, m4v, 3gp), Matroska / WebM, AVI, MPEG-TS (FFmpeg
  format_whitelist; any other demuxer, e.g. HLS playlists or concat scripts, never parses the file);
* video codecs: H.264, H.265/HEVC, VP8, VP9, AV1 (libdav1d), MPEG-4 Part 2, Motion JPEG, MPEG-1/2 video.

Limits (VideoLimits, from the SAM3_VIDEO_* settings) are checked on the header first and again on every
decoded frame (headers lie). The display rotation of the container is applied, so coordinates are those
a browser shows. annotate.py writes H.264 / yuv420p / faststart MP4 with masks in each object's colour.
"""

from sam3_api.media.video.decode import decode_video, probe_video
from sam3_api.media.video.info import VideoInfo, VideoProbe
from sam3_api.media.video.limits import (
    ACCEPTED_CODECS,
    ACCEPTED_CONTAINERS,
    FrameSelection,
    VideoLimits,
    check_video_size,
)
from sam3_api.media.video.store import FrameStore

__all__ = [
    "ACCEPTED_CODECS",
    "ACCEPTED_CONTAINERS",
    "AnnotatedVideoWriter",
    "FrameSelection",
    "FrameStore",
    "VideoInfo",
    "VideoLimits",
    "VideoProbe",
    "check_video_size",
    "decode_video",
    "probe_video",
]


def __getattr__(name: str):
    # Imported on first use: the decoder child imports this package too, and OpenCV would add ~170 MB of
    # address space to a process whose address space is the limit (SAM3_VIDEO_DECODER_MEMORY_BYTES).
    if name == "AnnotatedVideoWriter":
        from sam3_api.media.video.annotate import AnnotatedVideoWriter

        return AnnotatedVideoWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
