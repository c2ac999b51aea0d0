"""Export jobs survive real life: a runner that dies mid-export is replaced by another, which
finishes with exact counts; leases keep two runners off one job (PostgreSQL: SKIP LOCKED); a
client past its limit of concurrent jobs gets 429."""

from __future__ import annotations

import os
import threading
import time

import pytest
import sqlalchemy as sa

from facade.bulk import engine as engine_module
from facade.bulk.jobs import JobStore
from facade.state import create_state_tables
from support.bulk_client import kick_off, local, resources, searched_ids, token, wait
from support.pg_demo import with_search_path
from support.smart_tokens import bearer
from tests.bulk.conftest import make_app


class WorkerDied(BaseException):
    """The process running the export is gone: nothing after this point runs."""


@pytest.fixture(scope="module")
def manual_app(bulk_demo, tmp_path_factory, mint):
    """No runner threads: the tests drive runners by hand (``run_one``)."""
    app = make_app(bulk_demo, tmp_path_factory, mint, bulk_threads=0, bulk_jobs_per_client=2, bulk_page_size=40)
    yield app
    app.extensions["fhir_facade"].close()


def _bulk(app):
    return app.extensions["fhir_facade"].bulk


def test_a_client_past_its_concurrent_jobs_gets_429(manual_app, mint):
    client = manual_app.test_client()
    busy = token(mint, client_id="busy")
    first, second = (kick_off(client, "$export", busy, _type="Patient") for _ in range(2))
    assert first.status_code == second.status_code == 202
    refused = kick_off(client, "$export", busy, _type="Patient")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["issue"][0]["code"] == "throttled"
    assert kick_off(client, "$export", token(mint, client_id="another"), _type="Patient").status_code == 202
    client.delete(local(first.headers["Content-Location"]), headers=bearer(busy))  # a cancelled job no longer counts
    assert kick_off(client, "$export", busy, _type="Patient").status_code == 202
    for job in _bulk(manual_app).jobs.all():
        _bulk(manual_app).jobs.cancel(job.id)


def test_polling_faster_than_retry_after_gets_429(manual_app, mint):
    """A status poll of a running job sooner than half its Retry-After after the last answered
    one is 429 with Retry-After; a client waiting what it is told is always answered."""
    client = manual_app.test_client()
    access = token(mint, client_id="eager")
    location = local(kick_off(client, "$export", access, _type="Patient").headers["Content-Location"])
    first = client.get(location, headers=bearer(access))
    assert first.status_code == 202
    eager = client.get(location, headers=bearer(access))
    assert eager.status_code == 429 and eager.headers["Retry-After"] == first.headers["Retry-After"] == "1"
    assert eager.get_json()["issue"][0]["code"] == "throttled"
    assert client.get(location, headers=bearer(token(mint, client_id="other"))).status_code == 404  # not 429: not theirs
    for _ in range(3):  # waiting the Retry-After, less some jitter, is always fine
        time.sleep(int(first.headers["Retry-After"]) * 0.6)
        assert client.get(location, headers=bearer(access)).status_code == 202
    _bulk(manual_app).jobs.cancel(local(location).rsplit("/", 1)[1])


@pytest.mark.parametrize(
    ("path", "params", "die_after"),
    [
        ("$export", {"_type": "Patient,Observation,Condition"}, 7),  # mid-Observation
        ("$export", {"_type": "Patient,Observation"}, 1),  # right after Patient's last page
        ("Group/women/$export", {"_type": "Observation,Patient"}, 4),  # between and within patient batches
    ],
)
def test_a_dead_runner_is_replaced_and_the_export_is_exact(manual_app, mint, monkeypatch, path, params, die_after):
    monkeypatch.setattr(engine_module, "PATIENT_BATCH", 7)  # several batches of the demo's women
    client = manual_app.test_client()
    access = token(mint, client_id=f"resumer-{die_after}")
    started = kick_off(client, path, access, **params)
    location = local(started.headers["Content-Location"])
    bulk = _bulk(manual_app)
    checkpoint = bulk.jobs.checkpoint
    calls = 0

    def dies(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls > die_after:  # the page's lines are on disk; its checkpoint never happens
            raise WorkerDied
        return checkpoint(*args, **kwargs)

    monkeypatch.setattr(bulk.jobs, "checkpoint", dies)
    with pytest.raises(WorkerDied):
        bulk.runner.run_one()
    monkeypatch.setattr(bulk.jobs, "checkpoint", checkpoint)
    assert client.get(location, headers=bearer(access)).status_code == 202
    assert not bulk.runner.run_one()  # its lease still holds: nobody else may take it yet
    job_id = location.rsplit("/", 1)[1]
    with bulk.jobs.engine.begin() as connection:  # the lease runs out
        connection.execute(sa.text("UPDATE bulk_job SET lease_until = 0 WHERE id = :id"), {"id": job_id})
    assert bulk.runner.run_one()
    manifest = wait(client, location, access).get_json()
    found = resources(client, manifest, access)
    women = searched_ids(client, "Patient", access, "gender=female") if path.startswith("Group") else None
    for resource_type, exported in found.items():
        ids = [r["id"] for r in exported]
        assert len(ids) == len(set(ids)), f"{resource_type}: duplicates after the takeover"
        if women is None:
            expected = searched_ids(client, resource_type, access)
        elif resource_type == "Patient":
            expected = women
        else:
            expected = [i for p in women for i in searched_ids(client, resource_type, access, f"patient={p}")]
        assert sorted(ids) == sorted(expected), f"{resource_type}: gaps after the takeover"
        assert sum(o["count"] for o in manifest["output"] if o["type"] == resource_type) == len(ids)


@pytest.mark.parametrize("seconds", [0, 60])
def test_checkpoints_come_after_each_page_or_at_most_once_per_interval(bulk_demo, tmp_path_factory, mint, monkeypatch, seconds):
    """Every page is checkpointed with no interval; with a long one only each type's last page is
    (a dead runner redoes at most the interval), and the export is the same."""
    app = make_app(bulk_demo, tmp_path_factory, mint, bulk_threads=0, bulk_page_size=40, bulk_checkpoint_seconds=seconds)
    client = app.test_client()
    access = token(mint, client_id=f"interval-{seconds}")
    location = local(kick_off(client, "$export", access, _type="Patient,Condition").headers["Content-Location"])
    bulk = _bulk(app)
    checkpoint = bulk.jobs.checkpoint
    labels: list[str] = []

    def counted(job, owner, position, outputs, progress):
        labels.append(progress)
        return checkpoint(job, owner, position, outputs, progress)

    monkeypatch.setattr(bulk.jobs, "checkpoint", counted)
    assert bulk.runner.run_one()
    manifest = wait(client, location, access).get_json()
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    pages = sum(-(-count // 40) for count in counts.values())
    assert pages > 2 * len(counts)  # several pages per type
    assert len(labels) == (pages if seconds == 0 else len(counts))
    for resource_type, exported in resources(client, manifest, access).items():
        assert sorted(r["id"] for r in exported) == sorted(searched_ids(client, resource_type, access))
    app.extensions["fhir_facade"].close()


def test_files_rotate_at_the_configured_size(bulk_demo, tmp_path_factory, mint):
    app = make_app(bulk_demo, tmp_path_factory, mint, bulk_file_bytes=64 * 1024, bulk_threads=0)
    client = app.test_client()
    access = token(mint)
    location = local(kick_off(client, "$export", access, _type="Observation").headers["Content-Location"])
    assert _bulk(app).runner.run_one()
    manifest = wait(client, location, access).get_json()
    files = [o for o in manifest["output"] if o["type"] == "Observation"]
    assert len(files) > 3
    sizes = [(_bulk(app).root / location.rsplit("/", 1)[1] / o["url"].rsplit("/", 1)[1]).stat().st_size for o in files]
    assert all(size <= 64 * 1024 + 4096 for size in sizes)  # closed at the first line past the size
    assert sum(o["count"] for o in files) == len(searched_ids(client, "Observation", access))
    app.extensions["fhir_facade"].close()


@pytest.fixture
def pg_state(postgres_url):
    """A fresh state schema on PostgreSQL, with a pool large enough for concurrent callers."""
    schema = f"fhir_facade_bulk_{os.getpid()}"
    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(with_search_path(postgres_url, schema), pool_size=10)
    try:
        create_state_tables(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _simultaneous_kick_offs(store: JobStore, client_id: str, callers: int, limit: int) -> list:
    """``callers`` threads asking for a job at the same instant; the jobs they got (None: refused)."""
    start = threading.Barrier(callers)
    got: list = []
    lock = threading.Lock()

    def kick_off() -> None:
        start.wait()
        job = store.create(client_id, "u", {"types": []}, {}, limit=limit)
        with lock:
            got.append(job)

    threads = [threading.Thread(target=kick_off) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


@pytest.mark.parametrize("state", ["postgresql", "sqlite"])
def test_simultaneous_kick_offs_never_pass_the_limit(state, request, tmp_path):
    """The limit is checked and the job inserted as one atomic step: simultaneous kick-offs of
    one client never get more than ``limit`` unfinished jobs between them."""
    if state == "postgresql":
        engine = request.getfixturevalue("pg_state")
    else:
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}", connect_args={"timeout": 15})
        create_state_tables(engine)
    store = JobStore(engine)
    for round_number in range(8):
        got = _simultaneous_kick_offs(store, f"client-{round_number}", callers=8, limit=2)
        assert sum(job is not None for job in got) == 2, f"round {round_number}"
        unfinished = [job for job in store.all(f"client-{round_number}") if job.status == "queued"]
        assert len(unfinished) == 2
    other = store.create("another", "u", {"types": []}, {}, limit=2)
    assert other is not None  # the lock is per client: others are not held up


def test_postgresql_leases_skip_locked_jobs(postgres_url):
    """Many runners claiming at once on PostgreSQL: each job is claimed exactly once."""
    schema = f"fhir_facade_bulk_{os.getpid()}"
    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(with_search_path(postgres_url, schema), pool_size=10)
    try:
        create_state_tables(engine)
        store = JobStore(engine)
        created = {store.create("c", "u", {"types": []}, {}, limit=100).id for _ in range(30)}
        claimed: list[str] = []
        lock = threading.Lock()

        def runner(number: int) -> None:
            while (job := store.claim(f"runner-{number}")) is not None:
                with lock:
                    claimed.append(job.id)

        threads = [threading.Thread(target=runner, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(claimed) == sorted(created)  # every job once: no job claimed twice, none left
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_a_failed_export_is_an_outcome_without_its_data(manual_app, mint, monkeypatch, caplog):
    client = manual_app.test_client()
    access = token(mint, client_id="unlucky")
    location = local(kick_off(client, "$export", access, _type="Patient").headers["Content-Location"])
    bulk = _bulk(manual_app)

    def broken(_request, _each):
        raise RuntimeError("row for SMITH, JOHN could not be read")

    monkeypatch.setattr(bulk.engine, "query", broken)
    assert bulk.runner.run_one(location.rsplit("/", 1)[1])
    failed = client.get(location, headers=bearer(access))
    assert failed.status_code == 500
    outcome = failed.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["diagnostics"] == "The export failed (RuntimeError)"
    assert "SMITH" not in failed.get_data(as_text=True) and "SMITH" not in caplog.text


def test_a_host_runs_at_most_its_threads_exports_at_once(bulk_demo, tmp_path_factory, mint):
    """Two processes' runners share the host's slots: while the one slot is held elsewhere,
    nothing starts; once it is free, the job runs."""
    from facade.bulk.runner import HostSlots

    app = make_app(bulk_demo, tmp_path_factory, mint, bulk_threads=1)
    client = app.test_client()
    access = token(mint)
    other_process = HostSlots(_bulk(app).root, 1)
    with other_process.slot() as held:
        assert held
        with HostSlots(_bulk(app).root, 1).slot() as second:
            assert not second  # the host's only slot is taken
        location = local(kick_off(client, "$export", access, _type="Patient").headers["Content-Location"])
        time.sleep(1.5)  # the runner polls every 0.5 s: it would have started by now
        waiting = client.get(location, headers=bearer(access))
        assert waiting.status_code == 202 and waiting.headers["X-Progress"] == "queued"
    assert wait(client, location, access).status_code == 200
    app.extensions["fhir_facade"].close()


def test_an_export_encodes_each_resource_as_it_is_built(manual_app, mint, monkeypatch):
    """The export reads its pages through ``search_each``: every resource goes to its NDJSON line
    when built, so a page of built resources never lives at once; the lines are those the
    search answers, in its order."""
    from legacy_adapters.sql_adapter import SqlAdapter

    client = manual_app.test_client()
    access = token(mint, client_id="streamer")
    adapter = manual_app.extensions["fhir_facade"].service.adapter
    expected = [r["id"] for r in adapter.search(_by_id("Observation", 1000)).resources]
    streamed: list[str] = []
    page = adapter.search_each(_by_id("Observation", 1000), lambda r: streamed.append(r["id"]))
    assert streamed == expected and page.resources == []
    pending = []  # built, not yet encoded: at most the one being encoded
    built = engine_module.orjson.dumps

    def encoded(value, *args, **kwargs):
        if isinstance(value, dict) and value in pending:
            pending.remove(value)
        return built(value, *args, **kwargs)

    searched = SqlAdapter.search_each

    def tracked(self, request, each):
        def track(resource):
            pending.append(resource)
            assert len(pending) == 1, "a built resource waits for the page"
            each(resource)

        return searched(self, request, track)

    monkeypatch.setattr(SqlAdapter, "search", lambda self, request: pytest.fail("the export read a whole page"))
    monkeypatch.setattr(SqlAdapter, "search_each", tracked)
    monkeypatch.setattr(engine_module.orjson, "dumps", encoded)
    location = local(kick_off(client, "$export", access, _type="Patient,Observation").headers["Content-Location"])
    assert _bulk(manual_app).runner.run_one()
    monkeypatch.undo()
    found = resources(client, wait(client, location, access).get_json(), access)
    every = [r["id"] for r in adapter.search(_by_id("Observation", 100_000)).resources]
    assert sorted(r["id"] for r in found["Observation"]) == sorted(every) and len(every) > 1000
    assert not pending


def _by_id(resource_type, count):
    from facade.search.params import SortKey
    from facade.search.request import SearchRequest

    return SearchRequest(resource_type, sort=(SortKey("_id"),), count=count)
