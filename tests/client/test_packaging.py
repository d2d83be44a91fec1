"""The client is a library: it declares compatible ranges of its dependencies, not exact
versions (which would conflict with an application's own), while the repository's lock
file keeps pinning the exact versions the tests use (`make install` installs the client
with `-c requirements/dev.lock`)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def locked() -> dict[str, Version]:
    """requirements/dev.lock: {normalized name: exact version}."""
    pins = {}
    for line in (ROOT / "requirements" / "dev.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.strip()).lower()] = Version(pinned.strip())
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


def test_each_dependency_is_a_range_from_the_tested_version_to_below_its_next_major():
    pins = locked()
    assert {r.name for r in declared()} == {"httpx", "httpx-sse", "pydantic"}
    for requirement in declared():
        tested = pins[requirement.name]
        assert {(s.operator, Version(s.version)) for s in requirement.specifier} == {
            (">=", tested),
            ("<", Version(f"{tested.major + 1}")),
        }, requirement


def test_the_installed_versions_are_the_locked_ones_and_fit_the_declared_ranges():
    pins = locked()
    for requirement in declared():
        installed = Version(version(requirement.name))
        assert installed == pins[requirement.name] and installed in requirement.specifier, requirement
