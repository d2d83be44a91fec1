"""A tenant cannot set LiteLLM's own settings (credentials, routing, per-request prices,
mock responses...) nor nest an `extra_body` that LiteLLM would merge over the bounded
request; the list of those settings is LiteLLM's own, regenerated with its version."""

from __future__ import annotations

import subprocess

import pytest

from server.api.openai_convert import parse_request
from server.domain.chat import build_request
from server.domain.errors import DomainError
from tests.conftest import ROOT


def test_the_list_is_the_pinned_litellms_own():
    checked = subprocess.run(
        [str(ROOT / ".venv-litellm" / "bin" / "python"), str(ROOT / "scripts" / "litellm_params.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, "server/domain/litellm_params.py is stale: run scripts/litellm_params.py"


@pytest.mark.parametrize(
    "key",
    [
        "extra_body",
        "extra_headers",
        "mock_response",
        "input_cost_per_token",
        "custom_llm_provider",
        "litellm_x",
        "_y",
        # Read by LiteLLM's Router and proxy: fallbacks to any model the proxy serves, a
        # deployment or routing of the caller's choosing, guardrails off (bug hunt E).
        "router_settings_override",
        "content_policy_fallbacks",
        "context_window_fallbacks",
        "specific_deployment",
        "model_id",
        "user_config",
        "tags",
        "disable_global_guardrails",
        "guardrails",
        # Read by LiteLLM's completion(): dropping max_tokens after a cost limit reserved
        # by it, the operator's own drop_params, callbacks, the OpenAI organization billed
        # (bug hunt F).
        "additional_drop_params",
        "drop_params",
        "success_callback",
        "callbacks",
        "organization",
        "vertex_project",
        # completion()'s deployment_id (another Azure deployment, on the operator's key),
        # credentials overriding the deployment's, the proxy's own ban list (bug hunt G).
        "deployment_id",
        "aws_access_key_id",
        "aws_session_token",
        "azure_ad_token",
        "user_provider_credentials",
        "start_time",
    ],
)
def test_extra_body_cannot_carry_gateway_or_litellm_settings(key):
    with pytest.raises(DomainError) as refused:
        build_request(
            model="",
            messages=[{"role": "user", "content": "hi"}],
            params={"max_tokens": 5},
            extra_body={key: {"max_tokens": 100000}},
            purpose="",
            call_metadata={},
        )
    assert refused.value.metadata["field"] == f"extra_body.{key}"


@pytest.mark.parametrize(
    "key",
    [
        "extra_body",
        "mock_response",
        "output_cost_per_token",
        "litellm_metadata",
        "router_settings_override",
        "user_config",
    ],
)
def test_the_openai_entry_point_refuses_them_by_name(key):
    with pytest.raises(DomainError) as refused:
        parse_request(f'{{"messages": [{{"role": "user", "content": "hi"}}], "{key}": 1}}'.encode())
    assert refused.value.metadata["field"] == key


def test_provider_parameters_still_pass():
    request = build_request(
        model="",
        messages=[{"role": "user", "content": "hi"}],
        params={},
        extra_body={
            "prediction": {"type": "content", "content": "x"},
            "service_tier": "flex",
            "thinking": {"type": "enabled"},
            "top_k": 5,
            "prompt_cache_key": "k",
        },
        purpose="",
        call_metadata={},
    )
    assert request.params == {
        "prediction": {"type": "content", "content": "x"},
        "service_tier": "flex",
        "thinking": {"type": "enabled"},  # Anthropic's, which LiteLLM also reads: a provider's
        "top_k": 5,
        "prompt_cache_key": "k",
    }
