"""A batch job's results log: every image once, on disk as soon as it is done, whatever a crash left behind."""

from __future__ import annotations

import asyncio
import json

import pytest

from sam3_api.jobs.batch_results import BatchResults


def record(name: str, error: str | None = None) -> dict:
    line = {"file_name": name, "width": 4, "height": 3, "annotations": []}
    return {**line, "error": error} if error else line


def test_each_image_is_on_disk_as_soon_as_it_is_appended(tmp_path):
    results = BatchResults(tmp_path / "results.ndjson")
    assert results.append_record(record("b.jpg"))
    assert [json.loads(line)["file_name"] for line in (tmp_path / "results.ndjson").read_bytes().splitlines()] \
        == ["b.jpg"]  # flushed: another reader of the file sees it at once
    results.append_record(record("a.jpg", error="not an image"))
    reopened = BatchResults(tmp_path / "results.ndjson")
    assert reopened.done() == {"a.jpg", "b.jpg"} and len(reopened) == 2 and reopened.failed == 1
    assert [r["file_name"] for r in reopened.records()] == ["b.jpg", "a.jpg"]  # written order
    assert [r["file_name"] for r in reopened.records(["a.jpg", "c.jpg", "b.jpg"])] == ["a.jpg", "b.jpg"]
    assert reopened.lines_since(1) == [(json.dumps(record("a.jpg", "not an image"), separators=(",", ":")) +
                                        "\n").encode()]


def test_an_image_appended_twice_is_written_once(tmp_path):
    results = BatchResults(tmp_path / "results.ndjson")
    assert results.append_record(record("a.jpg"))
    assert not results.append_record({**record("a.jpg"), "width": 99})
    assert len((tmp_path / "results.ndjson").read_bytes().splitlines()) == 1
    assert [r["width"] for r in results.records()] == [4]


def test_a_torn_last_line_is_cut_and_the_next_append_starts_clean(tmp_path):
    path = tmp_path / "results.ndjson"
    results = BatchResults(path)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        results.append_record(record(name))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"file_name":"d.jpg","width":4,"hei')  # killed mid-write
    resumed = BatchResults(path)
    assert resumed.done() == {"a.jpg", "b.jpg", "c.jpg"} and path.read_bytes() == whole
    resumed.append_record(record("d.jpg"))
    assert [r["file_name"] for r in BatchResults(path).records()] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]


def test_a_last_line_without_its_newline_is_run_again_rather_than_glued_to_the_next(tmp_path):
    path = tmp_path / "results.ndjson"
    path.write_bytes(json.dumps(record("a.jpg")).encode())  # the JSON is whole, its newline never written
    resumed = BatchResults(path)
    assert resumed.done() == frozenset() and path.read_bytes() == b""
    resumed.append_record(record("a.jpg"))
    assert [r["file_name"] for r in BatchResults(path).records()] == ["a.jpg"]


def test_an_image_written_twice_by_a_restarted_job_is_read_once_and_the_first_line_wins(tmp_path):
    path = tmp_path / "results.ndjson"
    lines = [record("a.jpg"), record("b.jpg"), {**record("a.jpg"), "width": 99}, record("c.jpg"), b"not json\n"]
    path.write_bytes(b"".join(line if isinstance(line, bytes) else (json.dumps(line) + "\n").encode()
                              for line in lines))
    results = BatchResults(path)
    assert [(r["file_name"], r["width"]) for r in results.records()] == [("a.jpg", 4), ("b.jpg", 4), ("c.jpg", 4)]
    assert [r["file_name"] for r in results.records(["c.jpg", "b.jpg", "a.jpg"])] == ["c.jpg", "b.jpg", "a.jpg"]
    results.append_record(record("d.jpg"))
    assert len(BatchResults(path)) == 4


@pytest.mark.asyncio
async def test_readers_waiting_for_results_wake_on_each_append(tmp_path):
    results = BatchResults(tmp_path / "results.ndjson")
    seen = results.version
    waiter = asyncio.create_task(results.wait(seen, timeout=30))
    await asyncio.sleep(0)
    results.append_record(record("a.jpg"))
    await asyncio.wait_for(waiter, 5)
    assert results.version != seen and results.lines_since(0)
