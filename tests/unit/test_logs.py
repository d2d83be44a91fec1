"""The text log format (SAAS_LOG_FORMAT=text) says what the JSON one says."""

from __future__ import annotations

import io
import logging

import pytest

from server.observability import logs


@pytest.fixture
def text_logs():
    """What configure(fmt="text") writes, read from its handler."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.configure("INFO", "text")
    written = io.StringIO()
    (handler,) = root.handlers
    handler.setStream(written)
    yield written
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_the_access_line_keeps_its_fields_in_text(text_logs):
    """Its fields come as `extra`; the text formatter wrote the message alone ("request")."""
    logs.ACCESS.info(
        "request", extra={"request_id": "r-1", "rpc": "JobService/LLMCall", "code": "OK", "latency_ms": 2.5}
    )
    line = text_logs.getvalue().strip()
    assert line.endswith(
        "INFO saaslitellm.access: request request_id=r-1 rpc=JobService/LLMCall code=OK latency_ms=2.5"
    )


def test_a_record_without_fields_is_the_plain_line_and_a_traceback_follows_the_fields(text_logs):
    log = logging.getLogger("saaslitellm.test")
    log.warning("plain")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", extra={"job_id": "j-1"})
    first, second, *trace = text_logs.getvalue().splitlines()
    assert first.endswith("WARNING saaslitellm.test: plain")
    assert second.endswith("ERROR saaslitellm.test: failed job_id=j-1")
    assert trace[0] == "Traceback (most recent call last):" and trace[-1] == "ValueError: boom"
