"""Writes server/domain/litellm_params.py: the request keys the pinned LiteLLM reads as its
own settings, which a tenant must not set through `extra_body` or the OpenAI entry point:
litellm.types.utils.all_litellm_params, and the keys its Router and its proxy's request
processing read from a request (`kwargs.get("...")`, `data.pop("...")`...) that are not
OpenAI chat parameters nor a provider's: per-request fallbacks (`content_policy_fallbacks`,
`context_window_fallbacks`), `router_settings_override`, `specific_deployment`,
`user_config`, `drop_params` and `additional_drop_params` (which would drop `max_tokens`
after a cost limit reserved by it), callbacks, `organization` and other credentials,
guardrail switches... Without them a tenant could have its call served by a model outside
its alias's route, escape its job's cost limit, or turn the operator's guardrails off. Run after changing
LiteLLM's version:

    .venv-litellm/bin/python scripts/litellm_params.py

tests/unit/test_litellm_params.py fails while the file differs from what this writes.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "server" / "domain" / "litellm_params.py"


# Where LiteLLM reads a request's own settings beyond all_litellm_params.
_READERS = (
    "main.py",
    "utils.py",
    "router.py",
    "proxy/litellm_pre_call_utils.py",
    "proxy/common_request_processing.py",
    "proxy/route_llm_request.py",
    "proxy/auth/auth_utils.py",
)
_READ = re.compile(
    r'(?:kwargs|data|request_data|_data|body|request_body|optional_params|litellm_params)\.(?:get|pop)\(\s*"([A-Za-z_]+)"'
)
# Read there, but a provider's parameters that LiteLLM passes on (Anthropic's `thinking` and
# `system`, Gemini's `generationConfig`, the Responses API's `input`...), or names of our own
# request (`purpose`): not refused.
_PROVIDERS = frozenset(
    {
        "agent",
        "code",
        "container_id",
        "contents",
        "data",
        "document",
        "deployment",
        "encoding_format",
        "endpoint",
        "exception",
        "file",
        "generationConfig",
        "input",
        "instructions",
        "prompt",
        "purpose",
        "query",
        "reasoning_effort",
        "response_id",
        "service_tier",
        "stream",
        "system",
        "thinking",
        "tools",
        "top_k",
        "video_id",
        "voice",
    }
)
# Read elsewhere in the proxy from the request body as its own: tag routing, its other
# guardrail and routing switches.
_ALSO = frozenset({"tags", "guardrails", "fastest_response", "router_settings", "mock_testing_fallbacks", "start_time"})


def render() -> str:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no fetch of the price map
    from importlib.metadata import version

    import litellm
    from litellm.proxy.auth.auth_utils import _BANNED_REQUEST_BODY_PARAMS
    from litellm.proxy.litellm_pre_call_utils import _UNTRUSTED_ROOT_CONTROL_FIELDS
    from litellm.types.utils import all_litellm_params
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase

    root = Path(litellm.__file__).parent
    read = {name for reader in _READERS for name in _READ.findall((root / reader).read_text())}
    # completion()'s own named arguments (`deployment_id` switches to Azure's client and
    # names the model it calls), the proxy's own ban list of request-body keys (provider
    # credentials, logging targets), and what it strips as untrusted control fields.
    read |= set(inspect.signature(litellm.completion).parameters) - {"kwargs"}
    read |= set(_BANNED_REQUEST_BODY_PARAMS) | set(_UNTRUSTED_ROOT_CONTROL_FIELDS)
    own = read - set(CompletionCreateParamsBase.__annotations__) - _PROVIDERS
    names = "\n".join(f'        "{name}",' for name in sorted(set(all_litellm_params) | own | _ALSO))
    return f'''"""Request keys LiteLLM {version("litellm")} reads as its own settings (credentials, routing,
fallbacks, pricing, mocking, logging, guardrails...), not as the provider's: written by
scripts/litellm_params.py, never by hand. A tenant cannot set them (server/domain/chat.py)."""

LITELLM_PARAMS = frozenset(
    {{
{names}
    }}
)
'''


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if TARGET.read_text() == text else 1)
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
