"""The benchmark harness keeps working: ``python -m bench --quick`` end to end, on every engine.

This never judges speed. It checks that every workload produced figures for
both servers, and that the floor answers the same question as the façade
(same resource types, ids and entry counts, the same JSON), so the ratio means
something, on SQLite and on the demo loaded into PostgreSQL and MariaDB.
Needs wrk and, for those engines, the database servers: skipped when missing,
except with CI=true where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench import legacy
from bench.__main__ import QUICK_SIZE
from bench.data import ensure_database, workloads
from bench.floor import Floor
from bench.servers import facade_server, floor_server
from legacy_adapters.sources.demo.generate import generate

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = {
    "patient_read",
    "patient_search_name",
    "observation_search_lab",
    "observation_search_code",
    "observation_paging_walk",
    "patient_everything",
}


def _require(engine: str = "sqlite") -> None:
    """Skip without wrk or the engine's server; under CI=true that is a failure."""
    reason = None
    if shutil.which("wrk") is None:
        reason = "wrk is not installed (apt-get install -y wrk): the benchmark harness drives load with it"
    else:
        try:
            legacy.check_service(engine)
        except legacy.Unavailable as exc:
            reason = str(exc)
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the harness test must run, not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="module", params=legacy.ENGINES)
def quick(request, tmp_path_factory) -> dict:
    engine = request.param
    _require(engine)
    out = tmp_path_factory.mktemp("bench") / f"quick-{engine}.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--engine", engine, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"python -m bench --quick --engine {engine} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return json.loads(out.read_text(encoding="utf-8"))


def test_the_engine_is_reported(quick):
    engine = quick["meta"]["engine"]
    assert engine in legacy.ENGINES
    assert {r["engine"] for r in quick["results"]} == {engine}
    (label,) = quick["databases"].values()
    assert label.startswith(engine) or (engine == "sqlite" and label.endswith(".sqlite"))


def _result(quick: dict, name: str) -> dict:
    return next(r for r in quick["results"] if r["workload"] == name)


def test_every_workload_has_positive_figures_for_both_servers(quick):
    assert {r["workload"] for r in quick["results"]} == WORKLOADS
    for result in quick["results"]:
        assert result["size"] > 0
        for side in ("facade", "floor"):
            for figure in ("rps", "p50_ms", "p99_ms", "cpu_us"):  # cpu_us: the workers' CPU per request
                assert result[side][figure] > 0, (result["workload"], side, figure)
        assert result["ratio"]["mean"] > 0 and result["p99_ratio"] > 0


@pytest.mark.parametrize(
    "name, resource_type",
    [
        ("patient_read", "Patient"),
        ("observation_search_lab", "Bundle"),
        ("observation_search_code", "Bundle"),
        ("patient_everything", "Bundle"),
    ],
)
def test_the_floor_answers_the_same_question(quick, name, resource_type):
    samples = _result(quick, name)["parity"]["samples"]
    assert samples
    for sample in samples:
        facade, floor = sample["facade"], sample["floor"]
        assert facade["status"] == floor["status"] == 200, sample["path"]
        assert facade["resourceType"] == floor["resourceType"] == resource_type
        assert facade["ids"] == floor["ids"] and facade["ids"], sample["path"]
        assert facade["entries"] == floor["entries"]


def test_everything_page_holds_the_patient_and_their_record(quick):
    """The $everything page is full (the chronic patient has more than a page) and starts with the Patient."""
    (sample, *_) = _result(quick, "patient_everything")["parity"]["samples"]
    assert sample["facade"]["entries"] == 100
    assert sample["facade"]["ids"][0] == sample["path"].split("/")[3]


def test_responses_are_about_the_same_size(quick):
    for result in quick["results"]:
        assert result["parity"]["bytes_within_20pct"], (result["workload"], result["bytes"])


def test_the_floor_builds_the_same_resources(quick):
    """Not only the same ids: the same JSON, so the floor does all the work the façade does
    (terminology displays, UCUM units, the same date conversions)."""
    for result in quick["results"]:
        for sample in result["parity"]["samples"]:
            assert sample["same_json"], (result["workload"], sample["path"])


def test_the_paging_walks_see_the_same_observations(quick):
    walk = _result(quick, "observation_paging_walk")
    assert walk["same_walk"]
    assert walk["facade"]["rounds"][0]["walk"]["pages"] > 1


def test_one_workload_with_the_commit_audit_delivery(tmp_path):
    """``--workloads`` runs only those named; ``--audit-delivery commit`` reaches the façade."""
    _require()
    out = tmp_path / "one.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--workloads", "patient_read", "--audit-delivery", "commit", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [r["workload"] for r in document["results"]] == ["patient_read"]
    assert document["meta"]["audit_delivery"] == "commit"
    (audit,) = document["audit"].values()
    assert audit["intact"] and audit["records"] >= document["results"][0]["facade"]["rps"]  # one per request, at least
    state = ROOT / "bench" / ".data" / "logs" / str(document["meta"]["sizes"][0]) / "state.sqlite"  # bench.data.DATA_DIR
    assert state.exists() and not state.with_name("state.sqlite-audit-spool").exists()  # committed, never spooled


def _bench_names(engine: str) -> set[str]:
    admin = sa.create_engine(legacy.service_url(engine), poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            query = "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'bench_demo_%'"
            return set(conn.execute(sa.text(query)).scalars())
    finally:
        admin.dispose()


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_a_loaded_demo_is_dropped_unless_kept_and_a_kept_one_is_reused(engine, capsys):
    _require(engine)
    with legacy.database(engine, 20, seed=7) as db:
        name = db.label.rpartition(" ")[2]
        assert name == legacy.database_name(20, 7, keep=False) and name in _bench_names(engine)
        with sa.create_engine(db.url, poolclass=sa.NullPool).connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM pt_master")).scalar() >= 20
    assert name not in _bench_names(engine)  # dropped at the end of the run
    kept = legacy.database_name(20, 7, keep=True)
    try:
        with legacy.database(engine, 20, seed=7, keep=True) as first:
            assert first.label.endswith(kept)
        assert "loading the demo" in capsys.readouterr().out
        with legacy.database(engine, 20, seed=7, keep=True) as again:
            assert again.url == first.url
        assert "reusing" in capsys.readouterr().out  # the second run found it loaded
        assert kept in _bench_names(engine)
    finally:
        legacy.drop(engine, kept)


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_the_floor_reads_vital_signs_in_batches_as_sqlite_reads_them_whole(engine, tmp_path):
    """On a server the floor reads vital-signs rows a page at a time (its drivers buffer a whole
    result); whatever the batch, it yields what the SQLite floor yields reading lazily."""
    _require(engine)
    path = tmp_path / "demo.sqlite"
    generate(str(path), patients=20, seed=7)
    on_file = Floor({"path": str(path)})
    (patient,) = on_file.execute(
        "SELECT p.pt_guid FROM pt_master p JOIN vitals v ON v.pt_seq = p.pt_seq GROUP BY p.pt_guid ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()
    branches = frozenset(range(1, 9))

    def stream(floor: Floor, cursor: tuple | None, batch: int) -> list:
        return [(key.position(), resource) for key, resource in floor._vitals(patient, branches, cursor, batch)]

    expected = stream(on_file, None, 1)
    assert len(expected) > 20
    middle = tuple(expected[len(expected) // 2][0])
    with legacy.database(engine, 20, seed=7) as db:
        on_server = Floor(legacy.driver_args(db.url))
        for batch in (1, 3, 51):
            assert stream(on_server, None, batch) == expected
            assert stream(on_server, middle, batch) == expected[len(expected) // 2 + 1 :]


def test_threads_reach_both_servers(tmp_path):
    """``--threads`` sets the gthread threads of the façade and of the floor alike."""
    path = tmp_path / "demo.sqlite"
    generate(str(path), patients=5)
    db = legacy.LegacyDatabase("sqlite", f"sqlite:///{path}", path.name, path)
    facade = facade_server(db, 1, tmp_path / "logs", threads=2)
    floor = floor_server(db, 1, tmp_path / "logs", threads=2)
    assert facade.env["FHIR_FACADE_THREADS"] == "2"
    assert floor.argv[floor.argv.index("--threads") + 1] == "2"
    assert "FHIR_FACADE_THREADS" not in facade_server(db, 1, tmp_path / "default").env  # the façade's default


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_roundtrips_counts_the_messages_each_server_sends(engine):
    """``python -m bench.roundtrips``: one statement per floor read; the façade sends its statement
    alone (autocommit, no ping of a connection in use), one per type on a ``$everything`` page."""
    from bench import roundtrips

    _require(engine)
    figures = {f["workload"]: f for f in roundtrips.count(engine, 20, samples=2, show=True)}
    assert set(figures) == set(roundtrips.WORKLOADS)
    read = figures["patient_read"]
    assert read["floor"] == 1 and b"SELECT p.pt_guid" in read["floor_messages"][0]
    assert figures["patient_everything"]["floor"] == 3  # Patient, allergies, conditions
    for name, f in figures.items():
        assert f["facade"] == (3 if name == "patient_everything" else 1), f


@pytest.mark.parametrize(
    "printed", ["4.0-5.6", " 4.0 - 5.6 ", "4 to 5.6", "70-99", "<200", "<=200", ">60", ">=60", "≤5", "10-5", "Neg", "SEE REPORT", "+3-7"]
)
@pytest.mark.parametrize("unit", ["mg/dL", "no such unit", None])
def test_the_floors_reference_ranges_read_printed_text_as_the_mapping_does(printed, unit):
    """The floor parses printed ranges by hand; the bulk and REST parity samples hold only the
    demo's few range shapes, so every shape the rule knows is compared here."""
    from bench import floor_fhir
    from legacy_adapters.mapping.ranges import parse_range

    expected = parse_range(printed, unit)
    for bound in ("low", "high"):
        if bound in expected and unit in floor_fhir.LAB_UCUM:
            expected[bound] |= {"system": floor_fhir.UCUM, "code": floor_fhir.LAB_UCUM[unit]}
    assert floor_fhir.reference_range(printed, unit) == expected
    assert json.dumps(floor_fhir.reference_range(printed, unit)) == json.dumps(expected)  # same key order, 4.0 stays 4.0


def _printed_table(args: list[str], header: str, width: int) -> dict[str, list[str]]:
    """Run ``python -m <args>`` and read the table it prints: each row's title and its figures."""
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))  # after any "generating…" lines
    return {line[:width].strip(): line[width:].split() for line in lines[start + 1 :]}


def test_cpu_per_request_is_measured_in_process_for_every_workload():
    """``python -m bench.cpu``: both applications answer every workload (a refusal or error stops
    it), and each row gives the façade's and the floor's CPU per request."""
    rows = _printed_table(["bench.cpu", "--size", str(QUICK_SIZE), "--requests", "5"], "workload", 40)
    titles = {w.title for w in workloads(f"sqlite:///{ensure_database(QUICK_SIZE)}")}
    assert set(rows) == titles
    for ours, theirs, ratio in rows.values():
        assert float(ours) > 0 and float(theirs) > 0 and float(ratio) > 0


def test_the_floor_builds_social_history_and_screening_as_the_facade_does(tmp_path):
    """Occupation, pregnancy and the Hunger Vital Sign: the floor's walks of a patient's
    Observations (every category, and those categories alone, over small pages) hold the same
    resources, in the same order, as the façade's, JSON for JSON (no wrk or server needed)."""
    from urllib.parse import parse_qsl, urlsplit

    from facade.app import create_app
    from facade.config import Settings

    path = tmp_path / "demo.sqlite"
    generate(str(path), patients=60, seed=7)
    app = create_app(Settings(auth_mode="off", database_url=f"sqlite:///file:{path}?mode=ro&uri=true", base_url="http://testserver/fhir"))
    client, floor = app.test_client(), Floor({"path": str(path)})

    def walk(url: str, page) -> list[bytes]:
        out = []
        while url:
            bundle = page(url)
            out += [json.dumps(e["resource"]).encode() for e in bundle.get("entry", [])]
            url = next((link["url"].removeprefix("http://testserver") for link in bundle["link"] if link["relation"] == "next"), None)
        return out

    def floor_page(url: str) -> dict:
        parts = urlsplit(url)
        status, bundle = floor.route(parts.path, dict(parse_qsl(parts.query)), "http://testserver/fhir")
        assert status == "200 OK", bundle
        return bundle

    (patients,) = zip(
        *floor.execute(
            "SELECT DISTINCT p.pt_guid FROM pt_master p WHERE p.del_flg != 'Y' AND (EXISTS (SELECT 1 FROM emp_hx j WHERE j.pt_seq = p.pt_seq)"
            " OR EXISTS (SELECT 1 FROM ob_hx b WHERE b.pt_seq = p.pt_seq) OR EXISTS (SELECT 1 FROM hvs_form f WHERE f.pt_seq = p.pt_seq))"
            " ORDER BY p.pt_guid LIMIT 12"
        ).fetchall()
    )
    profiles: set[str] = set()
    for patient in patients:
        for search, count in (("", 20), ("&category=social-history", 2), ("&category=sdoh", 2), ("&code=http://loinc.org|82810-3", 1)):
            url = f"/fhir/Observation?patient={patient}{search}&_count={count}"
            facade = walk(url, lambda u: client.get(u).get_json())
            assert facade == walk(url, floor_page), url
            profiles |= {json.loads(r)["meta"]["profile"][0].rpartition("/")[2] for r in facade}
    assert {"us-core-observation-occupation", "us-core-observation-pregnancystatus", "us-core-observation-pregnancyintent"} <= profiles
    assert "us-core-observation-screening-assessment" in profiles


def test_the_floor_in_flask_answers_every_workload_as_the_floor_does():
    """The ceiling's subject (``bench.floor.in_flask``) adds Flask and nothing else: the same status
    and the same bytes as the plain floor for every workload's URLs (no wrk or server needed)."""
    from werkzeug.test import Client

    from bench.floor import in_flask

    db = ensure_database(QUICK_SIZE)
    floor = Floor({"path": str(db)})
    plain, flask_app = Client(floor), in_flask(Floor({"path": str(db)})).test_client()
    for workload in workloads(f"sqlite:///{db}"):
        for path in workload.paths[:3]:
            expected, got = plain.get(path), flask_app.get(path)
            assert got.status_code == expected.status_code == 200, (path, got.status_code)
            assert got.data == expected.data, path
            assert got.content_type == expected.content_type
    refused = flask_app.get("/fhir/Patient?_count=5")  # a question the floor refuses: its own 400, through Flask
    assert refused.status_code == 400 and refused.data == plain.get("/fhir/Patient?_count=5").data


def test_the_ceiling_run_measures_the_floor_in_flask_in_the_facades_place(tmp_path):
    """``--ceiling``: the figures beside the floor's are the floor inside Flask (no façade, no audit)."""
    _require()
    out = tmp_path / "ceiling.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--ceiling", "--workloads", "patient_read", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Flask floor pid" in done.stdout and "façade pid" not in done.stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["meta"]["subject"] == "Flask floor"
    (result,) = document["results"]
    assert result["facade"]["rps"] > 0 and result["floor"]["rps"] > 0 and result["parity"]["samples"][0]["same_json"]
    assert list(document["audit"].values()) == [None]  # nothing audited: the façade did not run


def test_first_searches_are_measured_against_the_same_searches_again():
    """``python -m bench.first_search``: every search answers for each patient (a refusal or error
    stops it), and each row gives the CPU of a patient's first search and of the same again."""
    from bench.first_search import SEARCHES

    rows = _printed_table(["bench.first_search", "--size", str(QUICK_SIZE), "--patients", "4"], "search", 42)
    assert set(rows) == {title for title, _ in SEARCHES}
    for first, again, ratio in rows.values():
        assert float(first) > 0 and float(again) > 0 and float(ratio) > 0
