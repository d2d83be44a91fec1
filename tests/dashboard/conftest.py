"""Browser tests of the admin dashboard: headless Chromium (Debian's `chromium`) driven by
Playwright against the real stack (`stack` fixture: Envoy, server, LiteLLM proxy,
PostgreSQL), with the dashboard served by devstack.dashboard exactly as in `make dev`.

Screenshots are kept in test-artifacts/dashboard/ (gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack import dashboard
from devstack.stack import Stack
from tests.conftest import ADMIN_KEY, ROOT

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
# As the machine notes say: without the background-networking flags Chromium keeps
# trying to reach Google's hosts, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def dashboard_url(stack: Stack) -> str:
    """The dashboard of the test stack, its bundle built first if a source changed."""
    try:
        dashboard.build(log=print)
    except dashboard.BuildError as error:
        pytest.fail(f"cannot build the admin dashboard: {error}")
    assert httpx.get(f"{stack.dashboard_url}/healthz", timeout=5).status_code == 200
    return stack.dashboard_url


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module. Module-scoped on purpose: while Playwright's sync API
    is open it marks an asyncio loop as running in this thread, and pytest-asyncio's
    session loop (the async tests of other modules) cannot run until it is closed."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard tests need Debian's Chromium. Install it with "
            "`apt-get install -y chromium` (as root, `make install` does it)."
        )
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh, empty profile (its own --user-data-dir).
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, dashboard_url: str) -> Iterator:
    context = browser.new_context(base_url=dashboard_url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors in the page: {errors}"


def shot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/dashboard/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, key: str = ADMIN_KEY) -> None:
    page.goto("/")
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()
