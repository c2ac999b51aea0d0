"""Configuration precedence, the command line, and the production server."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from facade.cli import main
from facade.config import ConfigError, load_settings


def test_defaults_serve_the_demo_on_8080():
    settings = load_settings(environ={})
    assert settings.port == 8080 and settings.is_demo and settings.mapping.endswith("demo/mapping.yaml")


def test_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "facade.toml"
    config.write_text(
        '[server]\nport = 9000\nhost = "0.0.0.0"\nbase_url = "https://fhir.example.org/fhir"\n[search]\nmax_count = 200\ndefault_count = 10\n[legacy]\nmapping = "m.yaml"\n'
    )
    settings = load_settings(str(config), environ={})
    assert (settings.port, settings.host, settings.max_count) == (9000, "0.0.0.0", 200)
    assert settings.mapping == str(tmp_path / "m.yaml")  # relative to the file
    settings = load_settings(str(config), environ={"FHIR_FACADE_PORT": "9100"})
    assert settings.port == 9100
    settings = load_settings(str(config), {"port": 9200}, environ={"FHIR_FACADE_PORT": "9100"})
    assert settings.port == 9200
    settings = load_settings(environ={"FHIR_FACADE_CONFIG": str(config)})
    assert settings.port == 9000
    config.write_text("[bulk]\ncheckpoint_seconds = 2.5\n")
    assert load_settings(str(config), environ={}).bulk_checkpoint_seconds == 2.5
    assert load_settings(str(config), environ={"FHIR_FACADE_BULK_CHECKPOINT_SECONDS": "0"}).bulk_checkpoint_seconds == 0


@pytest.mark.parametrize(
    "text",
    [
        '[server]\nport = "x"\n',
        "[server]\nport = 70000\n",
        '[bulk]\ncheckpoint_seconds = "soon"\n',
        "[bulk]\ncheckpoint_seconds = -1\n",
        "[nope]\na = 1\n",
        "[server]\nprot = 1\n",
        "not toml [",
    ],
)
def test_bad_configuration_is_a_clear_error(tmp_path, text):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(str(config), environ={})


def test_demo_init_writes_a_database(tmp_path):
    out = tmp_path / "sub" / "demo.sqlite"
    result = CliRunner().invoke(main, ["demo", "init", "--patients", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists() and "pt_master=20" in result.output


def test_openapi_command_prints_the_document():
    result = CliRunner().invoke(main, ["openapi"])
    assert result.exit_code == 0 and '"/fhir/Patient"' in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("threads", ["4", "1"])
def test_serve_creates_the_demo_and_runs_under_gunicorn(tmp_path, threads):
    port = _free_port()
    env = dict(
        os.environ,
        FHIR_FACADE_DEMO_PATH=str(tmp_path / "demo.sqlite"),
        FHIR_FACADE_DEMO_PATIENTS="30",
        FHIR_FACADE_WORKERS="2",
        FHIR_FACADE_THREADS=threads,
        FHIR_FACADE_AUTH_MODE="off",
        FHIR_FACADE_STATE_URL=f"sqlite:///{tmp_path / 'state.sqlite'}",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "facade.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/fhir/Patient?_count=5", timeout=2) as response:
                    body = response.read()
                    server = response.headers.get("Server", "")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("server did not come up: " + process.stdout.read1().decode(errors="replace")[-2000:])
                time.sleep(0.2)
        assert b'"resourceType":"Bundle"' in body
        assert "gunicorn" in server.lower()  # not the Flask development server
        assert (tmp_path / "demo.sqlite").exists()
        # Keep-alive, whatever the thread count: a second request rides the same connection.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            for _ in range(2):
                connection.request("GET", "/fhir/Patient?_count=1")
                response = connection.getresponse()
                response.read()
                assert response.status == 200 and response.getheader("Connection", "").lower() != "close"
        finally:
            connection.close()
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)
        process.stdout.close()
