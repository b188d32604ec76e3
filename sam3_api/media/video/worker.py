"""The decoder child: `python -m sam3_api.media.video.worker '<job JSON>'`.

Started by decode.py for each untrusted video. It lowers its own resource limits (address space, file
size, CPU time, no core dumps, few files) before FFmpeg touches the file, does one job (decode or probe),
and writes exactly one JSON line to the stdout it was given: {"ok": true, "result": {...}} or
{"ok": false, "error": "<error class>", "message": ..., "field": ...}. Anything else FFmpeg or a library
prints goes to stderr, so it can never be mistaken for the result. A crash, a kill or garbage output is
turned into InvalidVideo by the parent.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import pkgutil
import sys
import traceback
from typing import Any

import av

from sam3_api.errors import InvalidVideo, Sam3Error, VideoTooLarge
from sam3_api.media.video import demux
from sam3_api.media.video.limits import FrameSelection, VideoLimits, cpu_seconds_backstop, too_much_store

# Room for meta files and stderr on top of the frame budget (RLIMIT_FSIZE is per file, not a total).
_FILE_SLACK_BYTES = 1024**2
_MAX_OPEN_FILES = 64


def main(argv: list[str]) -> int:
    result_out = _private_stdout()
    result_out.write(json.dumps(_attempt(argv)) + "\n")
    result_out.flush()
    return 0


def _attempt(argv: list[str]) -> dict[str, Any]:
    """Run the job; every failure becomes an error payload (the parent maps it to the same error class)."""
    limits = VideoLimits()
    try:
        job = json.loads(argv[1])
        limits = VideoLimits.from_dict(job["limits"])
        _preload_pyav()
        _lower_resource_limits(limits, decoding=job["mode"] == "decode")
        return {"ok": True, "result": _run(job, limits)}
    except Sam3Error as exc:
        return _error_payload(exc)
    except MemoryError:
        return _error_payload(_out_of_memory(limits))
    except OSError as exc:
        if exc.errno == errno.EFBIG:  # RLIMIT_FSIZE: Python ignores SIGXFSZ, so the write fails instead
            return _error_payload(too_much_store(limits.max_store_bytes + 1, limits))
        traceback.print_exc()
        return _error_payload(InvalidVideo(f"the video could not be decoded: {exc}"))
    except Exception as exc:  # noqa: BLE001 - a library failing on hostile input is a bad video, not a crash
        traceback.print_exc()
        return _error_payload(InvalidVideo(f"the video could not be decoded: {exc}"))


def _run(job: dict[str, Any], limits: VideoLimits) -> dict[str, Any]:
    selection = FrameSelection.from_dict(job["selection"])
    if job["mode"] == "probe":
        return demux.probe(job["source"], limits, selection).to_dict()
    return demux.decode_to_store(job["source"], job["store_dir"], limits, selection).to_dict()


def _private_stdout():
    """Keep the real stdout for the result only; point fd 1 at stderr for anything else that prints."""
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(result_fd, "w", encoding="utf-8")


def _preload_pyav() -> None:
    """Import every PyAV submodule now: PyAV loads some on first use, and loading a shared library
    after RLIMIT_AS is lowered can fail for want of address space."""
    for module in pkgutil.walk_packages(av.__path__, "av."):
        if module.name not in ("av.__main__", "av.datasets"):
            importlib.import_module(module.name)


def _lower_resource_limits(limits: VideoLimits, *, decoding: bool) -> None:
    """Hard limits (the child cannot raise them again). No-op where `resource` is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return
    file_budget = (limits.max_store_bytes if decoding else 0) + _FILE_SLACK_BYTES
    cpu = cpu_seconds_backstop(limits)
    for kind, soft, hard in (
        (resource.RLIMIT_AS, limits.decoder_memory_bytes, limits.decoder_memory_bytes),
        (resource.RLIMIT_FSIZE, file_budget, file_budget),
        (resource.RLIMIT_CPU, cpu, cpu + 5),  # SIGXCPU at soft, SIGKILL at hard
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_NOFILE, _MAX_OPEN_FILES, _MAX_OPEN_FILES),
    ):
        current_soft, current_hard = resource.getrlimit(kind)
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(kind, (soft, hard))


def _out_of_memory(limits: VideoLimits) -> Sam3Error:
    return VideoTooLarge(
        f"decoding this video needs more than {limits.decoder_memory_bytes} bytes of memory "
        "(SAM3_VIDEO_DECODER_MEMORY_BYTES); send a smaller resolution or raise the limit"
    )


def _error_payload(exc: Sam3Error) -> dict[str, Any]:
    return {"ok": False, "error": type(exc).__name__, "message": exc.message, "field": exc.field}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
