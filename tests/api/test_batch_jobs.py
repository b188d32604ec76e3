"""Batch labeling jobs over the real dev-tiny engine: masks equal the single-image routes', exports load in
pycocotools, hostile archives get their 4xx, and the job's life (cancel, delete, restart) keeps every image once."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from tests.api.conftest import ready_client
from tests.conftest import png_bytes, random_image

IMAGES = {f"img_{i}.png": png_bytes(random_image(64 + 8 * i, 80, seed=i)) for i in range(3)}
TEXTS = ["cat", "dog"]
OPTIONS = {"confidence_threshold": 0.0, "max_masks": 3}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_root")
    (root / "set" / "sub").mkdir(parents=True)
    for name, data in IMAGES.items():
        (root / "set" / "sub" / name).write_bytes(data)
    (root / "set" / "notes.txt").write_text("not an image")
    # Two images per backbone step: the masks compared with the single-image routes come from batched steps.
    client = ready_client(data_dir=tmp_path_factory.mktemp("data"), image_root=root, batch_backbone_images=2)
    yield client
    client.__exit__(None, None, None)


def submit(client, files=None, **fields):
    form = {key: json.dumps(value) if isinstance(value, (list, dict)) else str(value) for key, value in fields.items()}
    return client.post("/batch/jobs", files=files, data=form)


def upload(client, **fields):
    files = [("images", (name, data, "image/png")) for name, data in IMAGES.items()]
    response = submit(client, files, **fields)
    assert response.status_code == 202, response.text
    return response.json()


def wait_finished(client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/batch/jobs/{job_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def records(client, job_id: str) -> dict[str, dict]:
    lines = client.get(f"/batch/jobs/{job_id}/results").text.splitlines()
    return {record["file_name"]: record for record in map(json.loads, lines)}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def decode(rle: dict) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


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


def test_a_broken_image_is_recorded_with_its_error_and_the_job_goes_on(client):
    files = [("images", ("good.png", IMAGES["img_0.png"], "image/png")),
             ("images", ("bad.png", b"not a png at all", "image/png"))]
    before = batch_images_counted(client)
    response = submit(client, files, mode="auto")
    job = wait_finished(client, response.json()["job_id"])
    assert job["status"] == "succeeded" and job["progress"]["images_failed"] == 1
    found = records(client, job["job_id"])
    assert found["bad.png"]["error"] and "error" not in found["good.png"]
    after = batch_images_counted(client)
    assert (after["ok"] - before["ok"], after["error"] - before["error"]) == (1, 1)


def batch_images_counted(client) -> dict[str, float]:
    """sam3_batch_images_total by outcome, from /metrics."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    return {sample.labels["outcome"]: sample.value for family in families if family.name == "sam3_batch_images"
            for sample in family.samples if sample.name == "sam3_batch_images_total"}


def hostile_zip(kind: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "parent":
            archive.writestr("../escape.png", IMAGES["img_0.png"])
        elif kind == "absolute":
            archive.writestr("/etc/escape.png", IMAGES["img_0.png"])
        elif kind == "symlink":
            info = zipfile.ZipInfo("link.png")
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, "/etc/passwd")
        elif kind == "bomb":
            archive.writestr("bomb.png", b"\0" * (64 * 1024**2))
        elif kind == "no images":
            archive.writestr("doc.pdf", b"%PDF-1.4")
        elif kind == "many":
            for index in range(60):
                archive.writestr(f"{index}.png", b"x")
    return buffer.getvalue()


@pytest.mark.parametrize("kind,status", [("parent", 400), ("absolute", 400), ("symlink", 400), ("bomb", 413),
                                         ("many", 413), ("garbage", 400), ("empty tar", 400), ("no images", 400)])
def test_hostile_archives_get_their_4xx_and_the_server_keeps_serving(client, kind, status):
    data = {"garbage": b"this is no archive", "empty tar": b"\0" * 10240}.get(kind) or hostile_zip(kind)
    before = set(client.app.state.services.batch_jobs.store.root.iterdir())
    settings = client.app.state.services.settings
    settings.batch_max_archive_bytes, settings.batch_max_archive_members = 16 * 1024**2, 50
    try:
        response = submit(client, [("archive", ("a.zip", data, "application/zip"))], texts=["cat"])
    finally:
        settings.batch_max_archive_bytes, settings.batch_max_archive_members = 4 * 1024**3, 50_000
    assert response.status_code == status, response.text
    assert response.json()["detail"] and response.json()["code"]
    assert set(client.app.state.services.batch_jobs.store.root.iterdir()) == before  # no job left behind
    assert client.get("/health").status_code == 200


def test_an_archive_with_a_pdf_labels_its_images_and_lists_the_pdf_as_skipped(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photos/a.png", IMAGES["img_0.png"])
        archive.writestr("doc.pdf", b"%PDF-1.4 ...")
    response = submit(client, [("archive", ("a.zip", buffer.getvalue(), "application/zip"))], texts=["cat"])
    job = wait_finished(client, response.json()["job_id"])
    assert job["progress"]["images_total"] == 1 and job["progress"]["skipped"] == 1
    assert list(records(client, job["job_id"])) == ["photos/a.png"]


@pytest.mark.parametrize("fields,status", [({}, 422), ({"texts": ["cat"], "mode": "auto"}, 422),
                                           ({"texts": "[not json"}, 422), ({"mode": "everything"}, 422),
                                           ({"texts": ["x" * 300]}, 422), ({"texts": [str(i) for i in range(65)]}, 422)])
def test_bad_prompts_are_422(client, fields, status):
    files = [("images", ("a.png", IMAGES["img_0.png"], "image/png"))]
    form = {key: value if isinstance(value, str) else json.dumps(value) for key, value in fields.items()}
    response = client.post("/batch/jobs", files=files, data=form)
    assert response.status_code == status, response.text


def test_image_dir_outside_the_root_or_without_a_root_is_refused(client, tmp_path):
    assert client.post("/batch/jobs", json={"image_dir": "../", "texts": ["cat"]}).status_code == 403
    unrooted = ready_client(data_dir=tmp_path)
    try:
        response = unrooted.post("/batch/jobs", json={"image_dir": "set", "texts": ["cat"]})
        assert response.status_code == 403 and "SAM3_IMAGE_ROOT" in response.json()["detail"]
    finally:
        unrooted.__exit__(None, None, None)


def test_unknown_jobs_are_404_and_delete_removes_a_job(client):
    assert client.get("/batch/jobs/nope").status_code == 404
    job = upload(client, texts=["cat"])
    wait_finished(client, job["job_id"])
    assert job["job_id"] in [j["job_id"] for j in client.get("/batch/jobs").json()["jobs"]]
    assert client.post(f"/batch/jobs/{job['job_id']}/cancel").status_code == 409
    assert client.delete(f"/batch/jobs/{job['job_id']}").status_code == 204
    assert client.get(f"/batch/jobs/{job['job_id']}").status_code == 404


def test_events_stream_progress_images_and_the_end(client):
    job = upload(client, texts=["cat"])
    text = client.get(f"/batch/jobs/{job['job_id']}/events").text
    assert text.count("event: image") == 3 and "event: end" in text and "event: progress" in text


def test_jobs_belong_to_the_api_key_that_created_them(tmp_path):
    keyed = ready_client(data_dir=tmp_path, api_keys=["alice", "bob"])
    try:
        alice, bob = {"X-API-Key": "alice"}, {"X-API-Key": "bob"}
        response = keyed.post("/batch/jobs", headers=alice, data={"texts": '["cat"]'},
                              files=[("images", ("a.png", IMAGES["img_0.png"], "image/png"))])
        job_id = response.json()["job_id"]
        assert keyed.get(f"/batch/jobs/{job_id}", headers=alice).status_code == 200
        for path in ("", "/results", "/export"):
            assert keyed.get(f"/batch/jobs/{job_id}{path}", headers=bob).status_code == 404
        assert keyed.get("/batch/jobs", headers=bob).json()["jobs"] == []
        assert keyed.get("/batch/jobs").status_code == 401
    finally:
        keyed.__exit__(None, None, None)


def many_images(count: int, first_seed: int = 0) -> list:
    return [("images", (f"{index:03d}.png", png_bytes(random_image(64, 64, seed=first_seed + index)), "image/png"))
            for index in range(count)]


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


def test_a_body_over_the_batch_upload_limit_is_413_naming_its_setting(client, tmp_path):
    from tests.api.conftest import client_over

    engine = client.app.state.services.engine
    small = client_over(engine, data_dir=tmp_path, batch_max_upload_bytes=64 * 1024,
                        batch_backbone_images=engine.settings.batch_backbone_images)
    try:
        response = small.post("/batch/jobs", data={"texts": '["cat"]'},
                              files=[("archive", ("a.zip", b"\0" * (128 * 1024), "application/zip"))])
        assert response.status_code == 413 and "SAM3_BATCH_MAX_UPLOAD_BYTES" in response.json()["detail"]
        assert small.post("/batch/jobs", data={"texts": '["cat"]'},
                          files=[("images", ("a.png", IMAGES["img_0.png"], "image/png"))]).status_code == 202
    finally:
        small.__exit__(None, None, None)
