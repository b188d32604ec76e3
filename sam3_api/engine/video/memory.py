"""Keep a video session's tracker state bounded: drop what the memory attention can no longer read.

transformers' video sessions keep every frame's tracker output (`output_dict_per_obj`): memory features,
low- and high-resolution masks, object pointers. For a frame f tracked in direction d the tracker reads:
- the non-conditioning outputs of frames f - d*k, k = 1 .. num_maskmem - 1 (spatial memories), and
  k = 1 .. max_object_pointers_in_encoder - 1 (object pointers);
- the conditioning (prompted or re-conditioned) outputs: the object pointers of every one of them, and the
  memory features of the `max_cond_frame_num` closest ones.
So a non-conditioning output farther than WINDOW frames behind every frame still to be tracked is never read
again; a conditioning output keeps its pointer for good but loses its heavy tensors once enough newer
conditioning frames shadow it; and the high-resolution masks are only ever read by the memory encoder inside
the call that produced them. Results stay bit-identical to keeping everything (the parity tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass

HEAVY_KEYS = ("maskmem_features", "maskmem_pos_enc", "pred_masks")


@dataclass(frozen=True)
class Pass:
    """Frames still to be tracked by one pass: from `start` towards `stop` (both inclusive), reverse or not."""

    start: int
    stop: int
    reverse: bool = False

    def reads(self, frame: int, window: int) -> bool:
        """Can a frame still to be tracked in this pass read `frame`'s output (at most `window` behind)?"""
        if self.reverse:  # tracked frames f in [stop, start]; reads frames f+1 .. f+window
            return self.stop + 1 <= frame <= self.start + window
        return self.start - window <= frame <= self.stop - 1


def memory_window(tracker_config) -> int:
    return max(tracker_config.num_maskmem - 1, tracker_config.max_object_pointers_in_encoder - 1)


def prune(session, remaining: list[Pass], tracker_config) -> None:
    """Drop every stored output no frame of the `remaining` passes can read (model thread only)."""
    window = memory_window(tracker_config)
    needed = lambda frame: any(p.reads(frame, window) for p in remaining)  # noqa: E731
    for outputs in session.output_dict_per_obj.values():
        for output in (*outputs["cond_frame_outputs"].values(), *outputs["non_cond_frame_outputs"].values()):
            output.pop("high_res_masks", None)
        stale = [frame for frame in outputs["non_cond_frame_outputs"] if not needed(frame)]
        for frame in stale:
            del outputs["non_cond_frame_outputs"][frame]
        _shed_shadowed_conditioning(outputs["cond_frame_outputs"], remaining, needed,
                                    tracker_config.max_cond_frame_num)


def _shed_shadowed_conditioning(cond: dict, remaining: list[Pass], needed, max_cond: int) -> None:
    """Keep every conditioning frame's object pointer; drop memory features that can never be selected again.

    Only forward passes re-condition (text tracking), so a conditioning frame c is shadowed when every pass
    still to run is forward and at least `max_cond` newer conditioning frames lie between c and where the
    passes start: for every frame still to come, those are closer, so c is never among the selected.
    """
    if max_cond < 0 or len(cond) <= max_cond or not remaining or any(p.reverse for p in remaining):
        return
    first = min(p.start for p in remaining)
    frames = sorted(cond)
    for position, frame in enumerate(frames):
        newer = sum(1 for other in frames[position + 1:] if other <= first)
        if newer >= max_cond and not needed(frame):
            for key in HEAVY_KEYS:
                cond[frame].pop(key, None)
