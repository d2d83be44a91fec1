"""The operator's authentication (Authenticator.admin): a refusal says what was wrong
with what was sent, never echoing it."""

from __future__ import annotations

import pytest

from server.domain.errors import DomainError, Reason
from server.services.auth import Authenticator

ADMIN_KEY = "Operator.Admin.Key.0123456789"


def refusal(metadata: dict[str, str]) -> str:
    with pytest.raises(DomainError) as refused:
        Authenticator(None, ADMIN_KEY).admin(metadata)  # type: ignore[arg-type]  # no database: no team key
    assert refused.value.reason == Reason.ADMIN_KEY_REQUIRED
    return str(refused.value)


@pytest.mark.parametrize(
    "authorization", [ADMIN_KEY, f"Basic {ADMIN_KEY}", f"Token {ADMIN_KEY}", "Bearer", "Bearer   "]
)
def test_an_authorization_header_without_a_bearer_token_is_said_so(authorization):
    # It was "no admin key was sent", though one was.
    message = refusal({"authorization": authorization})
    assert "the Authorization header must be 'Bearer <admin key>'" in message
    assert "no admin key was sent" not in message
    assert ADMIN_KEY not in message


def test_no_key_at_all_is_still_said_so():
    assert "no admin key was sent" in refusal({})


def test_the_admin_key_as_a_bearer_token_is_accepted():
    assert Authenticator(None, ADMIN_KEY).admin({"authorization": f"bearer {ADMIN_KEY}"}).name == "admin"  # type: ignore[arg-type]
