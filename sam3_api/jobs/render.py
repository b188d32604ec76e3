"""The annotated MP4 of a finished video job: every frame with its objects' masks blended in their colours."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..media.masks import rle_to_mask
from ..media.video import AnnotatedVideoWriter
from .results import ResultsLog

VIDEO_FILE = "video.mp4"


def render_annotated_video(job_dir: Path, frames, results: ResultsLog) -> Path:
    """Write <job_dir>/video.mp4 (H.264, yuv420p, faststart), frame by frame in order; returns its path.

    Written to a temporary name and renamed, so a half-written file is never served.
    """
    info = frames.info
    target = Path(job_dir) / VIDEO_FILE
    partial = target.with_suffix(".partial.mp4")
    # The kept frames play at the source's speed: with frame_stride k, one stored frame stands for k.
    with AnnotatedVideoWriter(partial, info.width, info.height, info.output_fps) as writer:
        for frame in range(len(frames)):
            writer.write(frames.read(frame), frame_masks(results, info, frame))
    os.replace(partial, target)
    return target


def frame_masks(results: ResultsLog, info, frame: int) -> list[tuple[int, np.ndarray]]:
    """(object_id, bool mask) of every object on stored frame `frame` (none if the frame has no results)."""
    original = info.source_index(frame)
    objects = json.loads(results.read(original))["objects"] if original in results else []
    return [(o["object_id"], rle_to_mask(o["mask"], expected_size=(info.height, info.width))) for o in objects]
