"""The dashboard shows the truth: editors that save in several requests say what was saved
when a later one is refused, a form sends only what it shows, lists never claim to be
empty when they failed to load, usage tables list every row, Escape closes one dialog, a
search pages through what it fetched, a malformed address is a page not found, and a key
no header can carry is not taken for a network failure."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from devstack.stack import Stack
from tests.conftest import ADMIN_KEY, unique
from tests.dashboard.conftest import shot, sign_in
from tests.dashboard.test_dashboard import api_requests, dialog, make_team

pytestmark = pytest.mark.e2e
ADMIN = {"X-Admin-Key": ADMIN_KEY}


def create(api: str, path: str, body: dict) -> dict:
    response = requests.post(f"{api}{path}", headers=ADMIN, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def refuse(page: Page, method: str, path: str) -> None:
    """The API answers `method path` with a 503 from now on, as when the LiteLLM proxy or
    Envoy is down: other requests go through."""
    body = json.dumps({"code": 14, "message": "the LiteLLM proxy cannot be reached", "details": []})

    def handle(route) -> None:
        if route.request.method == method:
            route.fulfill(status=503, content_type="application/json", body=body)
        else:
            route.continue_()

    page.route(re.compile(rf"/api{re.escape(path)}(\?.*)?$"), handle)


def open_row(page: Page, search_label: str, name: str) -> None:
    page.get_by_label(search_label).fill(name)  # other tests' rows may fill the first page
    page.get_by_role("row", name=re.compile(re.escape(name))).click()


# ---------------------------------------------------------------- editors saved in two requests


def alias_edited(page: Page, api: str) -> tuple[Locator, str, str, str]:
    """An alias in one group, its editor open with its description changed and a second
    group ticked: (the editor, the group, the second group, the alias)."""
    group, other, alias = unique("grp"), unique("grp"), unique("Agent")
    create(api, "/model-access-groups/create", {"group_name": group})
    create(api, "/model-access-groups/create", {"group_name": other})
    create(api, "/models/create", {"model_alias": alias, "actual_model": "fake-gpt", "access_groups": [group]})
    sign_in(page)
    page.goto("/#/models")
    open_row(page, "Search aliases", alias)
    editor = dialog(page, f"Alias {alias}")
    editor.get_by_label("Description").fill("changed")
    editor.get_by_role("checkbox", name=other).check()
    return editor, group, other, alias


def test_alias_editor_saves_nothing_when_a_chosen_group_was_deleted_meanwhile(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    editor, group, doomed, alias = alias_edited(page, api)
    requests.delete(f"{api}/model-access-groups/{doomed}", headers=ADMIN)  # another operator, meanwhile

    editor.get_by_role("button", name="Save alias").click()
    expect(editor.get_by_role("alert")).to_contain_text("HTTP 404")
    saved = requests.get(f"{api}/models/{alias}", headers=ADMIN).json()
    assert saved["description"] == "" and saved["access_groups"] == [group]  # nothing at all was saved
    # The group list is read again: the deleted group is no longer offered, and said so.
    expect(editor.get_by_role("checkbox", name=doomed)).to_have_count(0)
    expect(editor.get_by_test_id("gone-groups")).to_contain_text(doomed)
    shot(page, "20-alias-group-deleted-meanwhile")

    editor.get_by_role("button", name="Save alias").click()  # saved as shown
    expect(editor).to_have_count(0)
    saved = requests.get(f"{api}/models/{alias}", headers=ADMIN).json()
    assert saved["description"] == "changed" and saved["access_groups"] == [group]


def test_alias_editor_says_what_was_saved_when_a_later_step_is_refused(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    editor, group, more, alias = alias_edited(page, api)
    refuse(page, "PATCH", f"/models/{alias}")

    editor.get_by_role("button", name="Save alias").click()
    alert = editor.get_by_role("alert")
    expect(alert).to_contain_text("Partly saved. Saved: access groups. Not saved: description")
    expect(alert).to_contain_text("the LiteLLM proxy cannot be reached")
    saved = requests.get(f"{api}/models/{alias}", headers=ADMIN).json()
    assert sorted(saved["access_groups"]) == sorted([group, more]) and saved["description"] == ""
    expect(editor.get_by_role("checkbox", name=more)).to_be_checked()  # the form shows what is saved...
    expect(editor.get_by_label("Description")).to_have_value("changed")  # ...and the edit not saved
    shot(page, "21-alias-partly-saved")

    page.unroute_all()
    puts, patches = api_requests(page, "PUT"), api_requests(page, "PATCH")
    editor.get_by_role("button", name="Save alias").click()  # only what is left to save is sent
    expect(editor).to_have_count(0)
    assert len(puts) == 0 and len(patches) == 1
    assert requests.get(f"{api}/models/{alias}", headers=ADMIN).json()["description"] == "changed"


def test_group_editor_saves_nothing_when_a_chosen_alias_was_deleted_and_says_what_was_saved(
    page: Page, stack: Stack
) -> None:
    api = f"{stack.api_url}/api"
    group, kept, doomed = unique("grp"), unique("Agent"), unique("Agent")
    create(api, "/model-access-groups/create", {"group_name": group})
    for alias in (kept, doomed):
        create(api, "/models/create", {"model_alias": alias, "actual_model": "fake-gpt"})
    sign_in(page)
    page.goto("/#/groups")
    open_row(page, "Search groups", group)
    editor = dialog(page, f"Group {group}")
    editor.get_by_label("Description").fill("changed")
    editor.get_by_role("checkbox", name=doomed).check()
    requests.delete(f"{api}/models/{doomed}", headers=ADMIN)

    editor.get_by_role("button", name="Save group").click()
    expect(editor.get_by_role("alert")).to_contain_text("HTTP 404")
    saved = requests.get(f"{api}/model-access-groups/{group}", headers=ADMIN).json()
    assert saved["description"] == "" and saved["model_aliases"] == []
    expect(editor.get_by_test_id("gone-aliases")).to_contain_text(doomed)

    editor.get_by_role("checkbox", name=kept).check()
    refuse(page, "PATCH", f"/model-access-groups/{group}")
    editor.get_by_role("button", name="Save group").click()
    expect(editor.get_by_role("alert")).to_contain_text("Partly saved. Saved: model aliases. Not saved: description")
    saved = requests.get(f"{api}/model-access-groups/{group}", headers=ADMIN).json()
    assert saved["model_aliases"] == [kept] and saved["description"] == ""


# ---------------------------------------------------------------- default model


def test_new_team_default_model_goes_back_to_none_when_its_group_is_unticked(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    org, group, alias, team = unique("org"), unique("grp"), unique("Agent"), unique("team")
    create(api, "/organizations/create", {"organization_id": org, "name": "Org"})
    create(api, "/model-access-groups/create", {"group_name": group})
    create(api, "/models/create", {"model_alias": alias, "actual_model": "fake-gpt", "access_groups": [group]})
    sign_in(page)
    page.goto("/#/teams")
    page.get_by_role("button", name="New team").click()
    form = dialog(page, "New team")
    form.get_by_label("Organization").select_option(org)
    form.get_by_label("Team ID").fill(team)
    form.get_by_role("checkbox", name=group).check()
    form.get_by_label("Default model").select_option(alias)
    form.get_by_role("checkbox", name=group).uncheck()
    expect(form.get_by_label("Default model")).to_have_value("")
    expect(form.get_by_label("Default model").locator("option:checked")).to_have_text("None")
    expect(form.get_by_test_id("default-model-reset")).to_contain_text(alias)
    shot(page, "22-default-model-reset")

    posts = api_requests(page, "POST")
    form.get_by_role("button", name="Create team").click()
    expect(dialog(page, f"Team {team} created")).to_be_visible()
    assert json.loads(posts[-1].post_data)["default_model"] == ""


def test_team_settings_default_model_goes_back_when_the_groups_saved_no_longer_grant_it(
    page: Page, stack: Stack
) -> None:
    api = f"{stack.api_url}/api"
    team, _ = make_team(api)
    extra, other = unique("grp"), unique("Agent")
    create(api, "/model-access-groups/create", {"group_name": extra})
    create(api, "/models/create", {"model_alias": other, "actual_model": "fake-gpt", "access_groups": [extra]})
    before = requests.get(f"{api}/teams/{team}", headers=ADMIN).json()
    groups = before["access_groups"] + [extra]
    assert requests.put(f"{api}/teams/{team}/access-groups", headers=ADMIN, json={"access_groups": groups}).ok
    sign_in(page)
    page.goto(f"/#/teams/{team}/settings")
    settings = page.get_by_role("form", name="Team settings")
    settings.get_by_label("Default model").select_option(other)  # chosen, not saved...
    access = page.get_by_role("form", name="Access groups")
    access.get_by_role("checkbox", name=extra).uncheck()  # ...and its group taken away
    access.get_by_role("button", name="Save access groups").click()
    expect(page.get_by_text("Access groups saved.")).to_be_visible()
    expect(settings.get_by_label("Default model")).to_have_value(before["default_model"])
    expect(page.get_by_test_id("default-model-reset")).to_contain_text(other)

    settings.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Nothing to save: no setting was changed.")).to_be_visible()
    expect(settings.get_by_role("alert")).to_have_count(0)


# ---------------------------------------------------------------- sign-in


def test_a_key_no_header_can_carry_is_said_so_not_taken_for_a_network_failure(page: Page) -> None:
    """fetch refuses a header beyond Latin-1 with the TypeError of a network failure: a key
    typed in the wrong keyboard layout read as 'cannot reach the API; is the dev stack
    running?'."""
    gets = api_requests(page, "GET")
    sign_in(page, "ключ-0123456789abcdef")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text('the admin key holds "к" (U+043A), which an HTTP header cannot carry')
    expect(alert).to_contain_text("KEY_NOT_SENDABLE")
    expect(alert).not_to_contain_text("cannot reach the API")
    assert gets == []
    page.get_by_label("Admin key").fill(ADMIN_KEY)  # the right key still signs in
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Organizations")).to_be_visible()


# ---------------------------------------------------------------- usage


def test_usage_tables_list_every_job_type_and_charts_say_they_show_the_top(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    team, key = make_team(api)
    auth = {"Authorization": f"Bearer {key}"}
    types = [f"kind{i:02d}" for i in range(10)]
    for job_type in types:
        job = requests.post(f"{api}/jobs/create", headers=auth, json={"job_type": job_type})
        assert job.status_code == 200, job.text
    sign_in(page)
    page.goto(f"/#/teams/{team}/usage")
    table = page.get_by_test_id("usage-job-type")
    expect(table.locator("tbody tr")).to_have_count(10)
    expect(table.get_by_role("heading")).to_contain_text("(10)")
    expect(page.get_by_role("img", name="Calls per day, by job type (top 8 of 10, by provider cost)")).to_be_visible()
    expect(page.get_by_role("figure", name="Provider cost by job type (top 8 of 10, by provider cost)")).to_be_visible()
    job_type = page.get_by_label("Job type", exact=True)
    expect(job_type.locator("option")).to_have_count(11)  # every type, and "All job types"
    shot(page, "23-usage-every-job-type")

    job_type.select_option("kind09")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("usage-totals")).to_contain_text("Jobs1")
    expect(job_type.locator("option")).to_have_count(11)  # the others can still be chosen
    job_type.select_option("kind03")
    expect(table.locator("tbody tr")).to_contain_text("kind03")


def test_usage_says_rows_were_left_out_only_when_some_were(page: Page, stack: Stack) -> None:
    """The report lists at most 1000 job types: 1000 may be all there are."""
    api = f"{stack.api_url}/api"
    team, key = make_team(api)
    create(api, f"/credits/teams/{team}/add", {"credits": 1000, "reason": "1001 jobs"})

    def make_jobs(kinds: range) -> None:
        with (
            httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client,
            ThreadPoolExecutor(4) as pool,
        ):
            answers = pool.map(lambda i: client.post(f"{api}/jobs/create", json={"job_type": f"kind{i:04d}"}), kinds)
            assert {answer.status_code for answer in answers} == {200}

    make_jobs(range(1000))
    sign_in(page)
    page.goto(f"/#/teams/{team}/usage")
    table = page.get_by_test_id("usage-job-type")
    expect(table.get_by_role("heading")).to_contain_text("(1,000)")
    expect(table.get_by_role("status")).to_have_count(0)

    make_jobs(range(1000, 1001))
    page.get_by_role("button", name="Refresh").click()
    expect(table.get_by_role("status")).to_contain_text("these rows do not add up to the totals")
    expect(table.locator("tbody tr")).to_have_count(1000)


# ---------------------------------------------------------------- lists


def test_a_list_that_failed_to_load_does_not_say_it_is_empty(page: Page) -> None:
    sign_in(page)
    expect(page.get_by_role("heading", name="Organizations")).to_be_visible()
    refuse(page, "GET", "/organizations")
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("HTTP 503")
    expect(page.get_by_text("No organizations yet.")).to_have_count(0)
    page.get_by_label("Search organizations").fill("anything")  # a search that fails, likewise
    expect(page.get_by_test_id("search-status")).to_contain_text("Search stopped by an error")
    expect(page.get_by_role("alert")).to_contain_text("HTTP 503")
    expect(page.get_by_text("No organizations match the search.")).to_have_count(0)
    shot(page, "24-list-load-failed")


def test_a_search_pages_through_its_matches_without_fetching_again(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    prefix = unique("sp")
    for index in range(30):
        create(api, "/organizations/create", {"organization_id": f"{prefix}-{index:02d}", "name": "Searched"})
    sign_in(page)
    rows = page.locator("table.table tbody tr")
    page.get_by_label("Search organizations").fill(prefix)
    expect(page.get_by_test_id("search-status")).to_contain_text("30 match(es) among")
    expect(rows).to_have_count(25)
    gets = api_requests(page, "GET")
    page.get_by_role("button", name="Next →").click()
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text(f"{prefix}-25")
    page.get_by_role("button", name="← Previous").click()
    expect(rows).to_have_count(25)
    page.get_by_label("Rows").select_option("50")
    expect(rows).to_have_count(30)
    assert gets == [], [r.url for r in gets]


# ---------------------------------------------------------------- dialogs and addresses


def test_escape_closes_only_the_topmost_dialog(page: Page, stack: Stack) -> None:
    api = f"{stack.api_url}/api"
    alias = unique("Agent")
    create(api, "/models/create", {"model_alias": alias, "actual_model": "fake-gpt"})
    sign_in(page)
    page.goto("/#/models")
    open_row(page, "Search aliases", alias)
    dialog(page, f"Alias {alias}").get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("dialog")).to_have_count(2)
    page.keyboard.press("Escape")
    expect(dialog(page, f"Delete alias {alias}?")).to_have_count(0)
    expect(dialog(page, f"Alias {alias}")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_a_malformed_address_is_a_page_not_found(page: Page) -> None:
    sign_in(page)
    expect(page.get_by_role("heading", name="Organizations")).to_be_visible()
    page.goto("/#/teams/%E0%A4%A")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("#/teams/%E0%A4%A")
    page.get_by_role("link", name="Go to the organizations").click()
    expect(page.get_by_role("heading", name="Organizations")).to_be_visible()
