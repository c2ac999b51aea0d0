"""Behaviour an operator or a security reviewer relies on at the edges: binds, caches, CORS,
encodings, and a state database that is down when the server starts."""

from __future__ import annotations

import http.client
import logging
import os
import socket
import subprocess
import time

import orjson
import pytest

from bench.servers import Server, facade_command, free_port
from facade.app import create_app
from facade.config import ConfigError, Settings, load_settings
from facade.web.compression import accepts_gzip


def test_listening_on_every_interface_needs_the_url_clients_use():
    with pytest.raises(ConfigError, match="base_url"):
        load_settings(environ={"FHIR_FACADE_HOST": "0.0.0.0"})
    settings = load_settings(environ={"FHIR_FACADE_HOST": "0.0.0.0", "FHIR_FACADE_BASE_URL": "https://fhir.example.org/fhir"})
    assert settings.public_base_url == "https://fhir.example.org/fhir" and settings.accepted_base_urls == ("https://fhir.example.org/fhir",)
    assert load_settings(environ={"FHIR_FACADE_HOST": "[::1]"}).public_base_url == "http://[::1]:8080/fhir"


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("*", True),
        ("*;q=0, gzip", True),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("", False),
        ("GZIP;q=0.5", True),
        ("gzip;q=0", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header, gzip):
    assert accepts_gzip(header) is gzip


def test_patient_data_is_never_kept_by_a_browser_for_another_token(client):
    # (this app checks no token; an answer to a request that carried one is private all the same)
    response = client.get("/fhir/Patient?_count=1", headers={"Authorization": "Bearer any"})
    assert response.headers["Cache-Control"] == "private, no-cache" and "Authorization" in response.headers["Vary"]
    assert "Cache-Control" not in client.get("/fhir/metadata").headers  # the capability statement is public


def test_browser_apps_can_read_the_new_headers(client):
    preflight = client.options(
        "/fhir/Patient",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match, x-request-id",
        },
    )
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "if-none-match" in allowed and "x-request-id" in allowed
    exposed = client.get("/fhir/metadata", headers={"Origin": "https://app.example"}).headers["Access-Control-Expose-Headers"]
    assert "ETag" in exposed and "X-Request-ID" in exposed


def test_the_server_starts_while_its_state_database_is_down_and_says_so(demo_path):
    down = f"postgresql+psycopg2://nobody@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    app = create_app(Settings(auth_mode="off", demo_path=demo_path, base_url="http://testserver/fhir", state_url=down))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # alive: restarting would not help
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["state_database"]["ok"] is False
    refused = client.get("/fhir/Patient?_count=1")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.get_json()["issue"][0]["code"] == "transient"


def test_a_failed_state_statement_logs_no_values(demo_path, tmp_path, caplog):
    from sqlalchemy import text

    from facade.state import StateStore

    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as failure:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table WHERE patient = :p"), {"p": "PATIENT-SECRET-123"})
    assert "PATIENT-SECRET-123" not in str(failure.value)
    store.dispose()


def _serve(demo_path, tmp_path, host: str, **env_extra: str) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_FACADE_")}
    env.update(
        FHIR_FACADE_DEMO_PATH=demo_path,
        FHIR_FACADE_STATE_URL=f"sqlite:///{tmp_path / 'state.sqlite'}",
        FHIR_FACADE_WORKERS="1",
        XDG_DATA_HOME=str(tmp_path / "data"),
        **env_extra,
    )
    server = Server("façade", [*facade_command(), "serve", "--host", host, "--port", str(port)], env, port, tmp_path / "serve.log")
    return server


def test_json_logs_start_the_server_and_every_line_is_json(demo_path, tmp_path):
    server = _serve(demo_path, tmp_path, "127.0.0.1", FHIR_FACADE_LOG_FORMAT="json")
    server.start("/healthz")
    try:
        assert server.get("/readyz")[0] == 200
    finally:
        server.stop()
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    assert lines and all(isinstance(orjson.loads(line), dict) for line in lines), lines[:5]
    assert any("serving FHIR at" in orjson.loads(line)["message"] for line in lines)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def _get_ipv6(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("::1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_an_ipv6_address_can_be_served(demo_path, tmp_path):
    server = _serve(demo_path, tmp_path, "::1")
    with open(server.log, "wb") as out:
        server.proc = subprocess.Popen(server.argv, env=server.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert _get_ipv6(server.port, "/healthz") == 200
                break
            except OSError:
                if time.monotonic() > deadline or server.proc.poll() is not None:
                    pytest.fail(server.log_tail())
                time.sleep(0.2)
        assert f"serving FHIR at http://[::1]:{server.port}/fhir" in server.log.read_text()
    finally:
        server.stop()
