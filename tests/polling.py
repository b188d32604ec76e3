"""Waiting for a job to settle, the way a client polls its status route."""

from __future__ import annotations

import time

JOB_PENDING = ("queued", "running")  # native video and batch jobs
RUNPOD_PENDING = ("IN_QUEUE", "IN_PROGRESS")


def settled(client, url: str, pending: tuple[str, ...] = JOB_PENDING, timeout: float = 90,
            interval: float = 0.05) -> dict:
    """GET `url` until its `status` is not one of `pending`; the last answer, or AssertionError at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(url).json()
        if answer["status"] not in pending:
            return answer
        if time.monotonic() >= deadline:
            raise AssertionError(f"{url} still {answer['status']} after {timeout} s: {answer}")
        time.sleep(interval)
