"""``fhir-facade export``: the same engine run locally into a directory, and the jobs' commands."""

from __future__ import annotations

import contextlib
from dataclasses import replace

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


def test_an_export_process_killed_mid_export_is_finished_by_another(tmp_path, bulk_demo):
    """SIGKILL the exporting process mid-file: another runner resumes the job from its last
    checkpoint, and every resource is in the files exactly once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import sqlalchemy as sa

    from facade.bulk.jobs import JobStore
    from support.bulk_client import run_export

    config = _config(tmp_path, bulk_demo)
    command = [
        sys.executable,
        "-m",
        "facade.cli",
        "export",
        "--config",
        config,
        "--type",
        "Patient,Observation,Condition",
        "--out",
        str(tmp_path / "out"),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "FHIR_FACADE_BULK_PAGE_SIZE": "20", "FHIR_FACADE_BULK_CHECKPOINT_SECONDS": "0"},
    )
    engine = sa.create_engine(f"sqlite:///{tmp_path}/state.sqlite")
    jobs = JobStore(engine)
    deadline = time.monotonic() + 120
    while True:  # kill it once it is well into Observation
        assert time.monotonic() < deadline and process.poll() is None, "the export ended before it could be killed"
        with contextlib.suppress(sa.exc.OperationalError):
            running = [j for j in jobs.all() if any(o["type"] == "Observation" and o["count"] > 200 for o in j.outputs)]
            if running:
                break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    [job] = running
    with engine.begin() as connection:  # its lease would run out in 30 s
        connection.execute(sa.text("UPDATE bulk_job SET lease_until = 0 WHERE id = :id"), {"id": job.id})
    settings = Settings(
        demo_path=bulk_demo,
        auth_mode="off",
        base_url="http://testserver/fhir",
        state_url=f"sqlite:///{tmp_path}/state.sqlite",
        bulk_dir=f"{tmp_path}/bulk",
        bulk_threads=0,
    )
    app = create_app(settings)
    bulk = app.extensions["fhir_facade"].bulk
    assert bulk.runner.run_one(job.id)
    finished = bulk.jobs.get(job.id)
    assert finished.status == "complete"
    resumed: dict[str, list[bytes]] = {}
    for output in finished.outputs:
        resumed.setdefault(output["type"], []).extend((bulk.root / job.id / output["name"]).read_bytes().splitlines())
    whole = run_export(
        replace(settings, state_url=f"sqlite:///{tmp_path}/other.sqlite", bulk_dir=f"{tmp_path}/other"),
        [("_type", "Patient,Observation,Condition")],
    )
    for resource_type, lines in whole.items():
        assert len(resumed[resource_type]) == len(set(resumed[resource_type])), f"{resource_type}: duplicates"
        assert sorted(resumed[resource_type]) == sorted(lines), f"{resource_type}: gaps"
    app.extensions["fhir_facade"].close()
    engine.dispose()


def test_a_mapping_group_that_is_not_a_patient_search_is_a_mapping_error(tmp_path):
    from pathlib import Path

    from legacy_adapters.mapping.errors import MappingError
    from legacy_adapters.mapping.loader import load_mapping

    demo = Path(__file__).resolve().parents[2] / "legacy_adapters" / "sources" / "demo" / "mapping.yaml"
    text = demo.read_text(encoding="utf-8").replace("members: gender=female", "members: shoe-size=42")
    broken = tmp_path / "mapping.yaml"
    broken.write_text(text, encoding="utf-8")
    try:
        load_mapping(broken)
    except MappingError as error:
        assert "group women" in str(error) and "shoe-size" in str(error) and "mapping.yaml:" in str(error)
    else:
        raise AssertionError("a group that is not a Patient search was accepted")


def test_a_local_export_a_server_took_first_is_waited_for(tmp_path, bulk_demo, monkeypatch):
    """A server sharing the state database may claim the job before this process does: the
    command waits for it to finish (the same files) instead of calling it failed."""
    import threading
    import time

    from facade.bulk.runner import ExportRunner

    real = ExportRunner.run_one
    taken: list[threading.Thread] = []

    def server_first(self, job_id=None):
        if not taken:  # the server's runner wins the claim and runs the job
            taken.append(threading.Thread(target=real, args=(self, job_id)))
            taken[0].start()
            deadline = time.monotonic() + 10
            while self.jobs.get(job_id).status == "queued" and time.monotonic() < deadline:
                time.sleep(0.01)
        return real(self, job_id)

    monkeypatch.setattr(ExportRunner, "run_one", server_first)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", "--config", _config(tmp_path, bulk_demo), "--type", "Patient", "--out", str(out)])
    taken[0].join(60)
    assert result.exit_code == 0, result.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    assert manifest["output"][0]["count"] == _search_count(bulk_demo, tmp_path, "Patient?")
