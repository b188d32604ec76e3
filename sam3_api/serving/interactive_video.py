"""What an interactive-video request means (/ws/video): which engine call an object's prompt on a frame becomes,
and how the instances of a concept are fitted to the session's object limit. Surface-neutral: the socket
keeps the prompts (api/ws_video_state.py) and renders the results.
"""

from __future__ import annotations

from ..engine.video import FrameResult
from .defaults import MASK_THRESHOLD, TEXT_CONFIDENCE


def open_video(engine, reader):
    """A session's interactive video over decoded frames, cut into masks at the default mask threshold."""
    return engine.interactive_video(reader, MASK_THRESHOLD)


async def apply_prompt(engine, video, object_id: int, frame: int, prompt) -> FrameResult:
    """An object's whole prompt on a frame (points with labels and/or one box: the engine replaces what it had
    there), or None once its last prompt there was undone: then the frame's prompt is cleared, and the object
    goes if nothing else is left of it."""
    if prompt is None:
        return await engine.video_clear_prompt(video, object_id, frame)
    return await engine.video_prompt(video, object_id, frame, prompt.points or None, prompt.labels or None,
                                     prompt.box)


async def find_concept(engine, video, frame: int, text: str, *, next_id: int, room: int,
                       confidence: float | None = None) -> tuple[list[int], FrameResult]:
    """Every instance of `text` on `frame` becomes an object (ids from `next_id`); beyond `room` objects the
    surplus (the highest ids) are removed again, so the lowest ids stay."""
    cut = TEXT_CONFIDENCE if confidence is None else confidence
    found, result = await engine.video_add_concept(video, frame, text, cut, next_id)
    for surplus in found[room:]:
        await engine.video_remove(video, surplus)
    if len(found) > room:
        found, result = found[:room], video.frame_result(frame)
    return found, result
