"""Start-up check: every directory the server writes to can be written, or the process exits at once saying
which one, as which uid, and the command that fixes it.

The usual cause is a Docker bind mount (`-v ./data:/data`): the host directory belongs to root while the image
runs as uid 10001, and without this check the first `mkdir` deep inside create_app() ends the process with a
PermissionError traceback that names neither the mount nor the fix. The check cannot fix the ownership itself
(a non-root process cannot chown), so it explains.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .config import Settings


def directories_to_write(settings: Settings) -> list[tuple[str, Path]]:
    """(setting name, directory) pairs the server writes to with these settings."""
    dirs = [("SAM3_DATA_DIR", Path(settings.data_dir)), ("SAM3_CACHE_DIR", Path(settings.cache_dir))]
    if not settings.is_dev_model and not Path(settings.model).is_dir():
        # A hub id: the weights download into the Hugging Face cache on first start.
        from huggingface_hub import constants

        dirs.append(("HF_HOME", Path(constants.HF_HOME)))
    return dirs


def unwritable_reason(path: Path) -> str | None:
    """None when `path` exists (created if missing) and a file can be created in it; the OS's reason if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def fix_message(setting: str, path: Path, reason: str) -> str:
    uid, gid = os.getuid(), os.getgid()
    blocker = _nearest_existing(path)
    owner = blocker.stat().st_uid
    return (
        f"sam3-api cannot write {path} ({setting}): {reason}. {blocker} belongs to uid {owner}; the server runs as "
        f"uid {uid}. If it is a bind mount (docker run -v ./data:/data), give the host directory to uid {uid} on "
        f"the host: sudo chown -R {uid}:{gid} ./data (the directory you mount), or use a named volume "
        f"(-v sam3-data:/data), or point {setting} at a writable directory."
    )


def require_writable_dirs(settings: Settings) -> None:
    """Exit (status 1, the message on stderr, no traceback) when a directory the server needs is not writable."""
    for setting, path in directories_to_write(settings):
        reason = unwritable_reason(path)
        if reason is not None:
            raise SystemExit(fix_message(setting, path, reason))
