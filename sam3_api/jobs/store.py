"""Persistent jobs: one directory per job under SAM3_DATA_DIR/jobs, written as the job progresses.

    <data_dir>/jobs/<job_id>/manifest.json   what the job is and where it stands (rewritten atomically)
    <data_dir>/jobs/<job_id>/results.ndjson  one JSON line per finished frame, appended (see results.py)
    <data_dir>/jobs/<job_id>/...             inputs and outputs (the video, its decoded frames, video.mp4)

After a restart every job is found again: finished ones are served as they were, a job that was running is
marked `interrupted` (its finished frames stay readable), a queued one is queued again. Jobs expire
SAM3_VIDEO_JOB_TTL_S after they finished (a runner may pass its own TTL for its kind of job).
Several runners share one store (video jobs, seed 003's jobs): each recovers and expires its own kind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


@dataclass
class Job:
    """The manifest: everything a client can ask about a job, JSON-serialisable."""

    job_id: str
    kind: str  # "video" (native jobs) or "runpod" (seed 003's protocol)
    status: str = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    request: dict = field(default_factory=dict)
    video: dict | None = None
    progress: dict = field(default_factory=lambda: {"frames_done": 0, "frames_total": 0, "fps": 0.0})
    objects: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)  # e.g. {"video_mp4": true}, or a runpod job's output
    error: str | None = None
    owner: str | None = None  # the API key that created it, when keys are on (scoping)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class JobStore:
    """Directory-backed job manifests. All methods are cheap file operations; callers use threads for bulk I/O."""

    def __init__(self, data_dir: Path, ttl_s: float, clock: Callable[[], float] = time.time):
        self.root = Path(data_dir) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self.clock = clock  # wall-clock seconds; tests pass their own to cross a TTL without waiting it out
        self._jobs: dict[str, Job] = {}
        self._requeue: list[Job] | None = None  # the queued jobs found on disk, once loaded

    def directory(self, job_id: str) -> Path:
        return self.root / job_id

    def create(self, kind: str, request: dict, owner: str | None = None, status: str = "queued") -> Job:
        """A new job on disk; `status` "running" for work that is not queued (an export being written)."""
        job = Job(job_id=uuid.uuid4().hex, kind=kind, request=request, owner=owner, status=status)
        self.directory(job.job_id).mkdir(parents=True)
        self.save(job)
        return job

    def save(self, job: Job) -> None:
        """Write the manifest atomically (temp file + rename): a crash never leaves half a manifest."""
        self._jobs[job.job_id] = job
        path = self.directory(job.job_id) / "manifest.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(job)))
        os.replace(temporary, path)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self, kind: str | None = None) -> list[Job]:
        jobs = [job for job in self._jobs.values() if kind is None or job.kind == kind]
        return sorted(jobs, key=lambda job: job.created_at)

    def delete(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        shutil.rmtree(self.directory(job_id), ignore_errors=True)

    def recover(self, kind: str | None = None) -> list[Job]:
        """The queued jobs (of `kind`) found on disk, oldest first, to queue again.

        The disk is read once, by the first caller (running jobs become interrupted); later calls, from the
        runners of other kinds, get their share of that same load, never a second copy of the manifests.
        """
        if self._requeue is None:
            self._requeue = self._load()
        return [job for job in self._requeue if kind is None or job.kind == kind]

    def _load(self) -> list[Job]:
        requeue = []
        for manifest in sorted(self.root.glob("*/manifest.json")):
            try:
                job = Job(**json.loads(manifest.read_text()))
            except (OSError, ValueError, TypeError):
                log.warning("ignoring an unreadable job manifest %s", manifest)
                continue
            if job.status == "running":
                self.finish(job, "interrupted", "the server stopped while this job ran; the frames it finished "
                                                "are kept and can be read")
            self._jobs[job.job_id] = job
            if job.status == "queued":
                requeue.append(job)
        return sorted(requeue, key=lambda job: job.created_at)

    def finish(self, job: Job, status: str, error: str | None = None) -> None:
        job.status, job.error, job.finished_at = status, error, self.clock()
        self.save(job)

    def expired(self, now: float | None = None, *, kind: str | None = None, ttl_s: float | None = None) -> list[Job]:
        """Finished jobs (of `kind`) that ended more than `ttl_s` (default: the store's TTL) ago."""
        now = self.clock() if now is None else now
        ttl_s = self.ttl_s if ttl_s is None else ttl_s
        return [job for job in list(self._jobs.values())
                if (kind is None or job.kind == kind) and job.finished and job.finished_at + ttl_s < now]
