"""A field the route's path binds (`team_id` in /api/teams/{team_id}) is refused in the query
at the gateway, whatever its spelling, and in a body when its value differs from the path's:
Envoy's transcoder alone would take the query's (or a body's second) value over the path's,
so that the request acted on another resource than the path Envoy routed and logged
(gateway/body_fields.lua). Nothing runs: the server never sees the request.

A field that takes one value is refused given twice in the query, by either spelling: the
transcoder alone would take the last value without a word (a usage report over other
dates than the caller meant). A method whose request is the body takes no query parameter
at all (tests/e2e/test_http_edges.py); a field its path binds is still named as such."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import unique
from tests.e2e.conftest import ADMIN_HEADERS, RestTeam, admin_post, rest_team
from tests.e2e.test_transcoder_errors import refusal, violation

GIVEN_BY_PATH = "is given by the path; remove it from the query and put the value you mean in the path"
DIFFERS = "must not differ from its value in the URL path"
TWICE = "is given more than once in the query; give it once"
NOT_IN_QUERY = "is not a query parameter of this method; send it in the body"
JSON_HEADERS = {**ADMIN_HEADERS, "content-type": "application/json"}


def send_raw(method: str, url: str, headers: dict[str, str], body: str | None = None) -> requests.Response:
    """Send `url` exactly as written: requests would decode `%5F` (an unreserved character)."""
    prepared = requests.Request(method, url, data=body.encode() if body is not None else None, headers=headers)
    request = prepared.prepare()
    request.url = url
    with requests.Session() as session:
        return session.send(request, timeout=10)


def refused_naming(response: requests.Response, field: str, description: str = GIVEN_BY_PATH) -> None:
    assert violation(refusal(response)) == {"field": field, "description": description, "reason": ""}


def team_of(api: str, team_id: str) -> dict:
    got = requests.get(f"{api}/teams/{team_id}", headers=ADMIN_HEADERS, timeout=10)
    assert got.status_code == 200, got.text
    return got.json()


@pytest.fixture
def other(api: str) -> RestTeam:
    return rest_team(api)


def test_a_path_field_in_the_query_does_not_pick_another_team(api, team, other):
    refused_naming(send_raw("GET", f"{api}/teams/{team.team_id}?team_id={other.team_id}", ADMIN_HEADERS), "team_id")
    # Also when it names the path's own: the path alone says which.
    refused_naming(send_raw("GET", f"{api}/teams/{team.team_id}?team_id={team.team_id}", ADMIN_HEADERS), "team_id")


def test_an_update_with_a_path_field_in_the_query_changes_neither_team(api, team, other):
    url = f"{api}/teams/{team.team_id}?team_id={other.team_id}"
    refused_naming(send_raw("PATCH", url, JSON_HEADERS, '{"team_alias": "changed"}'), "team_id")
    assert team_of(api, team.team_id)["team_alias"] == ""
    assert team_of(api, other.team_id)["team_alias"] == ""


def test_a_team_key_is_refused_before_any_team_is_checked(api, team, other):
    """The gateway's 400 naming the field, not the server's TEAM_MISMATCH naming the other team."""
    refused_naming(send_raw("GET", f"{api}/teams/{team.team_id}/jobs?team_id={other.team_id}", team.headers), "team_id")


@pytest.mark.parametrize(
    "name",
    [
        "teamId",  # the JSON name, which the transcoder takes too
        "team%5Fid",  # percent-encoded, which the transcoder decodes
        "team%5fid",
        "%74eam_id",
        "team%49d",  # teamId
        "team_id.x",  # a nested spelling starting with it
        "teamId.x",
    ],
)
def test_every_spelling_is_refused_as_the_api_documents_the_field(api, team, other, name):
    url = f"{api}/teams/{team.team_id}/jobs?page_size=1&{name}={other.team_id}"
    refused_naming(send_raw("GET", url, ADMIN_HEADERS), "team_id")


@pytest.mark.parametrize("query", ["team_id", "team_id=", "teamId"])
def test_the_name_is_refused_without_a_value_too(api, team, query):
    refused_naming(send_raw("GET", f"{api}/teams/{team.team_id}?{query}", ADMIN_HEADERS), "team_id")


def test_each_field_a_path_binds_is_refused(api, team, other):
    keys = requests.get(f"{api}/teams/{team.team_id}/keys", headers=ADMIN_HEADERS, timeout=10)
    assert keys.status_code == 200, keys.text
    key_id = keys.json()["keys"][0]["key_id"]
    url = f"{api}/teams/{team.team_id}/keys/{key_id}/revoke?keyId=x"
    refused_naming(send_raw("POST", url, JSON_HEADERS, "{}"), "key_id")
    url = f"{api}/teams/{team.team_id}/keys/{key_id}/revoke?team_id={other.team_id}"
    refused_naming(send_raw("POST", url, JSON_HEADERS, "{}"), "team_id")
    served = requests.get(f"{api}/teams/{team.team_id}/jobs", headers=team.headers, timeout=10)
    assert served.status_code == 200, served.text  # the key was not revoked
    refused_naming(
        send_raw("GET", f"{api.removesuffix('/api')}/v1/models/{team.alias}?model=other", team.headers), "model"
    )


def test_a_body_on_the_openai_model_routes_is_refused(api, team):
    """GET /v1/models/{model} is an ordinary request the transcoder fills from a JSON body
    too: `{"model": "a", "model": "b"}` read alias b, not the path's. Like every GET of the
    API it takes no body; without one it is served."""
    v1 = api.removesuffix("/api") + "/v1"
    json_team = {**team.headers, "content-type": "application/json"}
    body = f'{{"model": "{team.alias}", "model": "other"}}'
    for url in (f"{v1}/models/{team.alias}", f"{v1}/models"):
        refused = refusal(send_raw("GET", url, json_team, body))
        assert refused["message"].startswith("this method takes no request body"), refused
    assert requests.get(f"{v1}/models/{team.alias}", headers=team.headers, timeout=10).json()["id"] == team.alias


def test_what_the_route_really_takes_in_the_query_still_works(api, team):
    served = send_raw("GET", f"{api}/teams/{team.team_id}/jobs?page_size=1", team.headers)
    assert served.status_code == 200, served.text
    assert served.json()["jobs"] == []
    served = send_raw("GET", f"{api}/credits/teams/{team.team_id}/transactions?page_size=1", ADMIN_HEADERS)
    assert served.status_code == 200, served.text
    # A name that only starts like the field is the transcoder's to judge.
    refused = refusal(send_raw("GET", f"{api}/teams/{team.team_id}/jobs?team_idx=1", team.headers))
    assert refused["message"] == "team_idx: is not a query parameter of this method"


def test_a_route_without_path_variables_is_unaffected(api, team):
    """organization_id is the path's in /api/organizations/{organization_id}/teams, and a
    query parameter of /api/teams, the same method's other binding."""
    organization = team_of(api, team.team_id)["organization_id"]
    served = send_raw("GET", f"{api}/teams?organization_id={organization}&page_size=5", ADMIN_HEADERS)
    assert served.status_code == 200, served.text
    assert [t["team_id"] for t in served.json()["teams"]] == [team.team_id]
    url = f"{api}/organizations/{organization}/teams?organization_id=other"
    refused_naming(send_raw("GET", url, ADMIN_HEADERS), "organization_id")
    refused = refusal(send_raw("GET", f"{api}/teams?team_id={team.team_id}", ADMIN_HEADERS))
    assert refused["message"] == "team_id: is not a query parameter of this method"


@pytest.mark.parametrize(
    "body",
    [
        '{{"teamId": "{other}", "team_alias": "changed"}}',  # the transcoder let the path win
        '{{"team_id": "{team}", "team_id": "{other}", "team_alias": "changed"}}',  # the body won
        '{{"team_id": "{team}", "teamId": "{other}", "team_alias": "changed"}}',
        '{{"team_id": "{other}", "team_alias": "changed"}}',  # refused by the transcoder too
    ],
)
def test_a_body_field_the_path_binds_must_not_differ_from_it(api, team, other, body):
    sent = body.format(team=team.team_id, other=other.team_id)
    refused_naming(send_raw("PATCH", f"{api}/teams/{team.team_id}", JSON_HEADERS, sent), "team_id", DIFFERS)
    assert team_of(api, team.team_id)["team_alias"] == ""
    assert team_of(api, other.team_id)["team_alias"] == ""


def test_a_body_field_with_the_paths_own_value_is_served(api, team):
    encoded = team.team_id.replace("-", "%2D")  # the path's value is compared decoded
    for number, body in enumerate(
        (
            f'{{"team_id": "{team.team_id}", "team_alias": "a0"}}',
            f'{{"teamId": "{team.team_id}", "team_alias": "a1"}}',
            '{"teamId": null, "team_alias": "a2"}',
        )
    ):
        served = send_raw("PATCH", f"{api}/teams/{encoded}/", JSON_HEADERS, body)
        assert served.status_code == 200, served.text
        assert team_of(api, team.team_id)["team_alias"] == f"a{number}"


@pytest.mark.parametrize(
    "query",
    [
        "start_date=2026-11-01&start_date=2026-11-20",  # the transcoder read 2026-11-20
        "start_date=2026-11-01&startDate=2026-11-20",  # the JSON name, which it takes too
        "startDate=2026-11-20&start_date=2026-11-01",
        "start_date=2026-11-01&end_date=2026-11-30&start%5Fdate=2026-11-20",  # percent-encoded
        "start_date=2026-11-01&start_date",  # a name without a value is given too
    ],
)
def test_a_field_given_twice_in_the_query_is_refused(api, team, query):
    refused_naming(send_raw("GET", f"{api}/teams/{team.team_id}/usage?{query}", ADMIN_HEADERS), "start_date", TWICE)


def test_a_write_with_a_field_in_the_query_does_nothing(api, team):
    """A request that is the body takes nothing from the query: the transcoder would merge a
    parameter into it (the last of two, over the body's)."""
    organization = unique("org")
    url = f"{api}/organizations/create?name=first&name=second"
    body = f'{{"organization_id": "{organization}"}}'
    refused_naming(send_raw("POST", url, JSON_HEADERS, body), "name", NOT_IN_QUERY)
    assert requests.get(f"{api}/organizations/{organization}", headers=ADMIN_HEADERS, timeout=10).status_code == 404
    # A timestamp too (the transcoder takes one from the query).
    url = f"{api}/teams/{team.team_id}/keys/create?expires_at=2099-01-01T00:00:00Z"
    refused_naming(send_raw("POST", url, JSON_HEADERS, '{"name": "twice"}'), "expires_at", NOT_IN_QUERY)
    keys = requests.get(f"{api}/teams/{team.team_id}/keys", headers=ADMIN_HEADERS, timeout=10)
    assert [key["name"] for key in keys.json()["keys"]] == ["default"]


@pytest.mark.parametrize("start", ["start_date", "startDate", "start%5Fdate"])
def test_a_field_given_once_in_the_query_is_served(api, team, start):
    url = f"{api}/teams/{team.team_id}/usage?{start}=2026-11-01&endDate=2026-11-20&limit=3"
    served = send_raw("GET", url, ADMIN_HEADERS)
    assert served.status_code == 200, served.text
    assert (served.json()["start_date"], served.json()["end_date"]) == ("2026-11-01", "2026-11-20")


def test_a_list_field_in_the_query_adds_nothing_to_the_body(api):
    """No GET request of the API has a list field; a POST's query added its values to the
    body's list."""
    groups = [unique("grp"), unique("grp")]
    for group in groups:
        admin_post(api, "/model-access-groups/create", {"group_name": group})
    alias = unique("Agent")
    url = f"{api}/models/create?access_groups={groups[0]}&accessGroups={groups[1]}"
    body = f'{{"model_alias": "{alias}", "actual_model": "fake-gpt", "access_groups": ["{groups[0]}"]}}'
    refused_naming(send_raw("POST", url, JSON_HEADERS, body), "access_groups", NOT_IN_QUERY)
    assert requests.get(f"{api}/models/{alias}", headers=ADMIN_HEADERS, timeout=10).status_code == 404
