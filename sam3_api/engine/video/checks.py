"""Validation of a video request against its clip: one place, one wording, field names clients can act on."""

from __future__ import annotations

from ...errors import InvalidPrompt
from .. import prompts
from .objects import ObjectPrompt
from .plan import DIRECTIONS


def check_video_request(request, frame_count: int, width: int, height: int, *, max_objects: int, max_texts: int,
                        max_text_length: int, max_points: int):
    """Raise InvalidPrompt (422) naming the field for anything the run could not do; return the cleaned request."""
    from .run import VideoRequest

    if request.direction not in DIRECTIONS:
        raise InvalidPrompt(f"direction must be one of {', '.join(DIRECTIONS)}, got {request.direction!r}",
                            field="direction")
    if not request.texts and not request.objects:
        raise InvalidPrompt("nothing to track: give texts (concepts to find) and/or objects (boxes or points "
                            "on a frame)", field="objects")
    prompts.check_count(len(request.texts), max_texts, "texts")
    if len(request.objects) > max_objects:
        raise InvalidPrompt(f"objects has {len(request.objects)} entries; the limit is {max_objects} "
                            "(SAM3_VIDEO_MAX_OBJECTS)", field="objects")
    texts = [prompts.check_text(text, max_text_length, f"texts[{i}]") for i, text in enumerate(request.texts)]
    objects = [_check_object(obj, i, frame_count, width, height, max_points) for i, obj in enumerate(request.objects)]
    ids = [obj.object_id for obj in objects]
    if len(set(ids)) != len(ids):
        raise InvalidPrompt(f"object_id values must be unique, got {ids}; one prompt per object", field="objects")
    for name in ("mask_threshold", "confidence_threshold"):
        value = getattr(request, name)
        if value is not None:
            prompts.check_threshold(value, name)
    return VideoRequest(texts=texts, objects=objects, direction=request.direction,
                        mask_threshold=request.mask_threshold, confidence_threshold=request.confidence_threshold)


def _check_object(obj: ObjectPrompt, index: int, frame_count: int, width: int, height: int,
                  max_points: int) -> ObjectPrompt:
    field = f"objects[{index}]"
    if obj.object_id < 1:
        raise InvalidPrompt(f"{field}.object_id must be a positive integer, got {obj.object_id}", field=field)
    if not 0 <= obj.frame < frame_count:
        raise InvalidPrompt(f"{field}.frame_index is outside the {frame_count} processed frames", field=field)
    if obj.box is None and not obj.points:
        raise InvalidPrompt(f"{field} needs a box [x1, y1, x2, y2] and/or points [[x, y], ...]", field=field)
    box = None if obj.box is None else prompts.check_box(obj.box, width, height, f"{field}.box")
    points = labels = None
    if obj.points:
        prompts.check_count(len(obj.points), max_points, f"{field}.points")
        points = prompts.check_points(obj.points, width, height, f"{field}.points")
        labels = prompts.check_labels(obj.labels if obj.labels is not None else [1] * len(points), len(points),
                                      f"{field}.labels")
    return ObjectPrompt(obj.object_id, obj.frame, box=box, points=points, labels=labels)
