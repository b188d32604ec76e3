"""The model worker's priorities, starvation guard, cancellation, checkpoints, queue deadline and shutdown."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from sam3_api.engine.worker import JobCancelled, ModelWorker, Priority
from sam3_api.errors import EngineBusy, RequestTimeout
from sam3_api.metrics import Sam3Metrics

REQUEST = contextvars.ContextVar("request", default=None)


@pytest.fixture
def worker():
    worker = ModelWorker(max_queue=32, burst=2, metrics=Sam3Metrics())
    yield worker
    worker.shutdown(timeout=5)


def _hold(worker: ModelWorker) -> threading.Event:
    """Occupy the model thread until the returned gate is set (so later jobs queue up)."""
    gate, started = threading.Event(), threading.Event()
    worker.submit(lambda: (started.set(), gate.wait()))
    assert started.wait(5)
    return gate


def _jobs_total(worker: ModelWorker, outcome: str, kind: str = "job") -> float:
    return worker._metrics.registry.get_sample_value("sam3_model_jobs_total", {"kind": kind, "outcome": outcome}) or 0


def test_interactive_work_runs_before_waiting_normal_and_heavy_work(worker):
    order: list[str] = []
    gate = _hold(worker)
    futures = [worker.submit(order.append, name, priority=priority)
               for name, priority in (("heavy", Priority.HEAVY), ("normal", Priority.NORMAL),
                                      ("click", Priority.INTERACTIVE))]
    gate.set()
    for future in futures:
        future.result(timeout=5)
    assert order == ["click", "normal", "heavy"]


def test_heavy_work_is_not_starved_by_a_stream_of_interactive_work(worker):
    order: list[str] = []
    gate = _hold(worker)
    futures = [worker.submit(order.append, "heavy", priority=Priority.HEAVY)]
    futures += [worker.submit(order.append, f"click{i}", priority=Priority.INTERACTIVE) for i in range(6)]
    gate.set()
    for future in futures:
        future.result(timeout=5)
    assert order.index("heavy") == 2  # burst=2: two clicks may pass it, then it runs


def test_a_queued_job_whose_caller_went_away_never_runs_and_frees_its_slot(worker):
    ran: list[str] = []

    async def scenario():
        gate = _hold(worker)
        task = asyncio.create_task(worker.run(ran.append, "abandoned", priority=Priority.HEAVY))
        while worker.pending < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert worker.pending == 1  # freed at once, not when its turn would have come
        gate.set()
        await worker.run(ran.append, "next")

    asyncio.run(scenario())
    assert ran == ["next"] and _jobs_total(worker, "cancelled", kind="append") == 1


def test_a_running_job_stops_at_its_next_checkpoint_when_its_caller_goes_away(worker):
    steps: list[int] = []

    def long_job():
        for step in range(200):
            worker.checkpoint()
            steps.append(step)
            time.sleep(0.01)

    async def scenario():
        task = asyncio.create_task(worker.run(long_job, priority=Priority.HEAVY))
        while len(steps) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    deadline = time.monotonic() + 5
    while worker.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.pending == 0 and 3 <= len(steps) < 50
    assert _jobs_total(worker, "stopped", kind="long_job") == 1


def test_interactive_work_runs_inside_a_heavy_job_at_its_checkpoints(worker):
    events: list[str] = []
    clicked = threading.Event()

    def heavy():
        for step in range(6):
            worker.checkpoint()
            events.append(f"step{step}")
            time.sleep(0.03)

    future = worker.submit(heavy, priority=Priority.HEAVY)
    while "step1" not in events:
        time.sleep(0.005)
    click = worker.submit(lambda: (events.append("click"), clicked.set()), priority=Priority.INTERACTIVE)
    assert clicked.wait(5)
    assert not future.done()  # the click did not wait for the heavy job to end
    future.result(timeout=5)
    click.result(timeout=5)
    assert events.index("click") < events.index("step5")


def test_a_job_that_waits_past_the_queue_timeout_answers_504_and_never_runs():
    worker = ModelWorker(max_queue=4, queue_timeout_s=0.2)
    ran: list[str] = []
    gate = _hold(worker)
    background = worker.submit(ran.append, "video step", priority=Priority.HEAVY, expires=False)
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        asyncio.run(worker.run(ran.append, "late"))
    assert caught.value.status_code == 504 and time.monotonic() - started < 3
    assert worker.pending == 2  # the job holding the thread and the background step, which never expires
    time.sleep(0.3)
    gate.set()
    background.result(timeout=5)
    assert worker.submit(ran.append, "next").result(timeout=5) is None and ran == ["video step", "next"]
    worker.shutdown(timeout=5)


def test_jobs_run_in_their_callers_context_on_the_model_thread(worker):
    async def scenario():
        REQUEST.set("request-7")
        return await worker.run(lambda: (REQUEST.get(), threading.current_thread().name))

    assert asyncio.run(scenario()) == ("request-7", "sam3-model")


def test_shutdown_drops_queued_jobs_stops_the_running_one_and_refuses_new_ones():
    worker = ModelWorker(max_queue=8)
    steps: list[int] = []

    def long_job():
        for step in range(500):
            worker.checkpoint()
            steps.append(step)
            time.sleep(0.01)

    running = worker.submit(long_job)
    queued = worker.submit(steps.append, -1)
    while not steps:
        time.sleep(0.005)
    worker.shutdown(timeout=5)
    with pytest.raises(EngineBusy, match="shutting down"):
        queued.result(timeout=1)
    assert -1 not in steps
    with pytest.raises(JobCancelled):
        running.result(timeout=1)
    assert len(steps) < 100 and worker.pending == 0
