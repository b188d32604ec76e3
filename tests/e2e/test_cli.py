"""The command-line client against a live server: `label` a folder, Ctrl-C it, run it again (the same job is
followed, not a new one), and the COCO file it writes loads in pycocotools; `segment` one image."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from pycocotools.coco import COCO

from tests.conftest import REPO, png_bytes, random_image

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]
IMAGES = 80


def cli(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sam3_api.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def test_label_survives_ctrl_c_resumes_the_same_job_and_writes_coco(live_server, tmp_path):
    folder, out = tmp_path / "photos", tmp_path / "labels"
    for index in range(IMAGES):
        (folder / f"part{index % 2}").mkdir(parents=True, exist_ok=True)
        (folder / f"part{index % 2}" / f"{index:02d}.png").write_bytes(png_bytes(random_image(64, 64, seed=index)))
    args = ("--server", live_server, "label", str(folder), "--texts", "cat,dog", "--confidence-threshold", "0",
            "--max-masks", "1", "--out", str(out))
    first = cli(*args)
    deadline = time.monotonic() + 60
    while not (out / ".sam3-job.json").exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.02)
    first.send_signal(signal.SIGINT)
    _, errors = first.communicate(timeout=30)
    assert first.returncode == 130, errors
    job_id = (out / ".sam3-job.json").read_text()
    second = cli(*args)
    output, errors = second.communicate(timeout=300)
    assert second.returncode == 0, errors
    assert "resuming job" in errors and "started job" not in errors and "labeling" in errors  # the bar
    assert not (out / ".sam3-job.json").exists() and job_id
    dataset = COCO(str(out / "annotations.json"))
    names = sorted(image["file_name"] for image in dataset.dataset["images"])
    assert names == sorted(f"part{i % 2}/{i:02d}.png" for i in range(IMAGES))
    assert [c["name"] for c in dataset.loadCats(dataset.getCatIds())] == ["cat", "dog"]
    assert len(dataset.getAnnIds()) == IMAGES  # max_masks is per image: the best instance of either text
    assert f"{IMAGES} images labeled" in output


def test_segment_prints_the_instances_of_one_image(live_server, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes(random_image(64, 64)))
    process = cli("--server", live_server, "segment", str(image), "--text", "cat", "--confidence-threshold", "0",
                  "--out", str(tmp_path / "answer.json"))
    output, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    assert output.splitlines() and output.splitlines()[0].split("\t")[1] == "cat"
    assert (tmp_path / "answer.json").exists()
