"""The API documentation Envoy serves: /openapi.json, Swagger UI at /docs, ReDoc at /redoc.

The pages must work offline (every asset from this gateway), and the document must be valid
OpenAPI that lists every REST route of the descriptor set and describes what the gateway
really answers.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from tests.conftest import ROOT
from tests.e2e.conftest import ADMIN_HEADERS, rest_team

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


class _References(HTMLParser):
    """Every URL an HTML page makes the browser load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href", "spec-url", "action", "data", "poster"):
                self.urls.append(value)


def page_references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    # URLs written in inline scripts or styles too (e.g. SwaggerUIBundle({url: ...})).
    return parser.urls + re.findall(r"""(?:url:\s*|@import\s+)["']([^"']+)["']""", html)


def descriptor_routes() -> set[tuple[str, str]]:
    """(method, path) of every google.api.http rule in the descriptor set Envoy loads."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString((ROOT / "gateway" / "descriptor.pb").read_bytes())
    routes = set()
    for file in descriptor_set.file:
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in [rule, *rule.additional_bindings]:
                    verb = binding.WhichOneof("pattern")
                    path = re.sub(r"\{([^}=]+)(=[^}]*)?\}", r"{\1}", getattr(binding, verb))
                    routes.add((verb, path))
    return routes


@pytest.fixture(scope="module")
def document(stack) -> dict:
    response = requests.get(f"{stack.api_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


def schema_validator(document: dict, name: str) -> OAS31Validator:
    """A validator of components/schemas/`name` that resolves the document's $refs."""
    registry = Registry().with_resource("urn:openapi", Resource.opaque(document))
    return OAS31Validator({"$ref": f"urn:openapi#/components/schemas/{name}"}, registry=registry)


@pytest.mark.parametrize(("page", "marker"), [("/docs", "SwaggerUIBundle"), ("/redoc", "<redoc")])
def test_docs_pages_load_only_local_assets(stack, page, marker):
    response = requests.get(f"{stack.api_url}{page}", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert marker in html
    references = page_references(html)
    assert "/openapi.json" in references
    origin = urlsplit(stack.api_url).netloc
    for reference in references:
        url = urljoin(f"{stack.api_url}{page}", reference)
        assert urlsplit(url).netloc == origin, f"{page} loads {reference} from another host"
    # Nothing else in the page names another host either (no CDN, no fonts, no validator).
    assert re.findall(r"https?://", html) == []
    for reference in references:
        asset = requests.get(urljoin(f"{stack.api_url}{page}", reference), timeout=10)
        assert asset.status_code == 200, reference
        if reference.endswith(".js"):
            assert asset.headers["content-type"].startswith("text/javascript")
            assert len(asset.content) > 100_000, reference  # the real bundle, not an error page
        elif reference.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(("path", "target"), [("/docs/", "/docs"), ("/redoc/", "/redoc")])
def test_docs_with_a_trailing_slash_redirect(stack, path, target):
    response = requests.get(f"{stack.api_url}{path}", timeout=10, allow_redirects=False)
    assert response.status_code == 301
    assert urlsplit(response.headers["location"]).path == target


def test_openapi_document_is_valid_and_lists_every_rest_route(document):
    validate(document)  # raises on any violation of the OpenAPI 3.1 specification
    assert document["openapi"].startswith("3.")
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == descriptor_routes()
    # Served as generated: the committed file, which `generate.py --check` keeps current.
    assert document == json.loads((ROOT / "gateway" / "openapi.json").read_text())


def test_every_operation_documents_auth_and_the_error_shape(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["adminKey"] == {**schemes["adminKey"], "type": "apiKey", "in": "header", "name": "X-Admin-Key"}
    assert schemes["teamKey"]["scheme"] == schemes["adminBearer"]["scheme"] == "bearer"
    error = document["components"]["schemas"]["google.rpc.Status"]
    assert error["required"] == ["code", "message", "details"]
    admin, team = [{"adminKey": []}, {"adminBearer": []}], [{"teamKey": []}]
    admin_only = {"CreditService_AddCredits", "CreditService_AdjustCredits", "CreditService_RefundJob"}
    team_or_admin = {
        "CreditService_GetCreditBalance",
        "CreditService_ListCreditTransactions",
        "JobService_ListTeamModels",
        "JobService_ListJobCalls",
        "AdminJobService_ListTeamJobs",
    }
    for path, item in document["paths"].items():
        for operation in item.values():
            name = (
                operation["operationId"].rsplit("_", 1)[0]
                if operation["operationId"][-1].isdigit()
                else operation["operationId"]
            )
            if operation["tags"][0] in ("AdminService", "WebhookService") or name in admin_only:
                expected = admin
            elif name in team_or_admin:
                expected = team + admin
            else:
                expected = team
            assert operation["security"] == expected, path
            for status in ("4XX", "5XX"):
                assert operation["responses"][status] == {"$ref": "#/components/responses/Error"}
            assert operation["summary"] and operation["operationId"]


def test_streaming_route_is_documented_as_server_sent_events(document):
    success = document["paths"]["/api/jobs/{job_id}/llm-call-stream"]["post"]["responses"]["200"]
    (media_type,) = success["content"]
    assert media_type == "text/event-stream"
    # Before OpenAPI 3.2's itemSchema, an event-stream schema describes one event.
    data = success["content"][media_type]["schema"]["properties"]["data"]
    assert data["contentMediaType"] == "application/json"
    assert data["contentSchema"] == {"$ref": "#/components/schemas/LLMCallStreamResponse"}


def test_schemas_follow_the_transcoder_json_mapping(document):
    schemas = document["components"]["schemas"]
    llm_call = schemas["LLMCallRequest"]["properties"]
    assert "job_id" not in llm_call  # bound in the path, not in the body
    assert llm_call["seed"]["type"] == ["string", "integer", "null"]  # int64: a JSON string (or number on input)
    assert schemas["Usage"]["properties"]["prompt_tokens"]["type"] == "integer"
    assert llm_call["temperature"]["type"] == ["number", "null"]  # proto3 JSON reads null as unset
    assert llm_call["stop"].keys() == {"description"}  # google.protobuf.Value: any JSON
    assert llm_call["response_format"]["type"] == ["object", "null"]
    assert schemas["Job"]["properties"]["created_at"]["format"] == "date-time"
    assert schemas["Job.Status"]["enum"][:2] == ["STATUS_UNSPECIFIED", "PENDING"]
    assert "any case" in schemas["Job.Status"]["description"]
    assert schemas["CreateJobRequest"]["required"] == ["job_type"]
    assert "job_type" in schemas["Job"]["required"] and "started_at" not in schemas["Job"]["required"]
    assert schemas["CreateTeamResponse"]["properties"]["virtual_key"]["description"].startswith("The virtual key")


def test_request_examples_fit_their_schemas(document):
    examples = 0
    for item in document["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "example" in content:
                content_validator(document, content).validate(content["example"])
                examples += 1
    assert examples >= 9


def content_validator(document: dict, content: dict) -> OAS31Validator:
    """A validator of a body's schema: a component, or inline (the OpenAI-format bodies)."""
    if "$ref" in content["schema"]:
        return schema_validator(document, content["schema"]["$ref"].rsplit("/", 1)[-1])
    return OAS31Validator(content["schema"])


def test_the_openai_endpoint_answers_what_its_document_says(stack, document):
    team = rest_team(stack.api_url + "/api")
    operation = document["paths"]["/v1/chat/completions"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    answer = requests.post(
        f"{stack.api_url}/v1/chat/completions",
        json={**example, "model": team.alias},
        headers=team.headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    content_validator(document, operation["responses"]["200"]["content"]["application/json"]).validate(answer.json())
    models = requests.get(f"{stack.api_url}/v1/models", headers=team.headers, timeout=10).json()
    schema_validator(document, "ListOpenAIModelsResponse").validate(models)


def test_real_responses_match_their_documented_schemas(stack, api, document):
    team = rest_team(api)
    fetched = requests.get(f"{api}/teams/{team.team_id}", headers=ADMIN_HEADERS, timeout=10)
    schema_validator(document, "Team").validate(fetched.json())
    job = requests.post(f"{api}/jobs/create", json={"job_type": "docs"}, headers=team.headers, timeout=10).json()
    schema_validator(document, "Job").validate(job)
    stream = requests.post(
        f"{api}/jobs/{job['job_id']}/llm-call-stream",
        json={"messages": [{"role": "user", "content": "hi [fake chunks=3]"}]},
        headers=team.headers,
        timeout=30,
        stream=True,
    )
    assert stream.headers["content-type"] == "text/event-stream"
    events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith(b"data: ")]
    assert len(events) >= 3 and events[-1]["done"] is True
    for event in events:
        schema_validator(document, "LLMCallStreamResponse").validate(event)
    # Errors, the server's and Envoy's own, have the documented shape.
    missing = requests.get(f"{api}/jobs/{job['job_id']}", timeout=10)
    unknown_path = requests.get(f"{api}/no-such-route", headers=team.headers, timeout=10)
    bad_json = requests.post(f"{api}/jobs/create", data="{", headers=team.headers, timeout=10)
    for response in (missing, unknown_path, bad_json):
        assert 400 <= response.status_code < 500
        schema_validator(document, "google.rpc.Status").validate(response.json())
