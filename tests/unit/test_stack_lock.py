"""A stack holds its data directory: a second one on it is refused before it touches
anything (it would share the first's embedded PostgreSQL and wipe the metrics directory
under the first's running servers)."""

from __future__ import annotations

import pytest

from devstack.processes import StartupError
from devstack.stack import Ports, Stack, StackConfig, _lock


def test_a_second_stack_on_a_data_directory_in_use_is_refused_and_changes_nothing(tmp_path):
    marker = tmp_path / "metrics" / "counters.db"
    marker.parent.mkdir()
    marker.write_text("the first stack's counters")
    held = _lock(tmp_path)
    try:
        second = Stack(StackConfig(data_dir=tmp_path, ports=Ports.free(), log=lambda line: None))
        with pytest.raises(StartupError, match=r"in use by another stack \(pid \d+\)"):
            second.start()
        assert marker.read_text() == "the first stack's counters"
    finally:
        held.close()
    _lock(tmp_path).close()  # free again once the holder lets go
