"""Video tracking on the one loaded Sam3VideoModel: text concepts and picked objects, one frame per step.

    frames.py    chunked, lazily preprocessed frames (what transformers' sessions read)
    objects.py   boxes / points on any frame: the model's tracker fed by the shared backbone
    concepts.py  text prompts: transformers' Sam3VideoModel pipeline, stepped frame by frame
    memory.py    drops tracker state the memory attention can no longer read
    plan.py      which frames are visited in which order (backward, forward, both)
    run.py       VideoRun: prompts + plan + sessions; step() returns finished frames as COCO RLE
    checks.py    validation of a request against the clip (frames, sizes, counts)
"""

from .frames import ArrayFrames, FrameReader
from .objects import ObjectPrompt
from .plan import DIRECTIONS
from .run import FrameObject, FrameResult, VideoRequest, VideoRun

__all__ = ["ArrayFrames", "DIRECTIONS", "FrameObject", "FrameReader", "FrameResult", "ObjectPrompt", "VideoRequest",
           "VideoRun"]
