"""A /ws/video session's propagation: one task that advances the engine's stepper a frame at a time and sends
each finished frame (COCO RLE masks) with the progress, then propagation_done.

It runs beside the socket's receive loop, so messages keep being read (cancel, get_frame, ping) while it
runs; a cancel is seen before the next frame step, so it stops within one step. Each step is one job on the
model thread at heavy priority: clicks of other sessions and image requests go between frames.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ..errors import Sam3Error
from . import ws_video_protocol as proto

log = logging.getLogger(__name__)


def objects_out(result) -> list[proto.FrameObjectOut]:
    """An engine FrameResult's objects as event fields."""
    return [proto.FrameObjectOut(object_id=o.object_id, score=o.score, box=o.box, mask=o.mask)
            for o in result.objects]


class Propagator:
    """At most one propagation at a time; `cancel()` asks it to stop and waits until it has."""

    def __init__(self, engine, send: Callable[[proto.Event], Awaitable[None]]):
        self.engine, self.send = engine, send
        self.task: asyncio.Task | None = None
        self._stop = False

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, stepper) -> None:
        self._stop = False
        self.task = asyncio.create_task(self._run(stepper), name="ws-video-propagation")

    async def cancel(self, timeout: float | None = None) -> bool:
        """Stop before the next frame step; True once the task has ended (False: still in a step at timeout)."""
        self._stop = True
        if self.task is not None and not self.task.done():
            await asyncio.wait({self.task}, timeout=timeout)
        return not self.running

    async def _run(self, stepper) -> None:
        started, status, error = time.perf_counter(), "finished", None
        try:
            while not stepper.done:
                if self._stop:
                    status = "cancelled"
                    break
                for result in await self.engine.video_step(stepper):
                    await self.send(proto.FrameResult(frame=result.frame, source="propagation",
                                                      objects=objects_out(result), frames_done=stepper.frames_done,
                                                      frames_total=stepper.frames_total))
        except Sam3Error as exc:  # engine busy, out of memory, model not ready: the session goes on
            status, error = "failed", exc.message
        except Exception:
            log.exception("propagation failed")
            status, error = "failed", "internal error while tracking; the traceback is in the server log"
        elapsed = max(time.perf_counter() - started, 1e-6)
        await self.send(proto.PropagationDone(status=status, frames_done=stepper.frames_done,
                                              frames_total=stepper.frames_total,
                                              fps=round(stepper.frames_done / elapsed, 3), error=error))
