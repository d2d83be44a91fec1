"""The client's type hints: documented usage type-checks under `mypy --strict`, known call
options stay typed, and every call method takes the same typed options (`CallOptions`)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from saas_litellm_client import (
    CallOptions,
    JobSession,
    JobStatus,
    SaasLiteLLMClient,
    SyncJobSession,
    SyncSaasLiteLLMClient,
)

ROOT = Path(__file__).resolve().parents[2]
USAGE = Path(__file__).with_name("typed_usage.py")

_SESSION_CALLS = ("llm_call", "llm_call_stream", "structured_call")
_CLIENT_CALLS = (*_SESSION_CALLS, "estimate_call", "create_and_call", "create_and_call_stream")
CALL_METHODS = [
    (cls, name)
    for cls, names in [
        (SaasLiteLLMClient, _CLIENT_CALLS),
        (SyncSaasLiteLLMClient, _CLIENT_CALLS),
        (JobSession, _SESSION_CALLS),
        (SyncJobSession, _SESSION_CALLS),
    ]
    for name in names
]


@pytest.mark.parametrize(("cls", "name"), CALL_METHODS, ids=lambda v: getattr(v, "__name__", v))
def test_every_call_method_takes_the_typed_options_and_any_provider_parameter(cls, name):
    signature = inspect.signature(getattr(cls, name), eval_str=True)
    options = get_type_hints(CallOptions)
    if name == "structured_call":  # it sets response_format itself
        options.pop("response_format")
    keyword_only = {
        p.name: p
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name in options
    }
    assert {n: p.annotation for n, p in keyword_only.items()} == options
    assert all(p.default is None for p in keyword_only.values())
    [var_keyword] = [p for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    assert var_keyword.name == "provider_params" and var_keyword.annotation is Any


@pytest.mark.parametrize(
    "method",
    [SaasLiteLLMClient.complete_job, SyncSaasLiteLLMClient.complete_job, JobSession.complete, SyncJobSession.complete],
)
def test_the_completion_status_may_be_the_job_status_enum(method):
    accepted = set(get_args(get_type_hints(method)["status"]))
    assert accepted == {"completed", "failed", JobStatus.COMPLETED, JobStatus.FAILED}


async def test_complete_job_takes_the_job_status_of_either_completion(client):
    done = await client.create_job("enum")
    assert (await client.complete_job(done.job_id, JobStatus.COMPLETED)).status == JobStatus.COMPLETED
    async with client.job("enum") as job:
        assert (await job.complete(JobStatus.FAILED, error_message="stopped")).status == JobStatus.FAILED
    assert (await client.get_job(job.job_id)).error_message == "stopped"


def test_documented_usage_type_checks_under_mypy_strict(tmp_path):
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--python-executable",
            sys.executable,
            str(USAGE),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no project configuration: the client as its users' mypy sees it
        env={**os.environ, "MYPYPATH": str(ROOT / "client" / "src")},  # the source, not the editable install's hook
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
