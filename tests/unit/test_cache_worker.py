"""The embedding LRU's bounds and the model worker's bounded queue."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from sam3_api.engine.cache import EmbeddingCache
from sam3_api.engine.worker import ModelWorker
from sam3_api.errors import EngineBusy


@dataclass
class Blob:
    nbytes: int


def test_cache_evicts_least_recently_used_beyond_the_entry_limit():
    cache = EmbeddingCache(max_entries=2, max_bytes=1000)
    cache.put("a", Blob(10))
    cache.put("b", Blob(10))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", Blob(10))
    assert "b" not in cache and "a" in cache and "c" in cache


def test_cache_evicts_until_the_byte_budget_holds():
    cache = EmbeddingCache(max_entries=10, max_bytes=100)
    for key in "abcd":
        cache.put(key, Blob(40))
    assert len(cache) == 2 and cache.nbytes == 80 and {"c", "d"} == {k for k in "abcd" if k in cache}


def test_cache_skips_a_value_larger_than_the_whole_budget_and_can_be_disabled():
    cache = EmbeddingCache(max_entries=4, max_bytes=100)
    cache.put("small", Blob(10))
    cache.put("huge", Blob(500))
    assert "huge" not in cache and "small" in cache
    disabled = EmbeddingCache(max_entries=0, max_bytes=100)
    disabled.put("a", Blob(1))
    assert len(disabled) == 0


def test_worker_runs_jobs_on_one_dedicated_thread():
    worker = ModelWorker(max_queue=4)
    names = asyncio.run(_gather(worker, [threading.current_thread] * 3))
    assert {thread.name for thread in names} == {names[0].name} and names[0].name.startswith("sam3-model")
    worker.shutdown()


async def _gather(worker, functions):
    return await asyncio.gather(*(worker.run(f) for f in functions))


def test_worker_refuses_jobs_beyond_its_queue_and_recovers():
    worker = ModelWorker(max_queue=2)
    gate = threading.Event()
    running = [worker.submit(gate.wait), worker.submit(gate.wait)]
    with pytest.raises(EngineBusy) as caught:
        worker.submit(lambda: None)
    assert caught.value.status_code == 503 and caught.value.headers["Retry-After"] == "1"
    gate.set()
    for future in running:
        future.result(timeout=5)
    assert worker.submit(lambda: 42).result(timeout=5) == 42 and worker.pending == 0
    worker.shutdown()


def test_worker_frees_its_slot_when_a_job_fails():
    worker = ModelWorker(max_queue=1)

    def boom():
        raise ValueError("bad")

    with pytest.raises(ValueError):
        worker.submit(boom).result(timeout=5)
    assert worker.submit(lambda: "ok").result(timeout=5) == "ok"
    worker.shutdown()
