"""Translation between a video job's manifest and the engine: frames on disk, requests, result lines.

Clients speak original frame numbers (frame_index in the source video); the engine numbers the frames of
its run 0..N-1 (after start_frame and frame_stride). The mapping is VideoInfo.source_index (media.video); the
helpers here apply it to a job's manifest and result lines.
"""

from __future__ import annotations

from pathlib import Path

from ..engine.video import FrameResult, ObjectPrompt, VideoRequest
from ..media.video import FrameStore

FRAMES_DIR = "frames"


class StoreFrames:
    """engine.video.FrameReader over a decoded FrameStore."""

    def __init__(self, store: FrameStore):
        self.store = store
        self.height, self.width = store.info.height, store.info.width

    def __len__(self) -> int:
        return len(self.store)

    def read_range(self, start: int, stop: int):
        return self.store.read_range(start, stop)


def open_frames(job_dir: Path) -> FrameStore:
    return FrameStore(Path(job_dir) / FRAMES_DIR)


def original_index(video: dict, frame: int) -> int:
    return video["start_frame"] + frame * video["frame_stride"]


def run_request(request: dict) -> VideoRequest:
    """The manifest's request (validated, its defaults filled in by serving/video_jobs.py) as a VideoRequest."""
    objects = [ObjectPrompt(o["object_id"], o["frame"], box=o.get("box"), points=o.get("points"),
                            labels=o.get("labels")) for o in request.get("objects", [])]
    return VideoRequest(texts=list(request.get("texts", [])), objects=objects,
                        direction=request.get("direction", "both"),
                        mask_threshold=request["mask_threshold"],
                        confidence_threshold=request.get("confidence_threshold"))


def frame_line(result: FrameResult, info) -> dict:
    """One NDJSON line: {"frame_index", "objects": [{"object_id", "score", "box", "mask"}]} (mask: COCO RLE)."""
    return {
        "frame_index": info.start_frame + result.frame * info.frame_stride,
        "objects": [{"object_id": o.object_id, "score": o.score, "box": o.box, "mask": o.mask}
                    for o in result.objects],
    }


def object_entry(entry: dict, video: dict | None) -> dict:
    """A run's catalog entry with its frame as an original frame index."""
    frame = entry.get("frame")
    frame_index = None if frame is None or video is None else original_index(video, frame)
    return {"object_id": entry["object_id"], "prompt": entry["prompt"], "kind": entry["kind"],
            "frame_index": frame_index}
