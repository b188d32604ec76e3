"""The order in which a video run visits frames, and which sessions each visit feeds.

Picked objects are first prompted on their frames (transformers' add-inputs-then-forward), then propagated:
`backward` from the last prompted frame down to the first frame of the run, `forward` from the first prompted
frame to the end, and `both` (the default) backward from the first prompted frame, then forward from it.
Backward goes first so that results can stream in frame order early: after the backward pass every frame up
to the first prompt is done. Text concepts are detected and tracked on every frame, forward; in a run with
both, the forward pass feeds the two sessions from one backbone pass per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .memory import Pass

DIRECTIONS = ("forward", "backward", "both")


@dataclass
class Visit:
    """One frame step: the frame, its direction, and which sessions it feeds."""

    frame: int
    reverse: bool
    objects: bool
    text: bool
    emit_objects: bool  # the first visit of a frame reports its objects; a later visit only updates the state
    pass_index: int


@dataclass
class Plan:
    visits: list[Visit]
    passes: list[Pass]  # one per object pass, in order (memory pruning looks at those still to come)
    contributors: dict[int, set[str]] = field(default_factory=dict)  # frame -> sessions that report it

    def remaining_object_passes(self, position: int) -> list[Pass]:
        """Object passes from visit `position` on: the current pass from its next frame, then the later ones."""
        remaining: dict[int, Pass] = {}
        for visit in self.visits[position:]:
            if visit.objects and visit.pass_index not in remaining:
                full = self.passes[visit.pass_index]
                remaining[visit.pass_index] = Pass(visit.frame, full.stop, full.reverse)
        return list(remaining.values())


def build_plan(frame_count: int, prompted: list[int], direction: str, has_text: bool) -> Plan:
    """Visits for a run of `frame_count` frames with objects prompted on `prompted` frames."""
    backward, forward = _object_ranges(frame_count, prompted, direction)
    passes = [Pass(backward[0], backward[-1], True)] if backward else []
    passes += [Pass(forward[0], forward[-1], False)] if forward else []
    visits = [Visit(f, True, True, False, True, 0) for f in backward]
    seen = set(backward)
    forward_set = set(forward)
    for frame in range(frame_count) if has_text else forward:
        objects = frame in forward_set
        visits.append(Visit(frame, False, objects, has_text, objects and frame not in seen, len(passes) - 1))
    contributors = {f: set() for f in range(frame_count)}
    for frame in seen | forward_set:
        contributors[frame].add("objects")
    if has_text:
        for frame in range(frame_count):
            contributors[frame].add("text")
    return Plan(visits, passes, contributors)


def _object_ranges(frame_count: int, prompted: list[int], direction: str) -> tuple[list[int], list[int]]:
    if not prompted:
        return [], []
    first, last = min(prompted), max(prompted)
    backward_from = last if direction == "backward" else first
    backward = list(range(backward_from, -1, -1)) if direction in ("backward", "both") else []
    forward = list(range(first, frame_count)) if direction in ("forward", "both") else []
    return backward, forward
