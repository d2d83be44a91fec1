"""Writes server/domain/litellm_params.py: the request keys the pinned LiteLLM reads as its
own settings (litellm.types.utils.all_litellm_params), which a tenant must not set through
`extra_body` or the OpenAI entry point. Run after changing LiteLLM's version:

    .venv-litellm/bin/python scripts/litellm_params.py

tests/unit/test_litellm_params.py fails while the file differs from what this writes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "server" / "domain" / "litellm_params.py"


def render() -> str:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no fetch of the price map
    from importlib.metadata import version

    from litellm.types.utils import all_litellm_params

    names = "\n".join(f'        "{name}",' for name in sorted(set(all_litellm_params)))
    return f'''"""Request keys LiteLLM {version("litellm")} reads as its own settings (credentials, routing,
pricing, mocking, logging...), not as the provider's: written by scripts/litellm_params.py,
never by hand. A tenant cannot set them (server/domain/chat.py)."""

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
