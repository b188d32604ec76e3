"""decode_video / probe_video: untrusted video files decoded in a child process, never in the server.

The child (worker.py) runs under hard resource limits and a wall-clock deadline; it is killed when the
deadline passes. Whatever happens to it (an error, a crash by signal, the kernel's OOM killer, garbage
on stdout) becomes a domain error here (InvalidVideo / VideoTooLarge / InvalidPrompt), so a hostile file
costs the server one short-lived process and nothing else. Both functions block: run them in a thread.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sam3_api.errors import InvalidPrompt, InvalidVideo, Sam3Error, VideoTooLarge
from sam3_api.media.video.info import VideoInfo, VideoProbe
from sam3_api.media.video.limits import FrameSelection, VideoLimits, check_video_size, too_much_store
from sam3_api.media.video.store import clear_store, finish_store

log = logging.getLogger(__name__)

WORKER_MODULE = "sam3_api.media.video.worker"
_PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the directory that holds sam3_api/
_REPORT_LIMIT_BYTES = 1024**2  # the child's one JSON line is a few hundred bytes
_STDERR_TAIL_BYTES = 4096
_ERRORS: dict[str, type[Sam3Error]] = {cls.__name__: cls for cls in (InvalidVideo, VideoTooLarge, InvalidPrompt)}
# Files that are plainly pictures, named so the message can say so (FFmpeg would only say "invalid data").
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
)


def decode_video(
    source: Path, store_dir: Path, limits: VideoLimits, selection: FrameSelection = FrameSelection()
) -> VideoInfo:
    """Decode the selected frames of `source` into a frame store at `store_dir` (see store.py).

    Raises InvalidVideo (400), VideoTooLarge (413) or InvalidPrompt (422, a selection past the end). On
    any failure store_dir holds no store files; on success FrameStore(store_dir) opens the result.
    """
    source, store_dir = Path(source), Path(store_dir)
    _check_source(source, limits)
    store_dir.mkdir(parents=True, exist_ok=True)
    clear_store(store_dir)
    job = {
        "mode": "decode",
        "source": str(source.resolve()),
        "store_dir": str(store_dir.resolve()),
        "limits": limits.to_dict(),
        "selection": selection.to_dict(),
    }
    try:
        info = _parse(VideoInfo, run_worker(job, limits))
        _check_report(info, limits, selection)
        finish_store(store_dir, info)
        return info
    except BaseException:
        clear_store(store_dir)
        raise


def probe_video(source: Path, limits: VideoLimits, selection: FrameSelection = FrameSelection()) -> VideoProbe:
    """Header checks and the first frame only (fast): is this an accepted video, within the limits for
    this selection? Raises what decode_video would raise for the header; frames are checked only there."""
    source = Path(source)
    _check_source(source, limits)
    job = {"mode": "probe", "source": str(source.resolve()), "limits": limits.to_dict(),
           "selection": selection.to_dict()}
    return _parse(VideoProbe, run_worker(job, limits))


def _check_source(source: Path, limits: VideoLimits) -> None:
    check_video_size(source.stat().st_size, limits)
    with open(source, "rb") as handle:
        head = handle.read(16)
    for signature, kind in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            raise InvalidVideo(f"the file is {kind}, not a video; send a video file (MP4, WebM, MOV, ...)")


def _parse(cls, result: Any):
    try:
        return cls.from_dict(result)
    except (TypeError, ValueError, AttributeError):
        raise InvalidVideo("the video decoder gave an unreadable report; the file is probably corrupt") from None


def _check_report(info: VideoInfo, limits: VideoLimits, selection: FrameSelection) -> None:
    """Trust nothing the child says: its figures must obey the limits and the selection asked for."""
    consistent = (
        0 < info.frame_count <= limits.max_frames
        and 0 < info.width * info.height <= limits.max_pixels
        and (info.start_frame, info.frame_stride) == (selection.start_frame, selection.stride)
    )
    if not consistent:
        raise InvalidVideo("the video decoder gave an inconsistent report; the file is probably corrupt")
    if info.frame_count * info.frame_bytes > limits.max_store_bytes:
        raise too_much_store(info.frame_count * info.frame_bytes, limits)


def run_worker(job: dict[str, Any], limits: VideoLimits) -> Any:
    """Run one job in a fresh child under the deadline; return its result or raise its error."""
    command = [sys.executable, "-m", WORKER_MODULE, json.dumps(job)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=_PACKAGE_ROOT,
            env=_child_environment(),
            close_fds=True,
            start_new_session=os.name == "posix",  # a terminal's Ctrl-C is the server's to handle
        )
        try:
            returncode = process.wait(timeout=limits.decode_timeout_s)
        except subprocess.TimeoutExpired:
            raise VideoTooLarge(
                f"decoding took longer than {limits.decode_timeout_s:g} s (SAM3_VIDEO_DECODE_TIMEOUT_S); send a "
                "shorter or smaller clip, process part of it (end_frame, frame_stride), or raise the limit"
            ) from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        out.seek(0)
        report = out.read(_REPORT_LIMIT_BYTES)
        stderr_tail = _tail(err)
    return _interpret(returncode, report, stderr_tail, limits)


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    # One BLAS thread and few malloc arenas: each extra thread or arena reserves address space that
    # would count against RLIMIT_AS without decoding anything.
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    return env


def _tail(handle) -> str:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - _STDERR_TAIL_BYTES))
    return handle.read().decode("utf-8", "replace")


def _interpret(returncode: int, report: bytes, stderr_tail: str, limits: VideoLimits) -> Any:
    payload = _payload(report)
    if payload is None:
        log.warning("video decoder failed (exit %s); stderr tail:\n%s", returncode, stderr_tail)
        raise _crash_error(returncode, limits)
    if payload.get("ok") is True:
        return payload.get("result")
    error = _ERRORS.get(str(payload.get("error")), InvalidVideo)
    field = payload.get("field")
    raise error(str(payload.get("message"))[:2000], field=field if isinstance(field, str) else None)


def _payload(report: bytes) -> dict[str, Any] | None:
    lines = report.strip().splitlines()
    if len(lines) != 1:
        return None
    try:
        payload = json.loads(lines[0])
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _crash_error(returncode: int, limits: VideoLimits) -> Sam3Error:
    """A child that died without a report: name the limit that killed it, else call the file bad."""
    if returncode == -getattr(signal, "SIGXCPU", -1000):
        return VideoTooLarge(
            f"decoding used more CPU time than the {limits.decode_timeout_s:g} s deadline allows "
            "(SAM3_VIDEO_DECODE_TIMEOUT_S); send a shorter or smaller clip"
        )
    if returncode == -getattr(signal, "SIGXFSZ", -1000):
        return too_much_store(limits.max_store_bytes + 1, limits)
    how = f"signal {signal.Signals(-returncode).name}" if returncode < 0 and _is_signal(-returncode) else (
        f"exit status {returncode}"
    )
    return InvalidVideo(
        f"the video decoder crashed on this file ({how}); the file is corrupt or not a supported video. "
        "Re-encode it (e.g. H.264 in MP4) and try again"
    )


def _is_signal(number: int) -> bool:
    try:
        signal.Signals(number)
    except ValueError:
        return False
    return True
