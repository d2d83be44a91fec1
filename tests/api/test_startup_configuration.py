"""`python -m server` with a setting it cannot use stops at once with exit 2 and one line
naming the variable, never a traceback: before anything that setting would break is
imported or started."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_startup_errors import run_server

UNREACHED_DATABASE = {"DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}


def refused_at_start(env: dict[str, str], variable: str) -> str:
    result = run_server({**UNREACHED_DATABASE, **env})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"server: configuration error: {variable} " in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stderr


def test_a_prometheus_multiprocess_dir_that_is_missing_or_a_file_is_a_configuration_error(tmp_path: Path):
    # prometheus_client opened its files there while the server was imported: exit 1, a traceback.
    refused_at_start({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")}, "PROMETHEUS_MULTIPROC_DIR")
    (tmp_path / "a-file").write_text("")
    refused_at_start({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "a-file")}, "PROMETHEUS_MULTIPROC_DIR")
