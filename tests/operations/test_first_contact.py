"""A newcomer's first minutes, against a real `fhir-facade serve`: any port, the token the start-up
log tells them to mint, both loopback names, a clear word when the port is taken, and metrics
summed across the workers."""

from __future__ import annotations

import http.client
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from bench.servers import ROOT, Server, facade_command, free_port


@pytest.fixture(scope="module")
def served(demo_path, tmp_path_factory):
    work = tmp_path_factory.mktemp("first-contact")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_FACADE_")}
    env.update(
        FHIR_FACADE_DEMO_PATH=demo_path,
        FHIR_FACADE_STATE_URL=f"sqlite:///{work / 'state.sqlite'}",
        FHIR_FACADE_WORKERS="2",
        XDG_DATA_HOME=str(work / "data"),
    )
    server = Server("façade", [*facade_command(), "serve", "--port", str(port)], env, port, work / "serve.log")
    server.start("/healthz")
    yield server, env, port
    server.stop()


def _token(env: dict, *flags: str) -> str:
    done = subprocess.run(
        [*facade_command(), "token", "--scope", "user/*.rs", *flags],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _get(host: str, port: int, path: str, token: str) -> tuple[int, bytes, dict]:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def test_the_token_minted_for_the_port_works_under_both_loopback_names(served):
    server, env, port = served
    token = _token(env, "--port", str(port))
    for host in ("127.0.0.1", "localhost"):
        status, body, _ = _get(host, port, "/fhir/Patient?_count=1", token)
        assert status == 200, body[:300]


def test_a_token_for_another_address_is_refused_saying_which_is_expected(served):
    server, env, port = served
    status, body, headers = _get("127.0.0.1", port, "/fhir/Patient?_count=1", _token(env))  # minted for the default port
    assert status == 401
    assert f"http://127.0.0.1:{port}/fhir" in body.decode() and "iss" in body.decode()
    assert "invalid_token" in headers["WWW-Authenticate"]


def test_the_start_up_log_says_how_to_get_a_token_and_names_a_demo_patient(served):
    server, env, port = served
    text = server.log.read_text()
    hint = f"fhir-facade token --scope 'user/*.rs' --base-url http://127.0.0.1:{port}/fhir"
    assert hint in text
    done = subprocess.run(
        [*facade_command(), *shlex.split(hint)[1:]], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )  # the command the log gives works as given
    assert _get("localhost", port, "/fhir/Patient?_count=1", done.stdout.strip().splitlines()[-1])[0] == 200
    found = re.search(r"a demo patient with data of every kind: (\S+)/Patient/(\S+)", text)
    assert found and found.group(1) == f"http://127.0.0.1:{port}/fhir"
    done = subprocess.run([*facade_command(), "demo", "patient"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == found.group(2)
    token = _token(env, "--port", str(port))
    for kind in (
        "Observation?category=laboratory",
        "Observation?category=vital-signs",
        "Condition",
        "MedicationRequest",
        "AllergyIntolerance",
        "Immunization",
        "Procedure",
        "Encounter",
    ):
        status, body, _ = _get("127.0.0.1", port, f"/fhir/{kind}{'&' if '?' in kind else '?'}patient={found.group(2)}&_count=1", token)
        assert status == 200 and b'"entry"' in body, kind


def test_a_port_in_use_is_one_line_naming_the_option(served):
    server, env, port = served
    started = time.monotonic()
    done = subprocess.run([*facade_command(), "serve", "--port", str(port)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and time.monotonic() - started < 10
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors[-1] == f"Error: port {port} on 127.0.0.1 is already in use: choose another with --port (or [server] port)"
    assert "Traceback" not in done.stderr


def test_metrics_are_summed_across_the_workers(served):
    server, env, port = served
    token = _token(env, "--port", str(port))
    for _ in range(20):  # new connections: both workers get some
        assert _get("127.0.0.1", port, "/fhir/Practitioner?_count=1", token)[0] == 200
    deadline = time.monotonic() + 10  # each worker publishes its counts once a second
    while True:
        status, body, headers = _get("127.0.0.1", port, "/metrics", token)
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        counted = re.search(
            r'fhir_facade_requests_total\{interaction="search",resource_type="Practitioner",status="200"\} (\S+)', body.decode()
        )
        if (counted and float(counted.group(1)) >= 20) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counted and float(counted.group(1)) == 20
    [directory] = Path(env["XDG_DATA_HOME"], "fhir-facade", "metrics").glob(f"{port}-*")  # this instance's own
    assert len(list(directory.glob("*.db"))) >= 2  # one file set per worker


def test_metrics_can_have_their_own_port_for_the_operator_to_firewall(demo_path, tmp_path):
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_FACADE_")}
    env.update(
        FHIR_FACADE_DEMO_PATH=demo_path,
        FHIR_FACADE_STATE_URL=f"sqlite:///{tmp_path / 'state.sqlite'}",
        FHIR_FACADE_WORKERS="1",
        FHIR_FACADE_METRICS_PORT=str(metrics_port),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    server = Server("façade", [*facade_command(), "serve", "--port", str(port)], env, port, tmp_path / "serve.log")
    server.start("/healthz")
    try:
        assert server.get("/metrics")[0] == 404  # not on the public port
        token = _token(env, "--port", str(port))
        assert _get("127.0.0.1", port, "/fhir/Organization", token)[0] == 200
        counted = b'fhir_facade_requests_total{interaction="search",resource_type="Organization",status="200"} 1.0'
        deadline = time.monotonic() + 10  # the worker publishes its counts once a second
        while True:
            status, body, _ = _get("127.0.0.1", metrics_port, "/metrics", "")
            if (status == 200 and counted in body) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200 and counted in body
    finally:
        server.stop()
