"""The operator's journey through the admin dashboard, in a real browser against the real
stack: sign in, set up an organization, a group, an alias and a team, add credits, watch
a job made through the REST API appear with its calls and costs, manage keys, sign out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import requests
from playwright.sync_api import Page, expect

from devstack.stack import Stack
from tests.conftest import ADMIN_KEY, unique
from tests.dashboard.conftest import shot, sign_in

pytestmark = pytest.mark.e2e
ADMIN = {"X-Admin-Key": ADMIN_KEY}


def dialog(page: Page, title: str):
    return page.get_by_role("dialog", name=title)


def test_sign_in_refuses_a_wrong_key_and_keeps_the_key_out_of_url_and_local_storage(page: Page) -> None:
    sign_in(page, "not-the-admin-key-0000000000")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("admin API")
    expect(alert).to_contain_text("ADMIN_KEY_REQUIRED")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    shot(page, "01-sign-in-refused")

    page.get_by_label("Admin key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Organizations")).to_be_visible()
    assert ADMIN_KEY not in page.url
    assert page.evaluate("() => JSON.stringify(Object.entries(localStorage))") == "[]"
    assert page.evaluate("() => document.cookie") == ""

    page.reload()  # the session survives a reload of the tab...
    expect(page.get_by_role("heading", name="Organizations")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()  # ...and not a sign-out
    expect(page.get_by_label("Admin key")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_label("Admin key")).to_be_visible()


def test_operator_sets_up_a_team_adds_credits_and_sees_its_job(page: Page, stack: Stack) -> None:
    org, group, alias, team = unique("org"), unique("grp"), unique("Agent"), unique("team")
    sign_in(page)

    # Organization.
    page.get_by_role("button", name="New organization").click()
    form = dialog(page, "New organization")
    form.get_by_label("Organization ID").fill(org)
    form.get_by_label("Name", exact=True).fill("ACME Corporation")
    form.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("heading", name=re.compile("ACME Corporation"))).to_be_visible()

    # Access group.
    page.get_by_role("link", name="Access groups").click()
    page.get_by_role("button", name="New group").click()
    form = dialog(page, "New model access group")
    form.get_by_label("Group name").fill(group)
    form.get_by_label("Description").fill("GPT models")
    form.get_by_role("button", name="Create group").click()
    expect(form).to_have_count(0)
    page.get_by_label("Search groups").fill(group)  # other tests' groups may fill the first page
    expect(page.get_by_role("row", name=re.compile(group))).to_be_visible()

    # Alias on a LiteLLM model, in the group; fallbacks in order.
    page.get_by_role("link", name="Model aliases").click()
    page.get_by_role("button", name="New alias").click()
    form = dialog(page, "New model alias")
    form.get_by_label("Alias", exact=True).fill(alias)
    form.get_by_label("LiteLLM model").select_option("fake-gpt")
    form.get_by_role("checkbox", name="fake-gpt-backup").check()
    form.get_by_role("checkbox", name=group).check()
    form.get_by_role("button", name="Create alias").click()
    expect(form).to_have_count(0)
    page.get_by_label("Search aliases").fill(alias)
    row = page.get_by_role("row", name=re.compile(alias))
    expect(row).to_contain_text("fake-gpt")
    expect(row).to_contain_text("fake-gpt-backup")
    expect(row).to_contain_text(group)
    shot(page, "02-model-aliases")

    # Team: the key is shown once, with a copy button and the warning.
    page.get_by_role("link", name="Teams").click()
    page.get_by_role("button", name="New team").click()
    form = dialog(page, "New team")
    form.get_by_label("Organization").select_option(org)
    form.get_by_label("Team ID").fill(team)
    form.get_by_label("Display name").fill("ACME Corp Team")
    form.get_by_label("Initial credits").fill("5")
    form.get_by_role("checkbox", name=group).check()
    form.get_by_label("Default model").select_option(alias)
    form.get_by_role("button", name="Create team").click()
    reveal = dialog(page, f"Team {team} created")
    expect(reveal).to_contain_text("it is shown only once")
    key = reveal.get_by_test_id("virtual-key").input_value()
    assert key.startswith("sk-")
    expect(reveal.get_by_role("button", name="Copy")).to_be_visible()
    done = reveal.get_by_role("button", name="Done")
    expect(done).to_be_disabled()
    shot(page, "03-team-key-shown-once")
    reveal.get_by_role("checkbox", name=re.compile("I have stored the key")).check()
    done.click()
    expect(page.get_by_role("heading", name=re.compile("ACME Corp Team"))).to_be_visible()
    expect(page.get_by_test_id("balance-available")).to_have_text("5")

    # Add credits with a reason.
    credits = page.get_by_role("form", name="Add credits")
    credits.get_by_label("Credits").fill("10")
    credits.get_by_label("Reason").fill("pilot top-up")
    credits.get_by_role("button", name="Add credits").click()
    expect(page.get_by_text("Added 10 credits; 15 available.")).to_be_visible()
    expect(page.get_by_test_id("balance-available")).to_have_text("15")
    shot(page, "04-team-overview")

    # The team works through the REST API with its key: one job, two calls.
    api = f"{stack.api_url}/api"
    auth = {"Authorization": f"Bearer {key}"}
    job = requests.post(
        f"{api}/jobs/create",
        headers=auth,
        json={"job_type": "document_analysis", "user_id": "user-42", "metadata": {"document": "contract.pdf"}},
        timeout=30,
    )
    assert job.status_code == 200, job.text
    job_id = job.json()["job_id"]
    for text in ("Analyze this [fake tokens=12]", "And this [fake tokens=5]"):
        call = requests.post(
            f"{api}/jobs/{job_id}/llm-call", headers=auth, json={"messages": [{"role": "user", "content": text}]}
        )
        assert call.status_code == 200, call.text
    done_job = requests.post(f"{api}/jobs/{job_id}/complete", headers=auth, json={"status": "completed"}, timeout=30)
    assert done_job.json()["costs"]["credits_remaining"] == 14

    # ... and the job appears with its calls and costs.
    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.get_by_role("row", name=re.compile("document_analysis"))
    expect(row).to_contain_text("completed")
    expect(row).to_contain_text(job_id[:8])
    row.click()
    detail = page.get_by_test_id("job-detail")
    expect(detail).to_contain_text(job_id)
    calls = detail.get_by_role("row").filter(has_text=alias)
    expect(calls).to_have_count(2)
    expect(calls.first).to_contain_text("succeeded")
    expect(detail).to_contain_text("$0.0000")  # fake-gpt costs $1/M prompt + $2/M completion tokens
    expect(detail).to_contain_text("user-42")
    expect(detail.get_by_test_id("job-metadata")).to_contain_text('"document": "contract.pdf"')
    shot(page, "05-job-calls-and-costs")
    page.get_by_role("button", name="Close").click()

    # The ledger: allocation, top-up with its reason, reservation and charge.
    page.get_by_role("link", name="Ledger").click()
    expect(page.get_by_role("row", name=re.compile("pilot top-up"))).to_contain_text("+10")
    expect(page.get_by_role("row", name=re.compile(r"charge", re.I)).first).to_contain_text("-1")

    # Usage charts for the team.
    page.get_by_role("link", name="Usage", exact=True).nth(1).click()
    totals = page.get_by_test_id("usage-totals")
    expect(totals).to_contain_text("Calls2")
    expect(page.get_by_role("img", name="Jobs per day, by status")).to_be_visible()
    expect(page.get_by_role("img", name="Provider cost and billed cost per day (USD)")).to_be_visible()
    shot(page, "06-team-usage")

    # The organization's usage, with its team.
    page.get_by_role("link", name="Usage", exact=True).first.click()
    page.get_by_label("Organization", exact=True).select_option(org)
    expect(page.get_by_role("img", name="Calls per day, by job type")).to_be_visible()
    expect(page.get_by_test_id("usage-totals")).to_contain_text("Jobs1")
    expect(page.get_by_role("cell", name=team)).to_be_visible()
    shot(page, "07-organization-usage")


def test_team_status_settings_and_keys(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    org, group, team = unique("org"), unique("grp"), unique("team")
    requests.post(f"{api}/organizations/create", headers=ADMIN, json={"organization_id": org, "name": "Org"})
    requests.post(f"{api}/model-access-groups/create", headers=ADMIN, json={"group_name": group})
    created = requests.post(
        f"{api}/teams/create",
        headers=ADMIN,
        json={"organization_id": org, "team_id": team, "access_groups": [group], "credits_allocated": 3},
    ).json()
    first_key = created["virtual_key"]
    sign_in(page)
    page.goto(f"/#/teams/{team}")

    # Status: suspended teams are refused at once.
    page.get_by_role("group", name="Team status").get_by_role("button", name="Suspended").click()
    expect(page.get_by_role("heading", name=re.compile(team))).to_contain_text("suspended")
    refused = requests.post(
        f"{api}/jobs/create", headers={"Authorization": f"Bearer {first_key}"}, json={"job_type": "probe"}
    )
    assert refused.json()["details"][0]["reason"] == "TEAM_SUSPENDED"
    page.get_by_role("group", name="Team status").get_by_role("button", name="Active").click()
    expect(page.get_by_role("heading", name=re.compile(team))).to_contain_text("active")

    # Budget mode and markup; a bad markup is refused with the field named.
    page.get_by_role("link", name="Settings").click()
    settings = page.get_by_role("form", name="Team settings")
    settings.get_by_label("Markup (%)").fill("not-a-number")
    settings.get_by_role("button", name="Save settings").click()
    expect(settings.get_by_role("alert")).to_contain_text("markup_percent")
    expect(settings.get_by_role("alert")).to_contain_text("INVALID_REQUEST")
    settings.get_by_label("Markup (%)").fill("25")
    settings.get_by_label("Budget mode").select_option("CONSUMPTION_TOKENS")
    settings.get_by_label("Tokens per credit").fill("500")
    settings.get_by_label("LLM calls a minute").fill("120")
    settings.get_by_label("LLM calls per job").fill("40")
    settings.get_by_label("Cost per job (USD)").fill("0.75")
    settings.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    saved = requests.get(f"{api}/teams/{team}", headers=ADMIN).json()
    assert (
        saved["markup_percent"],
        saved["budget_mode"],
        saved["tokens_per_credit"],
        saved["calls_per_minute"],
        saved["max_calls_per_job"],
        saved["max_cost_usd_per_job"],
    ) == ("25", "CONSUMPTION_TOKENS", 500, 120, 40, "0.75")

    # Keys: create one (shown once), rotate the first, revoke the new one.
    page.get_by_role("link", name="Keys").click()
    page.get_by_role("button", name="New key").click()
    dialog(page, "New key").get_by_label("Name").fill("staging")
    dialog(page, "New key").get_by_role("button", name="Create key").click()
    reveal = dialog(page, f'New key "staging" for {team}')
    staging_key = reveal.get_by_test_id("virtual-key").input_value()
    reveal.get_by_role("checkbox").check()
    reveal.get_by_role("button", name="Done").click()
    expect(page.get_by_role("row", name=re.compile("staging"))).to_contain_text("active")

    page.get_by_role("row", name=re.compile("default")).get_by_role("button", name="Rotate…").click()
    rotate = dialog(page, re.compile("Rotate"))
    rotate.get_by_label(re.compile("Grace period")).fill("0")
    rotate.get_by_role("button", name="Rotate key").click()
    reveal = dialog(page, 'Rotated key "default"')
    rotated_key = reveal.get_by_test_id("virtual-key").input_value()
    assert rotated_key.startswith("sk-") and rotated_key != first_key
    reveal.get_by_role("checkbox").check()
    reveal.get_by_role("button", name="Done").click()

    page.get_by_role("row", name=re.compile("staging")).get_by_role("button", name="Revoke…").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("row", name=re.compile("staging"))).to_contain_text("revoked")
    shot(page, "08-team-keys")
    refused = requests.post(
        f"{api}/jobs/create", headers={"Authorization": f"Bearer {staging_key}"}, json={"job_type": "probe"}
    )
    assert refused.status_code == 401


def test_api_errors_are_shown_plainly_and_change_nothing(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    taken = unique("org")
    requests.post(f"{api}/organizations/create", headers=ADMIN, json={"organization_id": taken, "name": "Taken"})
    sign_in(page)

    page.get_by_role("button", name="New organization").click()
    form = dialog(page, "New organization")
    form.get_by_label("Organization ID").fill("bad id!")
    form.get_by_label("Name", exact=True).fill("Bad")
    form.get_by_role("button", name="Create organization").click()
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text("INVALID_REQUEST")
    expect(alert).to_contain_text("organization_id")
    expect(alert).to_contain_text("HTTP 400")

    form.get_by_label("Organization ID").fill(taken)
    form.get_by_role("button", name="Create organization").click()
    expect(alert).to_contain_text("ALREADY_EXISTS")
    expect(alert).to_contain_text("HTTP 409")
    shot(page, "09-error-shown")
    assert requests.get(f"{api}/organizations/{taken}", headers=ADMIN).json()["name"] == "Taken"

    # An alias on a model the LiteLLM proxy does not serve is refused, naming the field.
    form.get_by_role("button", name="Close").click()
    page.get_by_role("link", name="Model aliases").click()
    page.get_by_role("button", name="New alias").click()
    alias_form = dialog(page, "New model alias")
    alias_form.get_by_label("Alias", exact=True).fill("bad alias with spaces")
    alias_form.get_by_role("button", name="Create alias").click()
    expect(alias_form.get_by_role("alert")).to_contain_text("model_alias")


def test_the_alias_form_warns_of_a_model_without_a_price(page: Page, stack: Stack) -> None:
    sign_in(page)
    page.get_by_role("link", name="Model aliases").click()
    page.get_by_role("button", name="New alias").click()
    form = dialog(page, "New model alias")
    model = form.get_by_label("LiteLLM model")
    expect(model.locator("option", has_text="fake-unpriced (no price)")).to_have_count(1)
    expect(model.locator("option", has_text="fake-free (no price)")).to_have_count(0)  # priced at 0: free
    warning = form.get_by_role("status").filter(has_text="no price")
    model.select_option("fake-gpt")
    expect(warning).to_have_count(0)
    form.get_by_role("checkbox", name="fake-unpriced").check()  # as a fallback too
    expect(warning).to_contain_text("LiteLLM has no price for fake-unpriced")
    form.get_by_role("checkbox", name="fake-unpriced").uncheck()
    expect(warning).to_have_count(0)
    model.select_option("fake-unpriced")
    expect(warning).to_contain_text("input_cost_per_token")
    shot(page, "11-unpriced-model-warning")


def test_lists_are_paginated_and_searchable(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    prefix = unique("pg")
    for index in range(30):
        response = requests.post(
            f"{api}/organizations/create",
            headers=ADMIN,
            json={"organization_id": f"{prefix}-{index:02d}", "name": f"Paged {index:02d}"},
        )
        assert response.status_code == 200, response.text
    sign_in(page)

    rows = page.locator("table.table tbody tr")
    expect(rows).to_have_count(25)
    page.get_by_role("button", name="Next →").click()
    expect(page.get_by_text("Page 2")).to_be_visible()
    page.get_by_role("button", name="← Previous").click()
    expect(page.get_by_text("Page 1")).to_be_visible()

    page.get_by_label("Search organizations").fill(f"{prefix}-2")
    expect(page.get_by_test_id("search-status")).to_contain_text("10 match(es) among")
    expect(rows).to_have_count(10)
    page.get_by_label("Search organizations").fill("paged 07")  # names too, case-insensitive
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"{prefix}-07")
    shot(page, "10-search")


def test_low_credit_alert_and_webhook_endpoints(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    org, team = unique("org"), unique("team")
    url = f"http://127.0.0.1:9/hooks/{team}"  # nothing listens: deliveries stay pending
    requests.post(f"{api}/organizations/create", headers=ADMIN, json={"organization_id": org, "name": "Hooked"})
    created = requests.post(
        f"{api}/teams/create", headers=ADMIN, json={"organization_id": org, "team_id": team, "credits_allocated": 10}
    ).json()
    sign_in(page)

    # The team's low-credit alert, in its settings.
    page.goto(f"/#/teams/{team}/settings")
    settings = page.get_by_role("form", name="Team settings")
    settings.get_by_label("Low-credit alert at (credits)").fill("7")
    settings.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    assert requests.get(f"{api}/teams/{team}", headers=ADMIN).json()["low_credit_threshold"] == 7
    page.get_by_role("link", name="Overview").click()
    expect(page.locator("dt", has_text="Low-credit alert").locator("xpath=following-sibling::dd[1]")).to_contain_text(
        "at 7 credits remaining"
    )

    # A bad URL is refused, naming the field; a good one gives the secret, shown once.
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    expect(page.get_by_text("webhook-signature")).to_be_visible()
    page.get_by_role("button", name="New endpoint").click()
    form = dialog(page, "New webhook endpoint")
    form.get_by_label("URL").fill("ftp://example.com/hooks")
    form.get_by_role("checkbox", name="job.failed").check()
    form.get_by_role("button", name="Create endpoint").click()
    expect(form.get_by_role("alert")).to_contain_text("url:")
    expect(form.get_by_role("alert")).to_contain_text("HTTP 400")
    expect(form.get_by_role("alert").locator("li")).to_have_count(0)  # its one field is the message: not twice
    form.get_by_label("URL").fill(url)
    form.get_by_label("Organization").select_option(org)
    form.get_by_label("Description").fill("on-call pager")
    form.get_by_role("button", name="Create endpoint").click()
    reveal = dialog(page, f"Endpoint {url} created")
    expect(reveal).to_contain_text("Signing secret, shown only this once: store it with your receiver")
    secret = reveal.get_by_test_id("webhook-secret").input_value()
    assert secret.startswith("whsec_")
    expect(reveal.get_by_role("button", name="Copy")).to_be_visible()
    done = reveal.get_by_role("button", name="Done")
    expect(done).to_be_disabled()
    reveal.get_by_role("checkbox", name=re.compile("I have stored the secret")).check()
    done.click()
    expect(reveal).to_have_count(0)

    # Listed with the secret's prefix only, also after leaving the page and coming back.
    page.get_by_role("link", name="Teams", exact=True).click()
    expect(page.get_by_role("heading", name="Teams")).to_be_visible()
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Search endpoints").fill(url)
    row = page.get_by_role("row", name=url)
    expect(row).to_contain_text("job.failed")
    expect(row).to_contain_text(org)
    expect(row).to_contain_text(f"{secret[:10]}…")
    shot(page, "12-webhooks")
    assert secret not in page.content() and secret not in page.url
    assert secret not in page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )

    # A job of the team fails: its job.failed delivery is listed, pending (nothing listens).
    auth = {"Authorization": f"Bearer {created['virtual_key']}"}
    job_id = requests.post(f"{api}/jobs/create", headers=auth, json={"job_type": "hooked"}, timeout=30).json()["job_id"]
    failed = requests.post(
        f"{api}/jobs/{job_id}/complete", headers=auth, json={"status": "failed", "error_message": "unreadable"}
    )
    assert failed.status_code == 200, failed.text
    row.get_by_role("link", name=url).click()
    expect(page.get_by_role("heading", name=url)).to_be_visible()
    delivery = page.get_by_role("row", name=re.compile("job.failed"))
    expect(delivery).to_contain_text("pending")
    page.get_by_label("Delivery status filter").select_option("delivered")
    expect(delivery).to_have_count(0)
    expect(page.get_by_text("No deliveries yet.")).to_be_visible()
    page.get_by_label("Delivery status filter").select_option("pending")
    expect(delivery).to_contain_text("pending")
    shot(page, "13-webhook-deliveries")
    delivery.click()
    detail = page.get_by_test_id("delivery-detail")
    expect(detail).to_contain_text(job_id)
    expect(detail).to_contain_text("unreadable")
    page.get_by_role("button", name="Close").click()

    # A test event is queued for the endpoint and listed with its deliveries.
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_role("status").filter(has_text="webhook.test")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("webhook.test"))).to_contain_text("pending")

    # Deleted, with its deliveries.
    page.get_by_role("button", name="Delete…").click()
    dialog(page, "Delete this endpoint?").get_by_role("button", name="Delete endpoint").click()
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    page.get_by_label("Search endpoints").fill(url)
    expect(page.get_by_test_id("search-status")).to_have_text(re.compile(r"^0 match\(es\) among"))
    expect(page.get_by_role("row", name=url)).to_have_count(0)
    assert url not in requests.get(f"{api}/webhooks?page_size=1000", headers=ADMIN).text


# ---------------------------------------------------------------- operator-experience fixes


def make_team(api: str, **settings) -> tuple[str, str]:
    """A team of its own organization, with an alias on fake-gpt as its default model;
    `settings` are UpdateTeam fields. Returns the team id and its first key."""
    org, group, alias, team = unique("org"), unique("grp"), unique("Agent"), unique("team")
    for path, body in (
        ("/organizations/create", {"organization_id": org, "name": "Org"}),
        ("/model-access-groups/create", {"group_name": group}),
        ("/models/create", {"model_alias": alias, "actual_model": "fake-gpt", "access_groups": [group]}),
    ):
        response = requests.post(f"{api}{path}", headers=ADMIN, json=body)
        assert response.status_code == 200, response.text
    created = requests.post(
        f"{api}/teams/create",
        headers=ADMIN,
        json={
            "organization_id": org,
            "team_id": team,
            "access_groups": [group],
            "credits_allocated": 10,
            "default_model": alias,
            "budget_mode": settings.pop("budget_mode", "JOB_BASED"),
        },
    )
    assert created.status_code == 200, created.text
    if settings:
        updated = requests.patch(f"{api}/teams/{team}", headers=ADMIN, json=settings)
        assert updated.status_code == 200, updated.text
    return team, created.json()["virtual_key"]


def api_requests(page: Page, method: str) -> list:
    """The API requests of `method` the page sends from now on (Playwright Request objects)."""
    sent: list = []
    page.on("request", lambda r: r.method == method and "/api/" in r.url and sent.append(r))
    return sent


def test_rotating_a_key_needs_an_explicit_grace_period_and_keeps_the_expiry(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    team, _ = make_team(api)
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20, minutes=7, seconds=13)
    made = requests.post(
        f"{api}/teams/{team}/keys/create",
        headers=ADMIN,
        json={"name": "expiring", "expires_at": expiry.isoformat().replace("+00:00", "Z")},
    )
    assert made.status_code == 200, made.text
    old_id = made.json()["key"]["key_id"]
    sign_in(page)
    page.goto(f"/#/teams/{team}/keys")
    rotations = api_requests(page, "POST")

    page.get_by_role("row", name=re.compile("expiring")).get_by_role("button", name="Rotate…").click()
    rotate = dialog(page, re.compile("Rotate"))

    # An empty grace period is an error, never "end the old key now".
    rotate.get_by_label("Grace period (hours)").fill("")
    rotate.get_by_role("button", name="Rotate key").click()
    expect(rotate.get_by_role("alert")).to_contain_text(
        "Grace period (hours): required (enter 0 to end the old key now)"
    )
    assert rotations == []
    keys = requests.get(f"{api}/teams/{team}/keys", headers=ADMIN).json()["keys"]
    assert [k["state"] for k in keys if k["key_id"] == old_id] == ["ACTIVE"] and len(keys) == 2

    expect(rotate.get_by_label("New key expires")).not_to_have_value("")  # prefilled with the old key's expiry

    # 0 says what it does, next to the field.
    rotate.get_by_label("Grace period (hours)").fill("0")
    expect(rotate.get_by_test_id("grace-now")).to_contain_text("the old key stops working as soon as")
    rotate.get_by_label("Grace period (hours)").fill("2")
    shot(page, "20-rotate-key")
    rotate.get_by_role("button", name="Rotate key").click()
    reveal = dialog(page, 'Rotated key "expiring"')
    reveal.get_by_role("checkbox").check()
    reveal.get_by_role("button", name="Done").click()

    keys = requests.get(f"{api}/teams/{team}/keys", headers=ADMIN).json()["keys"]
    new = [k for k in keys if k["name"] == "expiring" and k["key_id"] != old_id]
    assert len(new) == 1, keys
    assert datetime.fromisoformat(new[0]["expires_at"]) == expiry  # the expiry carried over, to the second
    old = next(k for k in keys if k["key_id"] == old_id)
    grace_end = datetime.fromisoformat(old["expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=1, minutes=50) < grace_end <= timedelta(hours=2)
    expires_cell = page.get_by_role("row", name=re.compile(re.escape(new[0]["key_prefix"]))).get_by_role("cell").nth(4)
    expect(expires_cell).not_to_have_text("never")


def test_settings_send_only_changes_and_refuse_empty_or_out_of_range_numbers(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    team, _ = make_team(api)
    sign_in(page)
    page.goto(f"/#/teams/{team}/settings")
    settings = page.get_by_role("form", name="Team settings")
    expect(settings.get_by_label("Markup (%)")).to_have_value("0")
    patches = api_requests(page, "PATCH")

    # Changed elsewhere while the form is open: saving another field must not revert it.
    assert requests.patch(f"{api}/teams/{team}", headers=ADMIN, json={"max_calls_per_job": 7}).status_code == 200
    settings.get_by_label("Markup (%)").fill("10")
    settings.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_contain_text("Markup (%)")
    assert [p.post_data_json for p in patches] == [{"markup_percent": "10"}]
    saved = requests.get(f"{api}/teams/{team}", headers=ADMIN).json()
    assert (saved["markup_percent"], saved["max_calls_per_job"]) == ("10", 7)
    expect(settings.get_by_label("LLM calls per job")).to_have_value("7")  # the form took the new value

    # Nothing changed: nothing is sent, and the form says so.
    settings.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Nothing to save: no setting was changed.")).to_be_visible()
    assert len(patches) == 1

    # An emptied number is an error naming the field, never 0 (no limit).
    settings.get_by_label("LLM calls per job").fill("")
    settings.get_by_role("button", name="Save settings").click()
    alert = settings.get_by_role("alert")
    expect(alert).to_contain_text("LLM calls per job: required (enter 0 for no limit)")
    expect(alert).to_contain_text("Nothing was sent.")
    settings.get_by_label("LLM calls per job").fill("7")
    settings.get_by_label("Low-credit alert at (credits)").fill("")
    settings.get_by_label("Overdraft limit (credits)").fill("")
    settings.get_by_role("button", name="Save settings").click()
    expect(alert).to_contain_text("Low-credit alert at (credits): required (enter 0 for no alert)")
    expect(alert).to_contain_text("Overdraft limit (credits): required (enter 0 for no overdraft)")
    settings.get_by_label("Low-credit alert at (credits)").fill("0")
    settings.get_by_label("Overdraft limit (credits)").fill("0")

    # Out of the server's range: refused in the browser, naming the field and the limit.
    settings.get_by_label("LLM calls a minute").fill("1e20")
    settings.get_by_role("button", name="Save settings").click()
    expect(alert).to_contain_text("LLM calls a minute: at most 1,000,000")
    expect(alert).not_to_contain_text("TYPE_INT32")
    settings.get_by_label("LLM calls a minute").fill("12.5")
    settings.get_by_role("button", name="Save settings").click()
    expect(alert).to_contain_text("LLM calls a minute: must be a whole number")
    settings.get_by_label("LLM calls a minute").fill("0")
    settings.get_by_label("Overdraft limit (credits)").fill("2000000000")
    settings.get_by_role("button", name="Save settings").click()
    expect(alert).to_contain_text("Overdraft limit (credits): at most 1,000,000,000")
    shot(page, "21-settings-refused")
    assert len(patches) == 1
    saved = requests.get(f"{api}/teams/{team}", headers=ADMIN).json()
    assert (saved["max_calls_per_job"], saved["calls_per_minute"], saved["credits_overdraft_limit"]) == (7, 0, 0)

    # The access groups too: unchanged, nothing is sent.
    puts = api_requests(page, "PUT")
    groups = page.get_by_role("form", name="Access groups")
    groups.get_by_role("button", name="Save access groups").click()
    expect(page.get_by_text("Nothing to save: the access groups were not changed.")).to_be_visible()
    assert puts == []

    # Credits out of range, on the overview.
    page.get_by_role("link", name="Overview").click()
    credits = page.get_by_role("form", name="Add credits")
    credits.get_by_label("Credits").fill("1e20")
    credits.get_by_role("button", name="Add credits").click()
    expect(credits.get_by_role("alert")).to_contain_text("Credits: at most 1,000,000,000")
    assert requests.get(f"{api}/credits/teams/{team}/balance", headers=ADMIN).json()["credits_allocated"] == 10


def test_a_refunded_job_shows_its_refund_and_its_shortfall(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    # 1 token a credit and 10 credits: a 44-token job is charged 10, 34 short.
    team, key = make_team(api, budget_mode="CONSUMPTION_TOKENS", tokens_per_credit=1)
    auth = {"Authorization": f"Bearer {key}"}
    job_id = requests.post(f"{api}/jobs/create", headers=auth, json={"job_type": "big_job"}).json()["job_id"]
    call = requests.post(
        f"{api}/jobs/{job_id}/llm-call",
        headers=auth,
        json={"messages": [{"role": "user", "content": "x [fake tokens=40]"}]},
    )
    assert call.status_code == 200, call.text
    costs = requests.post(f"{api}/jobs/{job_id}/complete", headers=auth, json={"status": "completed"}).json()["costs"]
    assert (costs["credits_charged"], costs["credits_shortfall"], costs["credits_refunded"]) == (10, 34, 0)
    sign_in(page)
    page.goto(f"/#/teams/{team}/jobs")

    row = page.get_by_role("row", name=re.compile("big_job"))
    expect(row).not_to_contain_text("refunded")
    row.click()
    detail = page.get_by_test_id("job-detail")
    expect(detail.get_by_test_id("job-shortfall")).to_contain_text("34 credit(s) used beyond what the team could pay")
    detail.get_by_role("button", name="Refund…").click()
    confirm = dialog(page, "Refund this job?")
    reason = confirm.get_by_label("Reason (shown in the ledger)")
    expect(reason).not_to_have_value("")  # prefilled
    reason.fill("")
    confirm.get_by_role("button", name="Refund 10 credit(s)").click()
    expect(confirm.get_by_role("alert")).to_contain_text("required")
    reason.fill("customer complaint #12")
    confirm.get_by_role("button", name="Refund 10 credit(s)").click()
    expect(page.get_by_role("status").filter(has_text="Refunded 10 credit(s)")).to_be_visible()

    expect(row).to_contain_text("refunded")
    row.click()
    expect(detail.get_by_test_id("job-refund")).to_contain_text("customer complaint #12")
    expect(detail.get_by_role("button", name="Refund…")).to_have_count(0)
    shot(page, "22-refunded-job")
    page.get_by_role("button", name="Close").click()
    ledger = requests.get(f"{api}/credits/teams/{team}/transactions", headers=ADMIN).json()["transactions"]
    assert [(t["amount"], t["reason"]) for t in ledger if t["kind"] == "REFUND"] == [(10, "customer complaint #12")]
    jobs = requests.get(f"{api}/teams/{team}/jobs", headers=ADMIN).json()["jobs"]
    assert [j["costs"]["credits_refunded"] for j in jobs if j["job_id"] == job_id] == [10]

    # Still shown so after a reload: the job says it was refunded. The list never reads the
    # ledger; the detail reads its newest page for the refund's date and reason.
    sent = api_requests(page, "GET")
    page.reload()
    expect(row).to_contain_text("refunded")
    assert [r.url for r in sent if "/transactions" in r.url] == []
    row.click()
    expect(detail.get_by_test_id("job-refund")).to_contain_text("10 credit(s) given back")
    expect(detail.get_by_test_id("job-refund")).to_contain_text("customer complaint #12")
    expect(detail.get_by_role("button", name="Refund…")).to_have_count(0)
    ledger_reads = [r.url for r in sent if "/transactions" in r.url]
    assert len(ledger_reads) == 1 and "page_size=100" in ledger_reads[0], ledger_reads


def test_a_second_refund_is_reported_as_already_refunded(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    team, key = make_team(api)
    auth = {"Authorization": f"Bearer {key}"}
    job_id = requests.post(f"{api}/jobs/create", headers=auth, json={"job_type": "twice_job"}).json()["job_id"]
    call = requests.post(
        f"{api}/jobs/{job_id}/llm-call", headers=auth, json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert call.status_code == 200, call.text
    costs = requests.post(f"{api}/jobs/{job_id}/complete", headers=auth, json={"status": "completed"}).json()["costs"]
    assert (costs["credits_charged"], costs["credits_refunded"]) == (1, 0)
    sign_in(page)
    page.goto(f"/#/teams/{team}/jobs")
    row = page.get_by_role("row", name=re.compile("twice_job"))
    expect(row).not_to_contain_text("refunded")
    row.click()
    detail = page.get_by_test_id("job-detail")
    expect(detail.get_by_role("button", name="Refund…")).to_be_visible()

    # Refunded meanwhile elsewhere: the dashboard's refund returns that one and says so.
    refund = f"{api}/credits/teams/{team}/jobs/{job_id}/refund"
    first = requests.post(refund, headers=ADMIN, json={"reason": "refunded elsewhere"})
    assert first.status_code == 200 and first.json()["already_refunded"] is False, first.text
    detail.get_by_role("button", name="Refund…").click()
    dialog(page, "Refund this job?").get_by_role("button", name="Refund 1 credit(s)").click()
    notice = page.get_by_role("status").filter(has_text="had already been refunded")
    expect(notice).to_contain_text('("refunded elsewhere"): nothing more was given back; 10 available.')
    expect(notice).to_have_class("warning")
    expect(row).to_contain_text("refunded")
    ledger = requests.get(f"{api}/credits/teams/{team}/transactions", headers=ADMIN).json()["transactions"]
    assert [t["reason"] for t in ledger if t["kind"] == "REFUND"] == ["refunded elsewhere"]
    again = requests.post(refund, headers=ADMIN, json={"reason": "again"}).json()
    assert (again["already_refunded"], again["transaction"]["reason"]) == (True, "refunded elsewhere")

    row.click()
    expect(detail.get_by_test_id("job-refund")).to_contain_text("refunded elsewhere")
    page.get_by_role("button", name="Close").click()

    # Out of the ledger's newest 100 entries, the refund is shown without its date and reason.
    for n in range(100):
        adjusted = requests.post(
            f"{api}/credits/teams/{team}/adjust", headers=ADMIN, json={"credits": 1, "reason": f"top-up {n}"}
        )
        assert adjusted.status_code == 200, adjusted.text
    row.click()
    shown = detail.get_by_test_id("job-refund")
    expect(shown).to_have_attribute("aria-busy", "false")
    expect(shown).to_contain_text("1 credit(s) given back")
    expect(shown).not_to_contain_text("refunded elsewhere")
    expect(detail.get_by_role("button", name="Refund…")).to_have_count(0)


def test_the_alias_route_never_repeats_its_primary_model(page: Page, stack: Stack) -> None:
    alias = unique("Route")
    sign_in(page)
    page.get_by_role("link", name="Model aliases").click()
    page.get_by_role("button", name="New alias").click()
    form = dialog(page, "New model alias")
    form.get_by_label("Alias", exact=True).fill(alias)
    model = form.get_by_label("LiteLLM model")
    model.select_option("fake-gpt")
    form.get_by_role("checkbox", name="fake-gpt-backup").check()
    form.get_by_role("checkbox", name="fake-free").check()
    model.select_option("fake-gpt-backup")  # a chosen fallback becomes the primary
    order = form.get_by_text(re.compile("^Order:"))
    expect(order).to_have_text("Order: fake-gpt-backup → fake-free")
    model.select_option("fake-gpt")
    expect(form.get_by_role("checkbox", name="fake-gpt-backup")).not_to_be_checked()
    expect(order).to_have_text("Order: fake-gpt → fake-free")
    form.get_by_role("button", name="Create alias").click()
    expect(form).to_have_count(0)
    saved = requests.get(f"{stack.api_url}/api/models/{alias}", headers=ADMIN).json()
    assert (saved["actual_model"], saved["fallback_models"]) == ("fake-gpt", ["fake-free"])


def test_the_dashboard_fits_a_phone(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    team, key = make_team(api)
    auth = {"Authorization": f"Bearer {key}"}
    job_id = requests.post(f"{api}/jobs/create", headers=auth, json={"job_type": "phone_job"}).json()["job_id"]
    requests.post(f"{api}/jobs/{job_id}/llm-call", headers=auth, json={"messages": [{"role": "user", "content": "hi"}]})
    requests.post(f"{api}/jobs/{job_id}/complete", headers=auth, json={"status": "completed"})
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page)
    width = "() => document.documentElement.scrollWidth"

    # The sections are a menu behind a button, closed again once one is chosen.
    teams_link = page.get_by_role("navigation", name="Sections").get_by_role("link", name="Teams")
    expect(teams_link).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    teams_link.click()
    expect(page.get_by_role("heading", name="Teams")).to_be_visible()
    expect(teams_link).to_be_hidden()
    assert page.evaluate(width) <= 390

    # Every figure of the team's overview is on the screen; wide tables scroll in place.
    page.goto(f"/#/teams/{team}")
    expect(page.get_by_test_id("balance-available")).to_have_text("9")
    for locator in (page.get_by_test_id("balance-open-jobs"), page.locator("dt", has_text="Default model")):
        box = locator.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert page.evaluate(width) <= 390
    shot(page, "23-phone-team")
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("row", name=re.compile("phone_job")).click()
    modal = page.get_by_role("dialog", name="Job")
    expect(modal.get_by_test_id("job-detail")).to_contain_text(job_id)
    box = modal.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert page.evaluate(width) <= 390
    shot(page, "24-phone-job")


def test_long_webhook_urls_and_descriptions_stay_in_the_page(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    url = f"https://hooks.example.com/{unique('long')}/" + "x" * 300
    description = "D" * 400
    created = requests.post(
        f"{api}/webhooks/create",
        headers=ADMIN,
        json={"url": url, "event_types": ["job.failed"], "description": description},
    )
    assert created.status_code == 200, created.text
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Search endpoints").fill(url)
    row = page.get_by_role("row", name=re.compile("hooks.example.com"))
    expect(row).to_have_count(1)
    expect(row.get_by_title(description)).to_be_visible()  # the full text on hover
    expect(row.get_by_role("link", name=url)).to_have_attribute("title", url)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    # The long URL and description are cut to their cells (other tests' endpoints in the
    # same table may widen it, inside its own scroll box).
    row_box, link_box = row.bounding_box(), row.get_by_role("link", name=url).bounding_box()
    assert row_box and row_box["height"] < 200, row_box
    assert link_box and link_box["width"] < 640, link_box
    shot(page, "25-long-webhook")

    # Its creation is in the audit log, under its own resource type.
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Resource type").select_option("webhook_endpoint")
    page.get_by_label("Resource id").fill(created.json()["endpoint"]["endpoint_id"])
    expect(page.get_by_role("row", name=re.compile("webhook_endpoint"))).to_have_count(1)


def test_webhook_endpoint_is_paused_retried_resumed_and_edited(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    url = f"http://127.0.0.1:9/hooks/{unique('hook')}"  # nothing listens
    created = requests.post(
        f"{api}/webhooks/create",
        headers=ADMIN,
        json={"url": url, "event_types": ["job.failed"], "description": "pager"},
    )
    assert created.status_code == 200, created.text
    endpoint_id = created.json()["endpoint"]["endpoint_id"]

    def endpoint() -> dict:
        listed = requests.get(f"{api}/webhooks?page_size=1000", headers=ADMIN).json()["endpoints"]
        (found,) = [e for e in listed if e["endpoint_id"] == endpoint_id]
        return found

    sign_in(page)
    page.goto(f"/#/webhooks/{endpoint_id}")
    heading = page.get_by_role("heading", name=url)
    expect(heading).to_be_visible()
    expect(heading.locator(".badge")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Retry failed"))).to_have_count(0)  # none failed

    # Paused: the badge and the reason, here and in the list; the API says so too.
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Endpoint paused")).to_be_visible()
    expect(heading.locator(".badge")).to_have_text("paused")
    expect(page.get_by_test_id("paused-reason")).to_contain_text("paused by the operator")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    paused = endpoint()
    assert (paused["paused"], paused["paused_reason"]) == (True, "paused by the operator"), paused
    assert paused["paused_at"], paused
    shot(page, "26-webhook-paused")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Webhooks").click()
    page.get_by_label("Search endpoints").fill(url)
    row = page.get_by_role("row", name=url)
    expect(row.locator(".badge")).to_have_text("paused")
    expect(row).to_contain_text("paused by the operator")
    shot(page, "27-webhooks-paused-listed")
    row.get_by_role("link", name=url).click()

    # An event while paused is held; made failed, it is retried (still held: paused).
    page.get_by_role("button", name="Send test event").click()
    delivery = page.get_by_role("row", name=re.compile("webhook.test"))
    expect(delivery).to_contain_text("held while paused")
    with psycopg.connect(stack.postgres.url, autocommit=True) as conn:
        failed = conn.execute(
            "UPDATE webhook_deliveries SET status = 'failed', last_status_code = 500, last_error = 'HTTP 500' "
            "WHERE endpoint_id = %s",
            (endpoint_id,),
        ).rowcount
    assert failed == 1
    page.get_by_role("button", name="Refresh").click()
    expect(delivery.locator(".badge")).to_have_text("failed")
    page.get_by_role("button", name="Retry failed (1)").click()
    expect(page.get_by_role("status").filter(has_text="retried")).to_have_text(
        "1 failed delivery retried: pending again, due now (held until the endpoint is resumed)."
    )
    expect(delivery.locator(".badge")).to_have_text("pending")
    expect(page.get_by_role("button", name=re.compile("Retry failed"))).to_have_count(0)
    shot(page, "28-webhook-retried")
    listed = requests.get(f"{api}/webhooks/{endpoint_id}/deliveries", headers=ADMIN).json()["deliveries"]
    assert [(d["event_type"], d["status"]) for d in listed] == [("webhook.test", "pending")]
    assert endpoint()["failed_deliveries"] == 0

    # Resumed: no badge, no reason, and the API agrees.
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status").filter(has_text="Endpoint resumed.")).to_be_visible()
    expect(heading.locator(".badge")).to_have_count(0)
    expect(page.get_by_test_id("paused-reason")).to_have_count(0)
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()
    resumed = endpoint()
    assert resumed["paused"] is False and "paused_at" not in resumed and not resumed.get("paused_reason"), resumed

    # Edited: no event type is refused before sending; a bad URL by the server, naming the
    # field, and nothing changes; a good one is saved.
    page.get_by_role("button", name="Edit…").click()
    form = dialog(page, "Edit webhook endpoint")
    expect(form.get_by_label("URL")).to_have_value(url)
    expect(form.get_by_label("Description")).to_have_value("pager")
    form.get_by_role("checkbox", name="job.failed").uncheck()
    form.get_by_role("button", name="Save changes").click()
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text("Events: choose at least one")
    expect(alert).to_contain_text("Nothing was sent.")
    form.get_by_role("checkbox", name="job.failed").check()
    form.get_by_label("URL").fill("ftp://example.com/hooks")
    form.get_by_role("button", name="Save changes").click()
    expect(alert).to_contain_text("url:")
    expect(alert).to_contain_text("HTTP 400")
    assert endpoint()["url"] == url
    new_url = f"{url}/v2"
    form.get_by_label("URL").fill(new_url)
    form.get_by_label("Description").fill("billing pager")
    form.get_by_role("checkbox", name="job.completed").check()
    form.get_by_role("button", name="Save changes").click()
    expect(form).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="Endpoint saved.")).to_be_visible()
    expect(page.get_by_role("heading", name=new_url)).to_be_visible()
    edited = endpoint()
    assert (edited["url"], edited["description"], sorted(edited["event_types"])) == (
        new_url,
        "billing pager",
        ["job.completed", "job.failed"],
    ), edited

    trail = requests.get(
        f"{api}/audit-log",
        params={"resource_type": "webhook_endpoint", "resource_id": endpoint_id},
        headers=ADMIN,
    ).json()["entries"]
    assert [e["action"] for e in trail] == ["update", "update", "retry_failed", "send_test", "update", "create"]


def test_overview_money_adjustment_confirmation_and_labels(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    team, _ = make_team(api, max_cost_usd_per_job="1234.5")
    sign_in(page)
    page.goto(f"/#/teams/{team}")
    cost = page.locator("dt", has_text="Cost per job").locator("xpath=following-sibling::dd[1]")
    expect(cost).to_have_text("$1,234.50")

    adjust = page.get_by_role("form", name="Adjust credits")
    adjust.get_by_label("Credits (negative removes)").fill("-2")
    adjust.get_by_label("Reason (required)").fill("duplicate top-up")
    adjust.get_by_role("button", name="Apply adjustment").click()
    expect(page.get_by_role("status").filter(has_text="Adjusted by -2 credits")).to_contain_text(
        "8 remaining, 8 available"
    )
    expect(page.get_by_test_id("balance-available")).to_have_text("8")

    # No costs yet: the money charts say so rather than draw an empty $0-$1 scale.
    page.get_by_role("link", name="Usage", exact=True).nth(1).click()
    margin = page.get_by_role("figure", name="Margin per day (USD)")
    expect(margin).to_contain_text("No costs in this range.")
    expect(margin.get_by_role("img")).to_have_count(0)

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Teams").click()
    page.get_by_label("Search teams").fill(team)
    expect(page.get_by_role("row", name=re.compile(team))).to_contain_text("Job-based")


def test_a_top_up_whose_answer_was_lost_and_is_sent_again_edited_is_said_to_be_applied(
    page: Page, stack: Stack
) -> None:
    """The form keeps its idempotency key after a failure (a retry adds once). Edited and
    sent again, the server refuses the key, as the first went through; the form said only
    'this idempotency key was already used...; use a new key', which an operator cannot do."""
    api = f"{stack.api_url}/api"
    team, _ = make_team(api)
    before = requests.get(f"{api}/credits/teams/{team}/balance", headers=ADMIN).json()["credits_allocated"]
    sign_in(page)
    page.goto(f"/#/teams/{team}")

    def answer_lost(route) -> None:
        route.fetch()  # the server adds the credits
        route.abort()  # and the browser never hears of it

    page.route("**/api/credits/teams/*/add", answer_lost, times=1)
    credits = page.get_by_role("form", name="Add credits")
    credits.get_by_label("Credits").fill("5")
    credits.get_by_label("Reason (shown in the ledger)").fill("invoice 1")
    credits.get_by_role("button", name="Add credits").click()
    expect(credits.get_by_role("alert")).to_be_visible()

    credits.get_by_label("Reason (shown in the ledger)").fill("invoice 1, corrected")
    credits.get_by_role("button", name="Add credits").click()
    alert = credits.get_by_role("alert")
    expect(alert).to_contain_text("An earlier submission of this form was applied")
    expect(alert).to_contain_text("IDEMPOTENCY_KEY_REUSED")
    balance = requests.get(f"{api}/credits/teams/{team}/balance", headers=ADMIN).json()
    assert balance["credits_allocated"] == before + 5  # once
    expect(credits.get_by_label("Credits")).to_have_value("")  # a second click sends nothing

    credits.get_by_label("Credits").fill("5")  # another change, typed anew, under a new key
    credits.get_by_role("button", name="Add credits").click()
    expect(page.get_by_role("status")).to_contain_text("Added 5 credits")
    assert requests.get(f"{api}/credits/teams/{team}/balance", headers=ADMIN).json()["credits_allocated"] == before + 10
