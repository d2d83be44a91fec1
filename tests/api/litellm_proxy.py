"""A LiteLLM proxy of a test module's own, in front of the fake provider: the config the dev
stack renders (gateway/litellm.yaml) plus the module's models, started as the dev stack
starts it; `restart` it with other models, as an operator changes LiteLLM's config. For
what only the real proxy says: its model info, which deployment served a call, what a
call cost, its error messages."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devstack.stack import Ports, Stack, StackConfig


def deployment(model_name: str, model: str, price: tuple[float, float] | None = None) -> dict[str, Any]:
    """One entry of LiteLLM's model_list, served by the fake provider (which serves any
    model name); `price`: USD per (input, output) token, none when None."""
    entry: dict[str, Any] = {
        "model_name": model_name,
        "litellm_params": {"model": model, "api_base": "os.environ/FAKE_PROVIDER_BASE_URL", "api_key": "fake-key"},
    }
    if price is not None:
        entry["model_info"] = {"input_cost_per_token": price[0], "output_cost_per_token": price[1]}
    return entry


class LiteLLMProxy(Stack):
    """Only the stack's LiteLLM proxy, on a free port, calling the fake provider at `fake_url`."""

    def __init__(self, data_dir: Path, fake_url: str, models: list[dict[str, Any]]) -> None:
        ports = replace(Ports.free(), fake=urlsplit(fake_url).port)
        super().__init__(StackConfig(data_dir=data_dir, ports=ports, with_dashboard=False, log=lambda line: None))
        self.models = models

    @property
    def master_key(self) -> str:
        return self.config.litellm_master_key

    def litellm_config_path(self) -> Path:
        path = super().litellm_config_path()
        config = json.loads(path.read_text())
        config["model_list"] += self.models
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self) -> None:
        self._start_litellm()  # returns once it answers

    def restart(self, models: list[dict[str, Any]]) -> None:
        """Stop the proxy and start it again, on the same port, with `models` instead."""
        self.stop()
        self.models = models
        self.start()
