"""Batch labeling jobs over the real dev-tiny engine: masks equal the single-image routes', exports load in
pycocotools, and the job's life (cancel, restart, expiry, a click meanwhile) keeps every image once.
Inputs, hostile archives and ownership: test_batch_inputs.py."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile

import pytest
from pycocotools.coco import COCO

from tests.api.batch_helpers import (IMAGES, OPTIONS, TEXTS, decode, iou, many_images, records, start_client, submit,
                                     upload, wait_finished)
from tests.api.conftest import ready_client


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    client = start_client(tmp_path_factory)
    yield client
    client.__exit__(None, None, None)


def test_text_job_masks_equal_segment_text_for_each_image(client):
    job = upload(client, texts=TEXTS, **OPTIONS)
    assert job["status"] in ("queued", "running") and job["categories"] == TEXTS
    done = wait_finished(client, job["job_id"])
    assert done["status"] == "succeeded" and done["progress"]["images_done"] == 3
    assert done["progress"]["images_total"] == 3 and done["progress"]["images_failed"] == 0
    found = records(client, job["job_id"])
    assert set(found) == set(IMAGES)
    for name, data in IMAGES.items():
        single = client.post("/segment/text", files={"image": (name, data)},
                             data={"texts": json.dumps(TEXTS), **{k: str(v) for k, v in OPTIONS.items()},
                                   "output_format": "rle"}).json()
        batch = found[name]["annotations"]
        assert len(batch) == min(single["num_masks"], OPTIONS["max_masks"]) and batch
        for annotation, mask, score, prompt in zip(batch, single["masks"], single["scores"], single["mask_prompts"]):
            assert iou(decode(annotation["mask"]), decode(mask)) == 1.0
            assert annotation["category"] == prompt and annotation["score"] == pytest.approx(score, abs=1e-5)


def test_coco_boxes_become_masks_equal_to_segment_box_with_their_categories(client):
    name = "sub/img_1.png"
    boxes = [[4, 6, 30, 40], [20, 10, 70, 60]]
    document = {"images": [{"id": 7, "file_name": name}], "categories": [{"id": 1, "name": "car"},
                                                                          {"id": 2, "name": "tree"}],
                "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [4, 6, 26, 34]},
                                {"id": 2, "image_id": 7, "category_id": 1, "bbox": [20, 10, 50, 50]}]}
    response = client.post("/batch/jobs", json={"image_dir": "set", "annotations": document})
    assert response.status_code == 202, response.text
    job = wait_finished(client, response.json()["job_id"])
    assert job["status"] == "succeeded" and job["categories"] == ["car", "tree"]
    assert job["progress"]["skipped"] == 1  # notes.txt
    found = records(client, job["job_id"])
    assert set(found) == {f"sub/{n}" for n in IMAGES} and found["sub/img_0.png"]["annotations"] == []
    single = client.post("/segment/box", files={"image": ("a.png", IMAGES["img_1.png"])},
                         data={"boxes": json.dumps(boxes), "output_format": "rle"}).json()
    by_box = {index: mask for index, mask in zip(single["prompt_indices"], single["masks"])}
    annotations = found[name]["annotations"]
    assert sorted(a["category"] for a in annotations) == ["car", "tree"]
    for annotation in annotations:
        index = 0 if annotation["category"] == "tree" else 1
        assert iou(decode(annotation["mask"]), decode(by_box[index])) == 1.0


def test_exports_load_in_pycocotools(client, tmp_path):
    job = upload(client, texts=TEXTS, **OPTIONS)
    wait_finished(client, job["job_id"])
    export = client.get(f"/batch/jobs/{job['job_id']}/export?format=coco")
    assert export.status_code == 200
    path = tmp_path / "coco.json"
    path.write_bytes(export.content)
    dataset = COCO(str(path))
    assert sorted(image["file_name"] for image in dataset.dataset["images"]) == sorted(IMAGES)
    assert [c["name"] for c in dataset.loadCats(dataset.getCatIds())] == TEXTS
    assert len(dataset.getAnnIds()) == sum(len(r["annotations"]) for r in records(client, job["job_id"]).values())
    results = client.get(f"/batch/jobs/{job['job_id']}/export?format=coco_results").json()
    assert len(dataset.loadRes(results).getAnnIds()) == len(dataset.getAnnIds())
    for export_format in ("yolo", "masks"):
        archive = client.get(f"/batch/jobs/{job['job_id']}/export?format={export_format}")
        assert archive.status_code == 200 and zipfile.ZipFile(io.BytesIO(archive.content)).namelist()


def test_a_cancelled_job_keeps_and_exports_the_images_it_finished(client):
    response = submit(client, many_images(60), texts=["cat"])
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/batch/jobs/{job_id}").json()["progress"]["images_done"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.post(f"/batch/jobs/{job_id}/cancel").status_code == 200
    job = wait_finished(client, job_id)
    done = job["progress"]["images_done"]
    assert job["status"] == "cancelled" and 2 <= done < 60 and "kept" in job["error"]
    export = client.get(f"/batch/jobs/{job_id}/export?format=coco").json()
    assert len(export["images"]) == done == len(records(client, job_id))


def test_a_job_running_at_shutdown_resumes_at_the_next_start_without_running_an_image_twice(tmp_path):
    first = ready_client(data_dir=tmp_path, batch_backbone_images=3)  # the stop may fall inside a step's images
    response = submit(first, many_images(40), texts=["cat"])
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 60
    while first.get(f"/batch/jobs/{job_id}").json()["progress"]["images_done"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    first.__exit__(None, None, None)  # the lifespan stops the runner: the job is queued again
    stopped_at = len((tmp_path / "jobs" / job_id / "results.ndjson").read_text().splitlines())
    assert json.loads((tmp_path / "jobs" / job_id / "manifest.json").read_text())["status"] == "queued"
    second = ready_client(data_dir=tmp_path, batch_backbone_images=3)
    try:
        job = wait_finished(second, job_id)
        assert job["status"] == "succeeded" and job["progress"]["images_done"] == 40 and 3 <= stopped_at < 40
        lines = (tmp_path / "jobs" / job_id / "results.ndjson").read_text().splitlines()
        assert len(lines) == 40 and len({json.loads(line)["file_name"] for line in lines}) == 40
    finally:
        second.__exit__(None, None, None)


def test_a_click_waits_for_one_batch_step_not_for_the_job(client, monkeypatch):
    """A box on a cached image, sent while a batched backbone step runs, is answered before the next step."""
    click = {"files": {"image": ("click.png", IMAGES["img_2.png"])}, "data": {"boxes": "[[4, 6, 30, 40]]"}}
    assert client.post("/segment/box", **click).status_code == 200  # its embedding is now in the shared cache
    runtime, calls = client.app.state.services.engine.runtime, []
    entered, gate = threading.Event(), threading.Event()
    encode_many, decode = runtime.encode_many, runtime.decode

    def held_step(images):
        calls.append(f"step of {len(images)}")
        if len(calls) == 1:
            entered.set()
            gate.wait(60)
        return encode_many(images)

    monkeypatch.setattr(runtime, "encode_many", held_step)
    monkeypatch.setattr(runtime, "decode", lambda *a, **k: calls.append("click") or decode(*a, **k))
    job_id = submit(client, many_images(6, first_seed=1000), texts=["cat"]).json()["job_id"]  # new to the engine
    assert entered.wait(60)
    answer: list = []
    clicker = threading.Thread(target=lambda: answer.append(client.post("/segment/box", **click)))
    clicker.start()
    worker, deadline = client.app.state.services.engine.worker, time.monotonic() + 60
    while worker.queued_by_priority()["interactive"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the click is queued behind the running step
    gate.set()
    clicker.join(60)
    assert wait_finished(client, job_id)["status"] == "succeeded"
    assert answer[0].status_code == 200 and answer[0].json()["num_masks"] == 1
    assert calls == ["step of 2", "click", "step of 2", "step of 2"]


def test_a_batched_step_out_of_memory_runs_its_images_alone_and_halves_the_next_steps(client, monkeypatch):
    runtime = client.app.state.services.engine.runtime
    encode_many = runtime.encode_many

    steps = []

    def no_room_for_two(images):
        steps.append(len(images))
        if len(images) > 1:
            raise MemoryError("no room for a batch")
        return encode_many(images)

    monkeypatch.setattr(runtime, "encode_many", no_room_for_two)
    job = wait_finished(client, submit(client, many_images(5, first_seed=2000), texts=["cat"]).json()["job_id"])
    assert job["status"] == "succeeded" and job["progress"]["images_failed"] == 0
    assert all(record["annotations"] for record in records(client, job["job_id"]).values())
    assert steps[0] == 2 and steps[1:] == [1] * 5  # the failed pair alone, then steps of one (halved)


def test_finished_jobs_expire_after_the_ttl_with_their_files(client):
    job = upload(client, texts=["cat"])
    wait_finished(client, job["job_id"])
    runner = client.app.state.services.batch_jobs
    directory = runner.store.directory(job["job_id"])
    ttl = client.app.state.services.settings.batch_job_ttl_s
    real_clock = runner.store.clock
    runner.store.clock = lambda: real_clock() + ttl - 60  # a minute before: still there
    try:
        runner.sweep()
        assert client.get(f"/batch/jobs/{job['job_id']}").status_code == 200
        runner.store.clock = lambda: real_clock() + ttl + 60
        assert client.get(f"/batch/jobs/{job['job_id']}").status_code == 404  # a lookup never returns it
        runner.sweep()
        assert not directory.exists()
    finally:
        runner.store.clock = real_clock
