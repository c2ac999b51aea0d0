"""The server's real HTTP stack (gunicorn, as `fhir-facade serve` runs it), spoken to on raw
sockets so that no client library tidies the request: chunked bodies, requests gunicorn itself
refuses, what reaches the log, and the control socket."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess

import pytest

from bench.servers import ROOT, Server, facade_command, free_port

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def served(demo_path, tmp_path_factory):
    work = tmp_path_factory.mktemp("http-stack")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_FACADE_")}
    env.update(
        FHIR_FACADE_DEMO_PATH=demo_path,
        FHIR_FACADE_STATE_URL=f"sqlite:///{work / 'state.sqlite'}",
        FHIR_FACADE_WORKERS="1",
        XDG_DATA_HOME=str(work / "data"),
        HOME=str(work / "home"),  # where gunicorn would put its default control socket…
        XDG_RUNTIME_DIR=str(work / "run"),  # …or here, when it exists
    )
    (work / "home").mkdir()
    (work / "run").mkdir()
    server = Server("façade", [*facade_command(), "serve", "--port", str(port)], env, port, work / "serve.log")
    server.start("/healthz")
    token = subprocess.run(
        [*facade_command(), "token", "--scope", "user/*.rs", "--port", str(port)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()[-1]
    yield server, token, work
    server.stop()


def exchange(port: int, raw: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` as is; return the status, headers and body of the answer (the connection closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # A server refusing a body (413) may answer and close before the client has sent it all:
        # what it answered is still to be read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    assert data, "no answer"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return int(lines[0].split()[1]), headers, body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, data = out + data[:n], data[n + 2 :]
    return out


def chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def post(path: str, token: str, content_type: str, body: bytes, *, is_chunked: bool) -> bytes:
    framing = b"Transfer-Encoding: chunked" if is_chunked else b"Content-Length: %d" % len(body)
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\n%s\r\nConnection: close\r\n\r\n" % (
        path.encode(),
        token.encode(),
        content_type.encode(),
        framing,
    )
    return head + (chunked(body) if is_chunked else body)


def _patient(server: Server, token: str) -> str:
    status, _, body = exchange(
        server.port, b"GET /fhir/Patient?_count=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % token.encode()
    )
    assert status == 200, body
    return json.loads(body)["entry"][0]["resource"]["id"]


# -- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("is_chunked", [False, True])
def test_chunked_bodies_are_read_checked_and_limited_like_content_length_ones(served, is_chunked):
    server, token, _ = served
    pid = _patient(server, token)
    form = "application/x-www-form-urlencoded"
    # read whole: the filter at the end applies
    status, _, body = exchange(
        server.port, post("/fhir/Patient/_search", token, form, f"_id={pid}&_elements=id".encode(), is_chunked=is_chunked)
    )
    assert status == 200 and [e["resource"]["id"] for e in json.loads(body)["entry"]] == [pid], body[:300]
    # over the limit: 413, not a search over the first MiB
    big = b"_pad=" + b"A" * LIMIT + f"&_id={pid}".encode()
    status, _, body = exchange(server.port, post("/fhir/Patient/_search", token, form, big, is_chunked=is_chunked))
    assert status == 413 and json.loads(body)["resourceType"] == "OperationOutcome", (status, body[:300])
    # the media type is checked
    status, _, body = exchange(server.port, post("/fhir/Patient/_search", token, "application/json", b"{}", is_chunked=is_chunked))
    assert status == 415, (status, body[:300])
    # $everything reads its Parameters body
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_count", "valueInteger": 1}, {"name": "_type", "valueString": "Patient"}],
    }
    raw = post(f"/fhir/Patient/{pid}/$everything", token, "application/fhir+json", json.dumps(parameters).encode(), is_chunked=is_chunked)
    status, _, body = exchange(server.port, raw)
    assert status == 200 and [e["resource"]["resourceType"] for e in json.loads(body)["entry"]] == ["Patient"], body[:300]
    # and so do the terminology operations
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": 1}]}
    raw = post(
        "/fhir/ValueSet/demo-lab-tests/$expand", token, "application/fhir+json", json.dumps(parameters).encode(), is_chunked=is_chunked
    )
    status, _, body = exchange(server.port, raw)
    assert status == 200 and len(json.loads(body)["expansion"]["contains"]) == 1, body[:300]


# -- what gunicorn refuses itself -------------------------------------------------------------

PHI = ("Mueller", "M\u00fcller", "1961-02-03", "555-12-3456")


def _hostile(token: str) -> list[tuple[str, bytes, int]]:
    query = "family=M\u00fcller&birthdate=1961-02-03&identifier=555-12-3456"
    auth = b"Authorization: Bearer %s\r\n" % token.encode()
    return [
        ("raw UTF-8 in the request line", f"GET /fhir/Patient?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400),
        ("a space in the query", b"GET /fhir/Patient?family=Mueller Young&birthdate=1961-02-03 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("a tab before the version", b"GET /fhir/Patient?family=Mueller&birthdate=1961-02-03\tHTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("a bad method", b"G\x01T /fhir/Patient?family=Mueller&birthdate=1961-02-03 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (
            "a request line over the limit",
            b"GET /fhir/Patient?family=Mueller&birthdate=1961-02-03&_pad=" + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
        ),
        (
            "a header over the limit",
            b"GET /fhir/Patient?family=Mueller HTTP/1.1\r\nHost: x\r\nX-Note: 1961-02-03 " + b"A" * 9000 + b"\r\n\r\n",
            431,
        ),
        ("too many headers", b"GET /fhir/Patient?family=Mueller HTTP/1.1\r\nHost: x\r\n" + b"X-N: 555-12-3456\r\n" * 101 + b"\r\n", 431),
        ("an invalid header name", b"GET /fhir/Patient?family=Mueller HTTP/1.1\r\nHost: x\r\nX Bad: 1961-02-03\r\n\r\n", 400),
        (
            "a bad chunk size",
            b"POST /fhir/Patient/_search?family=Mueller HTTP/1.1\r\nHost: x\r\n"
            + auth
            + b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbirthdate=1961-02-03\r\n0\r\n\r\n",
            400,
        ),
    ]


def test_requests_gunicorn_refuses_get_an_operation_outcome_and_leave_no_phi_in_the_log(served):
    server, token, _ = served
    before = server.log.read_bytes()
    for name, raw, expected in _hostile(token):
        status, headers, body = exchange(server.port, raw)
        assert status == expected, (name, status, body[:300])
        assert headers["content-type"] == "application/fhir+json; charset=utf-8", (name, headers)
        outcome = json.loads(body)
        assert outcome["resourceType"] == "OperationOutcome", name
        for value in PHI:
            assert value.encode() not in body, (name, body)
    assert server.get("/healthz")[0] == 200
    log = server.log.read_bytes()[len(before) :]
    assert log.count(b"Invalid request from ip=") >= len(_hostile(token)) - 1, log.decode(errors="replace")
    for line in log.splitlines():
        for value in (*PHI, "family=", "Patient?"):
            assert value.encode() not in line, line


def test_a_get_search_of_about_8_kb_is_served(served):
    server, token, _ = served
    raw = (
        b"GET /fhir/Patient?_elements=id&_id="
        + b",".join([b"x" * 70] * 100)
        + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % token.encode()
    )
    assert len(raw) > 7000
    status, _, body = exchange(server.port, raw)
    assert status == 200, body[:300]


def test_an_instance_holds_no_shared_control_socket(served):
    """gunicorn's default control socket is one path per user: a second server on the host would
    take it over and unlink it when it stops. The façade opens none."""
    _, _, work = served
    found = [p for d in (work / "home", work / "run") for p in d.rglob("*") if p.name.endswith(".ctl")]
    assert found == []


def test_a_worker_puts_what_the_app_holds_out_of_the_collectors_sight(monkeypatch):
    """A full collection walks only what requests made (the app's ~200k objects made it a
    ~200 ms pause under load)."""
    import gc

    from gunicorn.workers.gthread import ThreadWorker

    from facade.gunicorn import FacadeWorker

    monkeypatch.setattr(ThreadWorker, "load_wsgi", lambda self: None)  # the app itself is not needed
    held = [object() for _ in range(1000)]
    thresholds = gc.get_threshold()
    try:
        object.__new__(FacadeWorker).load_wsgi()
        assert gc.get_freeze_count() >= len(held)
        assert gc.get_threshold()[0] >= 10_000  # pages of resources are not collected every 700 objects
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
