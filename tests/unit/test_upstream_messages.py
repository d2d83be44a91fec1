"""What a tenant reads of a provider's refusal (UPSTREAM_REJECTED): the provider's words,
without the operator's secrets, real model names or infrastructure."""

from __future__ import annotations

from server.domain.models import Route
from server.upstream.litellm import _safe_message

ROUTE = Route("ChatAgent", ("fake-secret-pricey",))
KNOWN = frozenset({"fake-secret-pricey", "openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18"})


def test_a_providers_address_is_not_shown():
    message = _safe_message(
        {
            "message": "litellm.APIError: OpenAIException - Connection to https://llm.internal.example:8443/v1/chat "
            "failed (api_base=http://10.0.0.7:4000); see http://docs.example/x"
        },
        ROUTE,
        KNOWN,
    )
    assert "internal.example" not in message and "10.0.0.7" not in message and "docs.example" not in message
    assert message.startswith("Connection to [address]") and "api_base=[address]" in message


def test_model_names_and_keys_are_replaced_and_the_rest_kept():
    message = _safe_message(
        {"message": "for model=gpt-4o-mini-2024-07-18 (fake-secret-pricey), key sk-abcdef123456: context too long"},
        ROUTE,
        KNOWN,
    )
    assert message == "for model=ChatAgent (ChatAgent), key [redacted]: context too long"
