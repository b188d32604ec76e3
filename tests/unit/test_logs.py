"""Logs: text by default, one JSON object per line with LOG_FORMAT=json; every line carries its request id."""

from __future__ import annotations

import io
import json
import logging

import pytest
from asgi_correlation_id import correlation_id

from sam3_api.engine.worker import ModelWorker
from sam3_api.logs import configure_logging

log = logging.getLogger("sam3_api.test")


@pytest.fixture
def captured():
    """configure_logging() takes over the root logger: point its handler at a buffer, restore afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffers = []

    def configure(log_format: str) -> io.StringIO:
        configure_logging("INFO", log_format)
        buffer = io.StringIO()
        root.handlers[0].setStream(buffer)
        buffers.append(buffer)
        return buffer

    yield configure
    root.handlers, root.level = saved[0], saved[1]
    logging.captureWarnings(False)


def test_json_logs_are_one_object_per_line_with_the_request_id(captured):
    buffer = captured("json")
    token = correlation_id.set("req-json-1")
    try:
        log.info("hello %s", "world")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        correlation_id.reset(token)
    log.warning("outside any request")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["hello world", "failed", "outside any request"]
    assert [line["request_id"] for line in lines] == ["req-json-1", "req-json-1", "-"]
    assert lines[1]["level"] == "ERROR" and "ValueError: boom" in lines[1]["exc_info"]
    assert lines[0]["logger"] == "sam3_api.test" and lines[0]["time"]


def test_text_logs_show_the_request_id_in_brackets(captured):
    buffer = captured("text")
    token = correlation_id.set("req-text-1")
    log.info("plain")
    correlation_id.reset(token)
    assert "INFO sam3_api.test [req-text-1] plain" in buffer.getvalue()


def test_log_lines_written_on_the_model_thread_carry_the_request_id(captured):
    buffer = captured("json")
    worker = ModelWorker(max_queue=2)
    token = correlation_id.set("req-model-thread")
    try:
        worker.submit(log.info, "inside the model").result(timeout=5)
    finally:
        correlation_id.reset(token)
        worker.shutdown(timeout=5)
    line = json.loads(buffer.getvalue().splitlines()[0])
    assert line["message"] == "inside the model" and line["request_id"] == "req-model-thread"
