"""Video files for the whole test suite, generated on the fly (deterministic, each well under a second).

make_video() writes a clip with a bright square moving over a textured background; square_box() says
where the square is in each frame, so a test can check pixels. The other writers make the bad inputs:
a truncated MP4, a PNG, an audio-only MP4, an AVI with a video stream and no frames, an AVI whose header
lies about its frame count (e.g. 10**6), an AVI whose header and frames are 8K (7680x4320, ~1 KB), and
a Motion-JPEG AVI whose frames change size mid-stream. Every writer takes a path and returns it;
video_bytes() returns make_video's file as bytes.
"""

from __future__ import annotations

import struct
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".ts": "mpegts"}
SQUARE_VALUE = 255  # the square is white; the background stays within 40..118


def square_box(index: int, size: tuple[int, int] = (160, 120), square: int = 24) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the square in frame `index` (x2, y2 exclusive): 2 px right and 1 px down a frame."""
    width, height = size
    x = 4 + (2 * index) % max(1, width - square - 8)
    y = 4 + index % max(1, height - square - 8)
    return x, y, x + square, y + square


def frame_pixels(index: int, size: tuple[int, int] = (160, 120), square: int = 24) -> np.ndarray:
    """The RGB picture of frame `index`: a checkerboard-and-ramp texture with the white square on it."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    texture = 40 + ((xs // 8 + ys // 8) % 2) * 30 + (xs * 48 // max(width, 1))
    image = np.repeat(texture[:, :, None], 3, axis=2).astype(np.uint8)
    image[:, :, 2] = image[:, :, 0] // 2  # some colour, so channel order mistakes show
    x1, y1, x2, y2 = square_box(index, size, square)
    image[y1:y2, x1:x2] = SQUARE_VALUE
    return image


def make_video(
    path: Path | str,
    frames: int = 48,
    size: tuple[int, int] = (160, 120),
    fps: float = 24,
    *,
    codec: str = "libx264",
    rotation: int | None = None,
    faststart: bool = True,
    square: int = 24,
    audio: bool = False,
) -> Path:
    """Write the moving-square clip; the container follows the suffix (.mp4, .mov, .mkv, .webm, .avi, .ts).

    rotation: display rotation in degrees counter-clockwise, stored as the container's display matrix
    (a phone held upright records landscape frames with rotation=-90). audio=True adds a silent AAC track.
    """
    path = Path(path)
    muxer = _FORMATS[path.suffix.lower()]
    options = {"movflags": "+faststart"} if faststart and muxer in ("mp4", "mov") else {}
    with av.open(str(path), mode="w", format=muxer, options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=16000) if audio else None  # streams first, then packets
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_pixels(index, size, square), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            _mux_tone(container, sound, np.zeros(int(frames / fps * 16000), np.float32))
    return path


def _mux_tone(container, stream, samples: np.ndarray) -> None:
    """Encode mono float samples at the stream's rate, 1024 per AAC frame."""
    for start in range(0, len(samples), 1024):
        chunk = np.zeros((1, 1024), np.float32)
        piece = samples[start : start + 1024]
        chunk[0, : len(piece)] = piece
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = stream.rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def video_bytes(**kwargs) -> bytes:
    """make_video(...)'s file as bytes (suffix= picks the container, default .mp4)."""
    suffix = kwargs.pop("suffix", ".mp4")
    with tempfile.TemporaryDirectory() as folder:
        return make_video(Path(folder) / f"clip{suffix}", **kwargs).read_bytes()


def write_truncated_mp4(path: Path | str, keep: float = 0.6) -> Path:
    """A faststart MP4 (index first) cut after `keep` of its bytes: the index promises frames that are gone."""
    path = Path(path)
    data = video_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_png(path: Path | str) -> Path:
    ok, buffer = cv2.imencode(".png", frame_pixels(0))
    assert ok
    Path(path).write_bytes(buffer.tobytes())
    return Path(path)


def write_audio_only(path: Path | str, seconds: float = 0.25, rate: int = 16000) -> Path:
    """An MP4 with one AAC audio track and no video."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        tone = np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 440 / rate).astype(np.float32)
        _mux_tone(container, stream, tone)
    return Path(path)


def write_zero_frame_avi(path: Path | str) -> Path:
    """An AVI with a Motion-JPEG video stream in its header and not a single frame."""
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        container.start_encoding()  # write the header although nothing is muxed
    return Path(path)


def write_mjpeg_avi(path: Path | str, sizes: list[tuple[int, int]], fps: int = 24) -> Path:
    """A Motion-JPEG AVI with one frame per entry of `sizes` (width, height): sizes may change mid-stream."""
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height, stream.pix_fmt = *sizes[0], "yuvj420p"
        for index, size in enumerate(sizes):
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame_pixels(index, size, 8), cv2.COLOR_RGB2BGR))
            assert ok
            _mux_bytes(container, stream, jpeg.tobytes(), index)
    return Path(path)


def write_lying_avi(path: Path | str, claimed_frames: int, frames: int = 10) -> Path:
    """A Motion-JPEG AVI of `frames` frames whose headers (avih and strh) claim `claimed_frames`."""
    path = write_mjpeg_avi(path, [(160, 120)] * frames)
    data = bytearray(path.read_bytes())
    avih, strh = data.index(b"avih"), data.index(b"strh")
    struct.pack_into("<I", data, avih + 8 + 16, claimed_frames)  # MainAVIHeader.dwTotalFrames
    struct.pack_into("<I", data, strh + 8 + 32, claimed_frames)  # AVIStreamHeader.dwLength
    path.write_bytes(bytes(data))
    return path


def write_8k_avi(path: Path | str, frames: int = 2) -> Path:
    """A tiny AVI whose header and JPEG frames say 7680x4320 (a 16x16 JPEG with its size field patched)."""
    ok, jpeg = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    assert ok
    data = bytearray(jpeg.tobytes())
    sof = data.index(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height (2), width (2)
    struct.pack_into(">HH", data, sof + 5, 4320, 7680)
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=24)
        stream.width, stream.height, stream.pix_fmt = 7680, 4320, "yuvj420p"
        for index in range(frames):
            _mux_bytes(container, stream, bytes(data), index)
    return Path(path)


def _mux_bytes(container, stream, payload: bytes, index: int) -> None:
    packet = av.Packet(payload)
    packet.stream, packet.pts, packet.dts = stream, index, index
    container.mux(packet)


def write_flat_mjpeg_avi(path: Path | str, size: tuple[int, int], frames: int = 1, value: int = 128) -> Path:
    """A Motion-JPEG AVI of real, uniformly grey frames of `size` (cheap to make even at 8K: ~0.2 s, ~0.5 MB)."""
    ok, jpeg = cv2.imencode(".jpg", np.full((size[1], size[0], 3), value, np.uint8))
    assert ok
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=24)
        stream.width, stream.height, stream.pix_fmt = *size, "yuvj420p"
        for index in range(frames):
            _mux_bytes(container, stream, jpeg.tobytes(), index)
    return Path(path)
