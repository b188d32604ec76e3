"""Scratch directories of video submissions: <data_dir>/incoming/<id>/ (serving/video_jobs.py decodes there;
the frames move into the job's directory only when every check passed)."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

STALE_INCOMING_S = 3600.0


def incoming_dir(data_dir: Path) -> Path:
    """A fresh scratch directory for one submission (the caller removes it)."""
    path = Path(data_dir) / "incoming" / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def discard(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)


def clear_stale_incoming(data_dir: Path, older_than_s: float = STALE_INCOMING_S) -> None:
    """Scratch directories a crash left behind (a submission never lasts this long)."""
    now = time.time()
    for scratch in (Path(data_dir) / "incoming").glob("*"):
        try:
            if now - scratch.stat().st_mtime > older_than_s:
                discard(scratch)
        except OSError:
            pass
