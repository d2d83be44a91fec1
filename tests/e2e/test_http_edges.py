"""The gateway at the edges of HTTP, over raw sockets where a library would not send the
request or read the answer as it came: a slow reader's stream, a query or a body key a
method's request would take silently, HTTP/1.0, Envoy's own refusals, a request that never
finishes arriving, an HTTP/2 request without a path (gateway/envoy.template.yaml,
gateway/body_fields.lua, devstack/envoy.py)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from devstack import envoy
from devstack.processes import free_port
from devstack.stack import ENVOY_BIN, Stack
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import RestTeam
from tests.e2e.test_transcoder_errors import refusal, violation

NOT_IN_QUERY = "is not a query parameter of this method; send it in the body"
TWICE = "is given more than once in the body; give it once"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def send(port: int, request: bytes, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:  # before connecting: the window the client offers stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    return sock


def read_reply(sock: socket.socket, data: bytes = b"") -> Reply:
    """One HTTP/1 response: its body by Content-Length, or chunked (dechunked), or up to the
    connection's end."""
    while b"\r\n\r\n" not in data:
        data += received(sock, f"the connection closed before the response's head: {data!r}")
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if "content-length" in headers:
        while len(body) < int(headers["content-length"]):
            body += received(sock, "the connection closed before the whole body")
    elif headers.get("transfer-encoding") == "chunked":
        while (whole := dechunked(body)) is None:
            body += received(sock, f"the connection closed before the last chunk, after {body[-200:]!r}")
        body = whole
    else:
        while chunk := sock.recv(65536):
            body += chunk
    sock.close()
    return Reply(int(status_line.split()[1]), headers, body)


def received(sock: socket.socket, closed: str) -> bytes:
    chunk = sock.recv(1 << 20)
    assert chunk, closed
    return chunk


def dechunked(body: bytes) -> bytes | None:
    """A chunked body's content, or None while its last chunk has not come."""
    out, at = [], 0
    while (size_end := body.find(b"\r\n", at)) != -1:
        size = int(body[at:size_end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out) if body.endswith(b"\r\n\r\n", size_end) else None
        if len(body) < size_end + 2 + size + 2:
            return None
        out.append(body[size_end + 2 : size_end + 2 + size])
        at = size_end + 2 + size + 2
    return None


def request(method: str, target: str, headers: dict[str, str], body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_post(target: str, team: RestTeam, body: bytes, **extra: str) -> bytes:
    headers = {"Host": "api", **team.headers, "Content-Type": "application/json", "Content-Length": str(len(body))}
    return request("POST", target, {**headers, **extra}, body)


def events(body: bytes) -> list[dict]:
    return [json.loads(data) for data in re.findall(rb"^data: (.*)$", body, re.MULTILINE)]


def gateway_error(reply: Reply, status: int, reason: str) -> dict:
    """Envoy's own reply, in the API's error shape."""
    assert reply.status == status, reply
    assert reply.headers["content-type"] == "application/json", reply
    body = reply.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["details"][0]["reason"] == reason and body["details"][0]["domain"] == "saaslitellm", body
    return body


def as_team(team: RestTeam) -> dict:
    return {"headers": team.headers, "timeout": 30}


def raw_post(api: str, path: str, team: RestTeam, body: str) -> requests.Response:
    headers = {**team.headers, "content-type": "application/json"}
    return requests.post(f"{api}{path}", data=body.encode(), headers=headers, timeout=30)


def team_jobs(api: str, team: RestTeam) -> list[dict]:
    listed = requests.get(f"{api}/teams/{team.team_id}/jobs", headers=team.headers, timeout=10)
    assert listed.status_code == 200, listed.text
    return listed.json()["jobs"]


# A slow reader.


def test_a_reader_that_pauses_gets_the_end_of_its_stream_on_a_closing_connection(stack, team):
    """A stream of 4 MB the client (`Connection: close`, a small receive buffer) stops
    reading for 3 s: the server has sent it all by then, and Envoy held most of it. With
    Envoy's default delayed_close_timeout (1 s) it closed the socket with the rest unsent: no
    `done` event, for a call served and charged."""
    prompt = "[fake echo=1 chunks=4] " + "abcdefghi " * 200_000  # echoed: 2 MB of content, then the done event's
    body = json.dumps({"job_type": "slow-reader", "messages": [{"role": "user", "content": prompt}]}).encode()
    sock = send(
        stack.config.ports.envoy,
        json_post("/api/jobs/create-and-call-stream", team, body, Connection="close"),
        rcvbuf=4096,
    )
    first = sock.recv(4096)
    time.sleep(3)
    reply = read_reply(sock, first)
    assert reply.status == 200 and reply.headers["content-type"] == "text/event-stream"
    assert len(reply.body) > 3_000_000
    last = events(reply.body)[-1]
    assert last["done"] is True and last["job_status"] == "COMPLETED", str(last)[:300]


# The query of a method whose request is the body.


@pytest.mark.parametrize(
    ("target", "body", "named"),
    [
        ("/api/jobs/create?job_type=q", b'{"jobType": "b"}', "job_type"),  # created a job of type q
        ("/api/jobs/create?jobType=q", b'{"job_type": "b"}', "jobType"),
        ("/api/jobs/create?job%5Ftype=q", b'{"job_type": "b"}', "job_type"),  # the name as the transcoder reads it
        ("/api/jobs/create?user_id", b'{"job_type": "b"}', "user_id"),  # a name without a value
        ("/api/jobs/create?&user_id=u&", b'{"job_type": "b"}', "user_id"),
    ],
)
def test_a_query_parameter_of_a_create_is_refused_and_nothing_is_created(stack, api, team, target, body, named):
    reply = read_reply(send(stack.config.ports.envoy, json_post(target, team, body)))
    assert reply.status == 400
    assert violation(reply.json()) == {"field": named, "description": NOT_IN_QUERY, "reason": ""}
    assert team_jobs(api, team) == []


def test_a_query_parameter_adds_nothing_to_a_list_in_the_body(api, team):
    """`messages.role=user&messages.content=injected` added a message to the estimate's."""
    url = f"{api}/jobs/estimate-call?messages.role=user&messages.content=injected"
    refused = refusal(requests.post(url, json={"messages": [{"role": "user", "content": "hi"}]}, **as_team(team)))
    assert violation(refused) == {"field": "messages.role", "description": NOT_IN_QUERY, "reason": ""}


def test_an_empty_query_is_no_parameter(api, team):
    for url in (f"{api}/jobs/create?", f"{api}/jobs/create?&"):
        created = requests.post(url, json={"job_type": "empty-query"}, **as_team(team))
        assert created.status_code == 200, created.text
        assert created.json()["job_type"] == "empty-query"


def test_the_openai_route_keeps_its_query_as_it_was(stack, team):
    """/v1/chat/completions is the server's to read (no body metadata): its query is the
    transcoder's, as before."""
    body = json.dumps({"model": team.alias, "messages": [{"role": "user", "content": "hi"}]}).encode()
    reply = read_reply(send(stack.config.ports.envoy, json_post("/v1/chat/completions?", team, body)))
    assert reply.status == 200, reply
    reply = read_reply(send(stack.config.ports.envoy, json_post("/v1/chat/completions?x=1", team, body)))
    assert (
        reply.status == 400 and reply.json()["message"] == "x: is not a query parameter of this method"
    )  # the transcoder's


# A key given twice in a body.


def test_a_status_given_twice_does_not_complete_the_job(api, team):
    """`{"status": "failed", "status": "completed"}` completed (and charged) the job."""
    job = requests.post(f"{api}/jobs/create", json={"job_type": "twice"}, **as_team(team)).json()
    refused = refusal(
        raw_post(api, f"/jobs/{job['job_id']}/complete", team, '{"status":"failed","status":"completed"}')
    )
    assert violation(refused) == {"field": "status", "description": TWICE, "reason": ""}
    assert requests.get(f"{api}/jobs/{job['job_id']}", **as_team(team)).json()["status"] == "PENDING"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('{"job_type": "a", "jobType": "b"}', "job_type"),  # made a job of type b
        ('{"jobType": "a", "job_type": "b"}', "job_type"),
        ('{"job_type": "a", "job_type": "b"}', "job_type"),
        ('{"job_type": "a", "job\\u005ftype": "b"}', "job_type"),  # escaped, as the transcoder reads it
        ('{"job_type": "a", "metadata": {}, "metadata": {}}', "metadata"),
    ],
)
def test_a_field_given_twice_is_refused_naming_it(api, team, body, named):
    refused = refusal(raw_post(api, "/jobs/create", team, body))
    assert violation(refused) == {"field": named, "description": TWICE, "reason": ""}
    assert team_jobs(api, team) == []


def test_a_field_given_twice_in_a_nested_message_is_named_by_its_path(api, team):
    body = '{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b", "content": "c"}]}'
    refused = refusal(raw_post(api, "/jobs/estimate-call", team, body))
    assert violation(refused) == {"field": "messages[1].content", "description": TWICE, "reason": ""}


IN_AN_OBJECT = 'has the key "k" more than once in one of its objects; give it once'


@pytest.mark.parametrize(
    ("path", "extra", "named", "description"),
    [
        # The transcoder refuses these itself, naming them `metadata.fields[0]` and the like.
        ("/jobs/create", '"metadata": {"k": 1, "k": 2}', "metadata.k", TWICE),
        ("/jobs/estimate-call", '"tools": [{"k": 1}, {"k": 1, "k": 2}]', "tools[1].k", TWICE),
        ("/jobs/estimate-call", '"tool_choice": {"k": 1, "k": 2}', "tool_choice.k", TWICE),
        ("/jobs/estimate-call", '"stop": [1, {"k": 1, "k": 2}]', "stop[1].k", TWICE),
        # Its message does not say under which key the object is: the field that holds it.
        ("/jobs/create", '"metadata": {"x": {"k": 1, "k": 2}}', "metadata", IN_AN_OBJECT),
        ("/jobs/create", '"metadata": {"x": [1, {"k": 1, "k": 2}]}', "metadata", IN_AN_OBJECT),
    ],
)
def test_a_key_given_twice_in_free_form_json_is_named_by_its_key(api, team, path, extra, named, description):
    first = '"job_type": "a"' if path == "/jobs/create" else '"messages": [{"role": "user", "content": "hi"}]'
    refused = refusal(raw_post(api, path, team, "{" + first + ", " + extra + "}"))
    assert violation(refused) == {"field": named, "description": description, "reason": ""}


def test_the_same_key_in_different_objects_is_fine(api, team):
    body = '{"job_type": "a", "metadata": {"k": {"k": 1}, "x": [{"k": 1}, {"k": 2}], "job_type": "m"}}'
    created = raw_post(api, "/jobs/create", team, body)
    assert created.status_code == 200, created.text
    assert created.json()["metadata"] == {"k": {"k": 1}, "x": [{"k": 1}, {"k": 2}], "job_type": "m"}


# A credential sent twice: HTTP joins the values of a header sent more than once; a
# gRPC server's metadata keeps each, and taking the last let a request pass whose first
# key was refused by whatever read the first (a proxy, a log, a rate limiter).


def with_twice(request_bytes: bytes, name: str, first: str) -> bytes:
    """The request with `name: first` added before its own `name` header."""
    head, _, body = request_bytes.partition(b"\r\n\r\n")
    method_line, *lines = head.split(b"\r\n")
    return b"\r\n".join([method_line, f"{name}: {first}".encode(), *lines]) + b"\r\n\r\n" + body


@pytest.mark.parametrize("first", ["Bearer sk-not-a-key", "same"])
def test_a_virtual_key_sent_twice_is_refused_and_creates_nothing(stack, api, team, first):
    first = f"Bearer {team.key}" if first == "same" else first
    body = json.dumps({"job_type": "twice"}).encode()
    reply = read_reply(
        send(stack.config.ports.envoy, with_twice(json_post("/api/jobs/create", team, body), "Authorization", first))
    )
    assert reply.status == 401, reply
    refused = reply.json()
    assert refused["details"][0]["reason"] == "INVALID_API_KEY", refused
    assert "sent more than once" in refused["message"] and team.key not in reply.body.decode(), refused
    assert not [job for job in team_jobs(api, team) if job["job_type"] == "twice"]


def test_an_admin_key_sent_twice_is_refused(stack):
    headers = {"Host": "api", "X-Admin-Key": ADMIN_KEY}
    sent = with_twice(request("GET", "/api/organizations", headers), "X-Admin-Key", "sk-wrong-admin-key-000")
    reply = read_reply(send(stack.config.ports.envoy, sent))
    assert reply.status == 401, reply
    refused = reply.json()
    assert refused["details"][0]["reason"] == "ADMIN_KEY_REQUIRED", refused
    assert "X-Admin-Key was sent more than once" in refused["message"] and ADMIN_KEY not in reply.body.decode()


@pytest.mark.parametrize(
    ("target", "body", "header"),
    [
        ("/api/jobs/create", {"job_type": "twice"}, "Idempotency-Key"),
        (
            "/api/jobs/create-and-call",
            {"job_type": "twice", "messages": [{"role": "user", "content": "x"}]},
            "Idempotency-Key",
        ),
        ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "X-Job-Type"),
    ],
)
def test_a_header_that_names_one_thing_sent_twice_is_refused(stack, api, team, target, body, header):
    """Joined, the same key sent twice was another key ("k, k"): a retry went unrecognised."""
    sent = json_post(target, team, json.dumps(body).encode(), **{header: "k"})
    reply = read_reply(send(stack.config.ports.envoy, with_twice(sent, header, "k")))
    assert reply.status == 400, reply
    assert header.lower() in reply.json()["message"] and "sent more than once" in reply.json()["message"], reply
    assert not [job for job in team_jobs(api, team) if job["job_type"] in ("twice", "k")]


# HTTP/1.0 and what Envoy's codec refuses.


def test_http_1_0_is_served(stack, api, team):
    """An nginx in front (proxy_http_version 1.0 by default) got 426 for every request."""
    job = requests.post(f"{api}/jobs/create", json={"job_type": "http10"}, **as_team(team)).json()
    for headers in ({"Host": "api", **team.headers}, team.headers):  # Host is optional in HTTP/1.0
        target = f"/api/jobs/{job['job_id']}"
        reply = read_reply(send(stack.config.ports.envoy, request("GET", target, headers, version="HTTP/1.0")))
        assert reply.status == 200, reply
        assert reply.json()["job_id"] == job["job_id"]


def test_a_stream_to_http_1_0_ends_with_the_connection(stack, team):
    body = json.dumps({"job_type": "http10", "messages": [{"role": "user", "content": "[fake tokens=5 chunks=5]"}]})
    headers = {**team.headers, "Content-Type": "application/json", "Content-Length": str(len(body))}
    sock = send(
        stack.config.ports.envoy,
        request("POST", "/api/jobs/create-and-call-stream", headers, body.encode(), "HTTP/1.0"),
    )
    sock.settimeout(10)  # the end of the stream is the connection's: it comes at once
    reply = read_reply(sock)
    assert reply.status == 200 and "transfer-encoding" not in reply.headers and "content-length" not in reply.headers
    streamed = events(reply.body)
    assert streamed[-1]["done"] is True and len("".join(e.get("content", "") for e in streamed).split()) == 5


def test_an_unsupported_transfer_encoding_is_refused_in_the_error_shape(stack, team):
    """It was 501 text/plain `Not Implemented`."""
    body = b"2\r\n{}\r\n0\r\n\r\n"
    headers = {"Host": "api", **team.headers, "Content-Type": "application/json", "Transfer-Encoding": "gzip, chunked"}
    reply = read_reply(send(stack.config.ports.envoy, request("POST", "/api/jobs/create", headers, body)))
    refused = gateway_error(reply, 501, "INVALID_REQUEST")
    assert refused["message"] == envoy.LOCAL_REPLY_CODES[501][2]


def test_every_status_envoy_answers_by_itself_has_the_error_shape():
    for status in (400, 404, 405, 408, 413, 426, 431, 500, 501, 502, 503, 504):
        assert status in envoy.LOCAL_REPLY_CODES, status


# A request that never finishes arriving.


@pytest.fixture(scope="module")
def quick_envoy(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An Envoy of its own before the session's servers, rendered as the stack's but for a
    1-second request timeout (60 s in the real one): its port."""
    config = envoy.EnvoyConfig(
        listen_port=free_port(),
        admin_port=free_port(),
        grpc_backends=tuple(("127.0.0.1", port) for port in stack.grpc_ports),
        metrics_backends=tuple(("127.0.0.1", port) for port in stack.metrics_ports),
        health_interval=stack.config.health_interval,
        request_timeout="1s",
    )
    path = tmp_path_factory.mktemp("quick-envoy") / "envoy.yaml"
    path.write_text(envoy.render(config))
    log = path.with_suffix(".log").open("w")
    process = subprocess.Popen(
        [str(ENVOY_BIN), "-c", str(path), "--disable-hot-restart", "--log-level", "warn"], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None and time.monotonic() < deadline, path.with_suffix(".log").read_text()
            try:
                if (
                    requests.post(
                        f"http://127.0.0.1:{config.listen_port}/api/jobs/create", json={}, timeout=1
                    ).status_code
                    == 401
                ):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        yield config.listen_port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_the_gateway_waits_a_minute_for_a_whole_request(stack):
    assert "request_timeout: 60s" in stack.envoy_yaml()


@pytest.mark.parametrize(
    "body",
    [
        {"Content-Length": "100", "body": b'{"job_type": "x"}'},  # shorter than its length
        {"Transfer-Encoding": "chunked", "body": b'5\r\n{"job'},  # chunks that never end
    ],
    ids=["short", "unterminated-chunks"],
)
def test_a_request_that_stops_arriving_is_408_in_the_error_shape(quick_envoy, team, body):
    """It was held for the stream idle timeout (5 minutes)."""
    headers = {"Host": "api", **team.headers, "Content-Type": "application/json"}
    headers.update({name: value for name, value in body.items() if name != "body"})
    started = time.monotonic()
    reply = read_reply(send(quick_envoy, request("POST", "/api/jobs/create", headers, body["body"])))
    assert time.monotonic() - started < 10
    gateway_error(reply, 408, "GATEWAY_TIMEOUT")


def test_the_request_timeout_does_not_cut_a_stream(quick_envoy, api, team):
    """The request has arrived: a stream may last longer than the request timeout."""
    prompt = "[fake tokens=4 chunks=4 delay_ms=600]"  # 2.4 s
    with requests.post(
        f"http://127.0.0.1:{quick_envoy}/api/jobs/create-and-call-stream",
        json={"job_type": "long", "messages": [{"role": "user", "content": prompt}]},
        stream=True,
        **as_team(team),
    ) as response:
        streamed = events(response.content)
    assert streamed[-1]["done"] is True and len("".join(e.get("content", "") for e in streamed).split()) == 4


# HTTP/2 without a path.


def h2_frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def lua_errors(stack: Stack) -> int:
    stats = requests.get(f"http://127.0.0.1:{stack.config.ports.envoy_admin}/stats", timeout=5).text
    return int(re.search(r"^http\.api\.lua\.errors: (\d+)$", stats, re.MULTILINE).group(1))


def test_an_http2_request_without_a_path_runs_no_lua_error(stack):
    """HTTP/2's CONNECT has no :path: the Lua filter failed on it ("bad argument #1 to
    'match'"), logged as an error. The request gets a 404 either way."""
    before = lua_errors(stack)
    authority = b"127.0.0.1:22"
    # HPACK, literal fields without indexing, names from the static table: :method, :authority.
    block = b"\x02\x07CONNECT" + b"\x01" + bytes([len(authority)]) + authority
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0)
    sock = send(stack.config.ports.envoy, preface + h2_frame(1, 0x5, 1, block))  # END_STREAM | END_HEADERS
    sock.settimeout(10)
    data, answered = b"", False
    while not answered:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed without an answer"
        data += chunk
        while len(data) >= 9 and len(data) >= 9 + int.from_bytes(data[:3], "big"):
            length, kind, flags, stream = int.from_bytes(data[:3], "big"), data[3], data[4], data[5:9]
            if kind == 4 and not flags & 1:
                sock.sendall(h2_frame(4, 1, 0))  # acknowledge the server's settings
            answered = answered or (int.from_bytes(stream, "big") == 1 and kind in (1, 3))  # HEADERS, RST_STREAM
            data = data[9 + length :]
    sock.close()
    assert lua_errors(stack) == before


def test_a_key_holding_a_comma_is_told_it_may_be_that_not_only_sent_twice(api):
    """HTTP joins a header sent twice with a comma, so the server cannot tell one from a key
    holding a comma (which no key has): the message names both."""
    team = requests.post(
        f"{api}/jobs/create", headers={"Authorization": "Bearer sk-one,two"}, json={"job_type": "t"}, timeout=10
    )
    admin = requests.get(f"{api}/organizations", headers={"X-Admin-Key": "sk-one,two"}, timeout=10)
    assert team.status_code == admin.status_code == 401
    assert "holds a comma" in team.json()["message"] and "holds a comma" in admin.json()["message"]
