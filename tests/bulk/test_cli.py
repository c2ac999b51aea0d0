"""``fhir-facade export``: the same engine run locally into a directory, and the jobs' commands."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from facade.app import create_app
from facade.cli import main
from facade.config import Settings
from support.bulk_client import kick_off, local, token


def _config(tmp_path, bulk_demo) -> str:
    config = tmp_path / "facade.toml"
    config.write_text(
        f'[demo]\ndemo_path = "{bulk_demo}"\n[state]\nstate_url = "sqlite:///{tmp_path}/state.sqlite"\n'
        f'[bulk]\ndir = "{tmp_path}/bulk"\npage_size = 100\n',
        encoding="utf-8",
    )
    return str(config)


def _search_count(bulk_demo, tmp_path, query: str) -> int:
    app = create_app(
        Settings(demo_path=bulk_demo, base_url="http://testserver/fhir", auth_mode="off", state_url=f"sqlite:///{tmp_path}/s2.sqlite")
    )
    return app.test_client().get(f"/fhir/{query}&_summary=count").get_json()["total"]


def test_export_to_a_directory(tmp_path, bulk_demo):
    config = _config(tmp_path, bulk_demo)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--config",
            config,
            "--type",
            "Patient,Observation",
            "--type-filter",
            "Observation?category=laboratory",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    files = {o["type"]: o for o in manifest["output"]}
    assert set(files) == {"Patient", "Observation"}
    labs = (out / files["Observation"]["url"]).read_bytes().splitlines()
    assert len(labs) == files["Observation"]["count"] == _search_count(bulk_demo, tmp_path, "Observation?category=laboratory")
    assert len((out / files["Patient"]["url"]).read_bytes().splitlines()) == _search_count(bulk_demo, tmp_path, "Patient?")
    assert f"{files['Observation']['count']} " in result.output or "Observation=" in result.output
    listed = CliRunner().invoke(main, ["export", "--config", config, "list"])
    assert listed.exit_code == 0 and listed.output == ""  # the local job is done with once its files moved


def test_export_rejects_what_the_server_rejects(tmp_path, bulk_demo):
    result = CliRunner().invoke(main, ["export", "--config", _config(tmp_path, bulk_demo), "--type", "Nope", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "_type 'Nope' is not served here" in result.output


def test_list_status_cancel_the_servers_jobs(tmp_path, bulk_demo, mint):
    from support.smart_tokens import secured_app

    config = _config(tmp_path, bulk_demo)
    app = secured_app(bulk_demo, f"sqlite:///{tmp_path}/state.sqlite", mint, bulk_dir=str(tmp_path / "bulk"), bulk_threads=0)
    client = app.test_client()
    started = kick_off(client, "$export", token(mint, client_id="nightly-etl"), _type="Patient")
    job_id = local(started.headers["Content-Location"]).rsplit("/", 1)[1]
    listed = CliRunner().invoke(main, ["export", "--config", config, "list"])
    assert job_id in listed.output and "nightly-etl" in listed.output and "queued" in listed.output
    status = CliRunner().invoke(main, ["export", "--config", config, "status", job_id])
    assert status.exit_code == 0 and f"{job_id}: queued" in status.output
    cancelled = CliRunner().invoke(main, ["export", "--config", config, "cancel", job_id])
    assert cancelled.exit_code == 0
    assert (
        client.get(f"/fhir/$export-poll/{job_id}", headers={"Authorization": "Bearer " + token(mint, client_id="nightly-etl")}).status_code
        == 404
    )
    assert CliRunner().invoke(main, ["export", "--config", config, "status", job_id]).exit_code == 1
    app.extensions["fhir_facade"].close()
