"""Batch job inputs: a broken image is recorded and the job goes on, hostile archives get their 4xx, bad
prompts 422, image_dir stays below SAM3_IMAGE_ROOT, jobs belong to their API key, bodies over the limit 413."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.api.batch_helpers import (IMAGES, batch_images_counted, records, start_client, submit, upload,
                                     wait_finished)
from tests.api.conftest import ready_client


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    client = start_client(tmp_path_factory)
    yield client
    client.__exit__(None, None, None)


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
                                           ({"texts": ["x" * 300]}, 422),
                                           ({"texts": [str(i) for i in range(65)]}, 422)])
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
