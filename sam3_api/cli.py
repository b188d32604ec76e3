"""Command-line client: `python -m sam3_api.cli label ...` labels a dataset, `segment ...` one image.

    python -m sam3_api.cli label photos/ --texts person,car --format coco --out labels/
    python -m sam3_api.cli segment photo.jpg --text person

`label` uploads a folder (zipped), image files or an archive (or names a folder below the server's
SAM3_IMAGE_ROOT with --server-dir), shows a progress bar with images/s and an ETA, and writes the export into
--out. The job id is remembered in --out/.sam3-job.json: Ctrl-C leaves the job running on the server, and the
same command run again follows that job instead of starting another, then writes the export.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

from tqdm import tqdm

from .client import BatchJob, Sam3Client, Sam3ClientError

STATE_FILE = ".sam3-job.json"
EXPORT_FILES = {"coco": "annotations.json", "coco_results": "results.json", "yolo": "yolo.zip", "masks": "masks.zip"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with Sam3Client(args.server, api_key=args.api_key) as client:
        try:
            return args.run(client, args)
        except Sam3ClientError as exc:
            print(f"error: the server answered {exc.status_code}: {exc.detail}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted: the job goes on on the server; run the same command again to follow it and "
                  "write the export", file=sys.stderr)
            return 130


def label(client: Sam3Client, args) -> int:
    """Submit (or resume) the job, follow it with a progress bar, write the export."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    job = _resumed(client, out, args.server) or _submitted(client, args, out)
    job = _follow(client, job)
    if job.status != "succeeded":
        print(f"the job ended {job.status}: {job.error}; what it finished is exported", file=sys.stderr)
    path = _write_export(client, job, args.format, out)
    failed = job.progress.get("images_failed", 0)
    print(f"{job.progress.get('images_done', 0)} images labeled ({failed} failed) -> {path}")
    (out / STATE_FILE).unlink(missing_ok=True)  # the next run in this folder starts a new job
    return 0 if job.status == "succeeded" else 1


def segment(client: Sam3Client, args) -> int:
    """One image: print the instances found (score, box; --out also writes the whole answer as JSON)."""
    body = client.segment_text(args.image, args.text, confidence_threshold=args.confidence_threshold)
    if args.out:
        Path(args.out).write_text(json.dumps(body))
    for index, (text, score, box) in enumerate(zip(body.get("mask_prompts") or [args.text[0]] * body["num_masks"],
                                                  body["scores"], body["boxes"])):
        print(f"{index}\t{text}\t{score:.3f}\t{[round(v, 1) for v in box]}")
    print(f"{body['num_masks']} instances", file=sys.stderr)
    return 0


def _resumed(client: Sam3Client, out: Path, server: str) -> BatchJob | None:
    """The job a previous run in `out` started on this server, if the server still has it."""
    state = out / STATE_FILE
    if not state.exists():
        return None
    saved = json.loads(state.read_text())
    if saved.get("server") != server:
        return None
    try:
        job = client.job(saved["job_id"])
    except Sam3ClientError as exc:
        if exc.status_code == 404:
            return None
        raise
    print(f"resuming job {job.job_id} ({job.status})", file=sys.stderr)
    return job


def _submitted(client: Sam3Client, args, out: Path) -> BatchJob:
    prompts = {"texts": [t.strip() for t in args.texts.split(",") if t.strip()] if args.texts else None,
               "mode": "auto" if args.auto else None, "confidence_threshold": args.confidence_threshold,
               "max_masks": args.max_masks, "min_area": args.min_area or None,
               "annotations": json.loads(Path(args.annotations).read_text()) if args.annotations else None}
    job = client.submit_batch(**_sources(args), **prompts)
    (out / STATE_FILE).write_text(json.dumps({"job_id": job.job_id, "server": args.server}))
    print(f"started job {job.job_id}", file=sys.stderr)
    return job


def _sources(args) -> dict:
    if args.server_dir:
        return {"image_dir": args.server_dir}
    paths = [Path(p) for p in args.inputs]
    if len(paths) == 1 and paths[0].is_dir():
        return {"folder": paths[0]}
    if len(paths) == 1 and paths[0].suffix.lower() in (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz"):
        return {"archive": paths[0]}
    return {"files": paths}


def _follow(client: Sam3Client, job: BatchJob) -> BatchJob:
    with tqdm(total=job.progress.get("images_total") or None, unit="img", desc="labeling", dynamic_ncols=True) as bar:
        def show(state: BatchJob) -> None:
            bar.total = state.progress.get("images_total") or bar.total
            bar.update(state.progress.get("images_done", 0) - bar.n)
            bar.set_postfix(failed=state.progress.get("images_failed", 0), status=state.status, refresh=False)

        return client.wait(job.job_id, on_progress=show)


def _write_export(client: Sam3Client, job: BatchJob, export_format: str, out: Path) -> Path:
    path = client.download_export(job.job_id, export_format, out / EXPORT_FILES[export_format])
    if path.suffix == ".zip":  # yolo: labels/ + data.yaml; masks: instances/, classes/, index.json
        with zipfile.ZipFile(path) as archive:
            archive.extractall(out)  # zipfile drops '..' and absolute parts of member names
        path.unlink()
        return out
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sam3_api.cli", description="Client of a sam3-api server.")
    parser.add_argument("--server", default="http://localhost:8000", help="Base URL of the server.")
    parser.add_argument("--api-key", default=None, help="Sent as X-API-Key when the server needs one.")
    commands = parser.add_subparsers(required=True, dest="command")
    lab = commands.add_parser("label", help="Label a folder, image files or an archive; write the export.")
    lab.add_argument("inputs", nargs="*", help="A folder, image files, or one zip/tar archive.")
    lab.add_argument("--server-dir", help="A folder below the server's SAM3_IMAGE_ROOT instead of uploading.")
    kind = lab.add_mutually_exclusive_group(required=True)
    kind.add_argument("--texts", help="Comma-separated concepts, each a category: person,car")
    kind.add_argument("--auto", action="store_true", help="Segment everything (one category, object).")
    kind.add_argument("--annotations", help="A COCO detection JSON whose boxes become masks.")
    lab.add_argument("--format", choices=sorted(EXPORT_FILES), default="coco")
    lab.add_argument("--out", required=True, help="Folder of the export (and of the job id, to resume).")
    lab.add_argument("--confidence-threshold", type=float)
    lab.add_argument("--max-masks", type=int)
    lab.add_argument("--min-area", type=int, default=0)
    lab.set_defaults(run=label)
    seg = commands.add_parser("segment", help="Segment one image by text.")
    seg.add_argument("image")
    seg.add_argument("--text", action="append", required=True, help="A concept (repeat for several).")
    seg.add_argument("--confidence-threshold", type=float)
    seg.add_argument("--out", help="Write the whole answer (masks as COCO RLE) to this JSON file.")
    seg.set_defaults(run=segment)
    return parser


if __name__ == "__main__":
    sys.exit(main())
