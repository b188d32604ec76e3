"""A small typed HTTP client of sam3-api (httpx), for scripts and the command-line client (sam3_api/cli.py).

    from sam3_api.client import Sam3Client
    with Sam3Client("http://localhost:8000") as client:
        job = client.submit_batch(folder="photos/", texts=["person", "car"])
        job = client.wait(job.job_id, on_progress=print)
        client.download_export(job.job_id, "coco", "labels.json")

It imports nothing of the server (no torch), so it runs wherever httpx does.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
ACTIVE = ("queued", "running")


class Sam3ClientError(Exception):
    """The server answered with an error: `status_code` and its message (`detail`)."""

    def __init__(self, status_code: int, detail: str):
        super().__init__(f"{status_code}: {detail}")
        self.status_code, self.detail = status_code, detail


@dataclass
class BatchJob:
    """A batch job as GET /batch/jobs/{id} describes it."""

    job_id: str
    status: str
    progress: dict = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE

    @classmethod
    def from_json(cls, body: dict) -> "BatchJob":
        return cls(body["job_id"], body["status"], body.get("progress", {}), body.get("categories", []),
                   body.get("error"))


class Sam3Client:
    def __init__(self, base_url: str = "http://localhost:8000", api_key: str | None = None, timeout_s: float = 300):
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def __enter__(self) -> "Sam3Client":
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()

    # -------------------------------------------------------------------------------------------- one image
    def segment_text(self, image: str | Path, texts: Sequence[str], **options) -> dict:
        """POST /segment/text: every instance of each text on one image (masks as COCO RLE)."""
        with open(image, "rb") as data:
            form = {"texts": json.dumps(list(texts)), "output_format": "rle",
                    **{key: str(value) for key, value in options.items() if value is not None}}
            return self._json(self.http.post("/segment/text", files={"image": (Path(image).name, data)}, data=form))

    # -------------------------------------------------------------------------------------------- batch jobs
    def submit_batch(self, *, files: Sequence[str | Path] = (), folder: str | Path | None = None,
                     archive: str | Path | None = None, image_urls: Sequence[str] = (), image_dir: str | None = None,
                     texts: Sequence[str] | None = None, mode: str | None = None, annotations: dict | None = None,
                     **options) -> BatchJob:
        """POST /batch/jobs. Local images go up as one archive (a folder is zipped, its relative paths kept as
        file_name) or as files; image_urls and image_dir (below the server's SAM3_IMAGE_ROOT) are named."""
        prompts = {"texts": list(texts) if texts else None, "mode": mode, "annotations": annotations, **options}
        prompts = {key: value for key, value in prompts.items() if value is not None}
        if image_urls or image_dir:
            body = {**prompts, **({"image_urls": list(image_urls)} if image_urls else {"image_dir": image_dir})}
            return BatchJob.from_json(self._json(self.http.post("/batch/jobs", json=body)))
        form = {key: json.dumps(value) if isinstance(value, (list, dict)) else str(value)
                for key, value in prompts.items()}
        if folder is not None:
            with _zipped(Path(folder)) as zipped:
                return self._upload([("archive", ("images.zip", zipped, "application/zip"))], form)
        if archive is not None:
            with open(archive, "rb") as data:
                return self._upload([("archive", (Path(archive).name, data))], form)
        handles = [open(path, "rb") for path in files]
        try:
            return self._upload([("images", (Path(path).name, handle)) for path, handle in zip(files, handles)], form)
        finally:
            for handle in handles:
                handle.close()

    def job(self, job_id: str) -> BatchJob:
        return BatchJob.from_json(self._json(self.http.get(f"/batch/jobs/{job_id}")))

    def cancel(self, job_id: str) -> BatchJob:
        return BatchJob.from_json(self._json(self.http.post(f"/batch/jobs/{job_id}/cancel")))

    def wait(self, job_id: str, on_progress: Callable[[BatchJob], None] | None = None,
             poll_s: float = 0.5) -> BatchJob:
        """Poll the job until it ends, calling `on_progress` with each state seen."""
        while True:
            job = self.job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.finished:
                return job
            time.sleep(poll_s)

    def results(self, job_id: str):
        """Each finished image's record (NDJSON), streamed while the job runs."""
        with self.http.stream("GET", f"/batch/jobs/{job_id}/results", timeout=None) as response:
            self._check(response)
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)

    def download_export(self, job_id: str, export_format: str, target: str | Path, mask_format: str = "rle") -> Path:
        """GET /batch/jobs/{id}/export into `target` (written to a temporary file first, then renamed)."""
        target = Path(target)
        partial = target.with_name(target.name + ".part")
        params = {"format": export_format, "mask_format": mask_format}
        with self.http.stream("GET", f"/batch/jobs/{job_id}/export", params=params, timeout=None) as response:
            self._check(response)
            with open(partial, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        os.replace(partial, target)
        return target

    # -------------------------------------------------------------------------------------------- plumbing
    def _upload(self, files, form: dict) -> BatchJob:
        return BatchJob.from_json(self._json(self.http.post("/batch/jobs", files=files, data=form)))

    def _json(self, response: httpx.Response) -> dict:
        self._check(response)
        return response.json()

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code >= 400:
            response.read()
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise Sam3ClientError(response.status_code, str(detail))


def image_files(folder: Path) -> list[Path]:
    """The images below `folder`, sorted by relative path (hidden files and folders left out)."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


class _zipped:
    """A folder's images as a stored (uncompressed: images are compressed already) zip in a temporary file."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self) -> io.BufferedRandom:
        self.file = tempfile.TemporaryFile()
        with zipfile.ZipFile(self.file, "w", zipfile.ZIP_STORED) as archive:
            for path in image_files(self.folder):
                archive.write(path, path.relative_to(self.folder).as_posix())
        self.file.seek(0)
        return self.file

    def __exit__(self, *exc) -> None:
        self.file.close()
