"""ShortJobRunner (jobs/short.py) over a real JobStore on disk, with small handlers standing for the work.

The runner is generic (seed 003's jobs are one user): these tests pin its contract: order, persistence of
outputs, failure messages, cancellation of queued and running jobs, the queue cap, restart recovery next to
video jobs in the same store, owner scoping and the TTL.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from sam3_api.errors import EngineBusy, InvalidPrompt
from sam3_api.jobs.short import OUTPUT_FILE, ShortJobRunner
from sam3_api.jobs.store import JobStore
from tests.conftest import ManualClock

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


async def echo(job):
    await asyncio.sleep(0)
    return {"echo": job.request["value"]}


def runner_over(tmp_path, handler=echo, **options) -> ShortJobRunner:
    """A started runner, as the app's lifespan starts it."""
    options = {"max_queued": 8, "ttl_s": 3600, **options}
    runner = ShortJobRunner(JobStore(tmp_path, ttl_s=3600), "short", handler, **options)
    runner.start()
    return runner


async def finished(runner: ShortJobRunner, job, timeout_s: float = 5):
    await runner.wait(job, timeout_s)
    assert job.finished, job.status
    return job


async def test_jobs_run_in_order_and_their_output_is_written_beside_the_manifest(tmp_path):
    runner = runner_over(tmp_path)
    jobs = [runner.submit({"value": n}, owner=None) for n in range(3)]
    for job in jobs:
        await finished(runner, job)
    assert [job.status for job in jobs] == ["succeeded"] * 3
    assert [job.started_at for job in jobs] == sorted(job.started_at for job in jobs)
    assert [runner.read_output(job) for job in jobs] == [{"echo": n} for n in range(3)]
    assert json.loads((runner.store.directory(jobs[0].job_id) / OUTPUT_FILE).read_text()) == {"echo": 0}
    await runner.shutdown()


async def test_a_domain_error_fails_the_job_with_its_message_and_a_bug_with_a_generic_one(tmp_path):
    async def failing(job):
        if job.request["value"] == "domain":
            raise InvalidPrompt("Missing required field: image_url")
        raise ZeroDivisionError("a bug")

    runner = runner_over(tmp_path, failing)
    domain, bug = runner.submit({"value": "domain"}, None), runner.submit({"value": "bug"}, None)
    await finished(runner, domain)
    await finished(runner, bug)
    assert (domain.status, domain.error) == ("failed", "Missing required field: image_url")
    assert bug.status == "failed" and "server log" in bug.error and "a bug" not in bug.error
    await runner.shutdown()


async def test_a_cancelled_queued_job_never_runs_and_a_running_one_stops_at_once(tmp_path):
    started, ran = asyncio.Event(), []

    async def slow(job):
        ran.append(job.request["value"])
        started.set()
        await asyncio.sleep(60)
        return {}

    runner = runner_over(tmp_path, slow)
    running, queued = runner.submit({"value": "first"}, None), runner.submit({"value": "second"}, None)
    await asyncio.wait_for(started.wait(), 5)
    runner.cancel(queued)
    runner.cancel(running)
    await finished(runner, running, 1)
    assert (running.status, queued.status) == ("cancelled", "cancelled")
    assert queued.started_at is None
    await asyncio.sleep(0.1)
    assert ran == ["first"] and not runner.busy
    await runner.shutdown()


async def test_a_full_queue_refuses_new_jobs_with_retry_after(tmp_path):
    async def blocked(job):
        await asyncio.sleep(60)

    runner = runner_over(tmp_path, blocked, max_queued=2, queue_setting="SAM3_RUNPOD_MAX_QUEUED_JOBS")
    runner.submit({"value": 0}, None)
    await asyncio.sleep(0.05)  # the first one is running, no longer queued
    runner.submit({"value": 1}, None)
    runner.submit({"value": 2}, None)
    with pytest.raises(EngineBusy) as refused:
        runner.submit({"value": 3}, None)
    assert "SAM3_RUNPOD_MAX_QUEUED_JOBS=2" in refused.value.message and refused.value.headers["Retry-After"]
    await runner.shutdown()


async def test_after_a_restart_queued_jobs_run_running_ones_are_interrupted_and_video_jobs_are_left_alone(tmp_path):
    store = JobStore(tmp_path, ttl_s=3600)
    queued = store.create("short", {"value": "waited"})
    running = store.create("short", {"value": "was running"})
    running.status = "running"
    store.save(running)
    video = store.create("video", {"texts": ["cat"]})

    restarted = JobStore(tmp_path, ttl_s=3600)
    runner = ShortJobRunner(restarted, "short", echo, max_queued=8, ttl_s=3600)
    runner.start()
    assert [job.job_id for job in restarted.recover("video")] == [video.job_id]  # the video runner's share
    job = restarted.get(queued.job_id)
    await finished(runner, job)
    assert runner.read_output(job) == {"echo": "waited"}
    assert restarted.get(running.job_id).status == "interrupted"
    assert restarted.get(video.job_id).status == "queued"  # not run by this runner
    await runner.shutdown()


async def test_a_job_is_visible_only_to_its_owner(tmp_path):
    runner = runner_over(tmp_path)
    job = runner.submit({"value": 1}, owner="key-a")
    assert runner.find(job.job_id, "key-a") is job
    assert runner.find(job.job_id, "key-b") is None and runner.find(job.job_id, None) is None
    assert runner.jobs("key-b") == [] and runner.jobs("key-a") == [job]
    await runner.shutdown()


async def test_finished_jobs_expire_after_the_ttl_and_their_files_are_deleted(tmp_path):
    runner = runner_over(tmp_path, ttl_s=60)
    clock = runner.store.clock = ManualClock()
    job = await finished(runner, runner.submit({"value": 1}, None))
    clock.advance(59)
    runner.sweep()
    assert runner.find(job.job_id, None) is job and runner.jobs(None) == [job], "within the TTL"
    clock.advance(2)
    runner.sweep()  # what the runner's background sweep does every min(60 s, TTL)
    assert not runner.store.directory(job.job_id).exists()  # swept, before anyone asked for it
    assert runner.find(job.job_id, None) is None and runner.jobs(None) == []
    await runner.shutdown()


async def test_shutdown_marks_the_running_job_interrupted(tmp_path):
    started = asyncio.Event()

    async def slow(job):
        started.set()
        await asyncio.sleep(60)

    runner = runner_over(tmp_path, slow)
    job = runner.submit({"value": 1}, None)
    await asyncio.wait_for(started.wait(), 5)
    await runner.shutdown()
    assert job.status == "interrupted"
    assert json.loads((runner.store.directory(job.job_id) / "manifest.json").read_text())["status"] == "interrupted"


async def test_a_runner_started_again_after_shutdown_runs_the_jobs_still_queued(tmp_path):
    runner = runner_over(tmp_path)
    runner.start()
    await runner.shutdown()  # e.g. an in-process client ran the app's lifespan once already
    job = runner.store.create("short", {"value": "later"})
    runner.start()
    await finished(runner, job)
    assert runner.read_output(job) == {"echo": "later"}
    await runner.shutdown()
