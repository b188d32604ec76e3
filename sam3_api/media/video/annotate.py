"""Annotated MP4 out: frames with each object's mask blended in its colour, H.264 / yuv420p / faststart.

Encoding our own (already decoded, trusted) frames needs no child process. The colour of an object is
masks.palette_colour(object_id), so it is the same in every frame and every job. Odd widths or heights
are padded by one replicated row / column: yuv420p needs even sizes, and browsers play nothing else.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import cv2
import numpy as np

from sam3_api.media.masks import label_mask, outline_mask, palette_colour, tint_mask


class AnnotatedVideoWriter:
    """`with AnnotatedVideoWriter(path, width, height, fps) as out: out.write(frame_rgb, [(object_id, mask)])`."""

    def __init__(
        self, path: Path | str, width: int, height: int, fps: float, *, alpha: float = 0.5, crf: int = 23,
        labels: bool = True,
    ):
        if width <= 0 or height <= 0 or not fps > 0:
            raise ValueError(f"need a positive size and frame rate, got {width}x{height} at {fps} fps")
        self.path, self.width, self.height = Path(path), width, height
        self.alpha, self.labels = alpha, labels
        self.frames_written = 0
        # Browsers and the mp4 muxer want a rational rate; 1001 keeps NTSC rates (30000/1001) exact.
        rate = Fraction(fps).limit_denominator(1001)
        # faststart: the muxer moves the index (moov) before the media data, so playback starts while the
        # file is still downloading.
        self._container = av.open(str(self.path), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream(
            "libx264", rate=rate, options={"crf": str(crf), "preset": "veryfast"}
        )
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"

    def write(self, frame_rgb: np.ndarray, masks: Sequence[tuple[int, np.ndarray]] = ()) -> None:
        """Append one frame with the given (object_id, bool mask of the frame's size) pairs drawn on it."""
        frame_rgb = np.asarray(frame_rgb)
        if frame_rgb.shape != (self.height, self.width, 3) or frame_rgb.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 ({self.height}, {self.width}, 3), got {frame_rgb.dtype} {frame_rgb.shape}"
            )
        canvas = annotate_frame(frame_rgb, masks, self.alpha, self.labels)
        if canvas.shape[:2] != (self._stream.height, self._stream.width):
            bottom, right = self._stream.height - self.height, self._stream.width - self.width
            canvas = cv2.copyMakeBorder(canvas, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")
        frame.pts = self.frames_written
        self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (writes the index; safe to call twice)."""
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> "AnnotatedVideoWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def annotate_frame(
    frame_rgb: np.ndarray, masks: Sequence[tuple[int, np.ndarray]], alpha: float = 0.5, labels: bool = True
) -> np.ndarray:
    """A copy of the RGB frame with each (object_id, bool mask) tinted and outlined in the object's colour
    (and labelled with its id when `labels`): the MP4's frames and seed 002's JPEG frames look alike."""
    canvas = frame_rgb.copy()
    checked = []
    for object_id, mask in masks:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != canvas.shape[:2]:
            raise ValueError(f"mask of object {object_id} has shape {mask.shape}, the frame is {canvas.shape[:2]}")
        checked.append((int(object_id), mask))
        tint_mask(canvas, mask, palette_colour(int(object_id)), alpha)
    # Outlines and labels after every fill, so a later object's tint never hides an earlier outline.
    for object_id, mask in checked:
        outline_mask(canvas, mask, palette_colour(object_id))
        if labels:
            label_mask(canvas, mask, str(object_id), palette_colour(object_id))
    return canvas
