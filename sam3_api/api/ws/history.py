"""One prompt history (undo) for both sockets: the order points and boxes came in, and the box each replaced.

An entry names where the prompt went (`where`: None on /ws/realtime's one image, the frame on /ws/video),
its kind ("point" or "box") and, for a box, the box it replaced; undo pops the last entry and the owner
takes back exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    where: Any  # None (one image) or a frame index
    kind: str  # "point" | "box"
    replaced_box: list[float] | None = None  # for a box: the box it replaced (None: there was none)


@dataclass
class PromptHistory:
    entries: list[Entry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def point(self, where: Any = None) -> None:
        self.entries.append(Entry(where, "point"))

    def box(self, replaced_box: list[float] | None, where: Any = None) -> None:
        self.entries.append(Entry(where, "box", replaced_box))

    def last(self) -> Entry | None:
        return self.entries[-1] if self.entries else None

    def pop(self) -> Entry | None:
        """The last prompt added (None: nothing to undo)."""
        return self.entries.pop() if self.entries else None
