"""Typed legacy date columns on every engine: DATE, DATETIME/TIMESTAMP, epoch seconds in a REAL
column, year/month/day parts, and the first of several – as values, filters, sort keys and keyset
cursors. A value the column cannot decode is junk: absent (DataAbsentReason where FHIR requires the
element), ``:missing`` in searches, listed by ``mapping check`` with its ids – never a 500."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from facade.app import create_app
from facade.cli import main
from facade.config import Settings
from support.fhir_client import walk, walk_back
from support.scratch_db import reader_url, scratch_database

DDL = {
    "sqlite": "CREATE TABLE tp (id INTEGER PRIMARY KEY, guid VARCHAR(8), born DATE, seen DATETIME, epoch_s REAL, y INTEGER, m INTEGER, d INTEGER)",
    "postgresql": "CREATE TABLE tp (id INTEGER PRIMARY KEY, guid VARCHAR(8), born DATE, seen TIMESTAMP, epoch_s DOUBLE PRECISION, y INTEGER, m INTEGER, d INTEGER)",
    "mariadb": "CREATE TABLE tp (id INTEGER PRIMARY KEY, guid VARCHAR(8), born DATE, seen DATETIME, epoch_s DOUBLE, y INTEGER, m INTEGER, d INTEGER)",
}
INDEXES = ["CREATE INDEX tp_born ON tp (born)", "CREATE INDEX tp_seen ON tp (seen)", "CREATE INDEX tp_epoch ON tp (epoch_s)"]
EPOCH = datetime(1970, 1, 1)


def _row(i: int) -> dict:
    born = date(1935 + (i * 7) % 70, 1 + i % 12, 1 + (i * 5) % 28)
    if i in (6, 7):
        born = date(1961, 3, 3)  # a tie: the id decides
    seen = datetime(2019, 12, 31, 23, 0) + timedelta(days=i * 17, hours=i, minutes=i)
    moment = datetime(1955, 6, 1) + timedelta(days=i * 400, seconds=i * 61)  # before and after 1970
    parts = (1930 + i, None, None) if i % 3 == 0 else (1930 + i, 1 + i % 12, None) if i % 3 == 1 else (1930 + i, 1 + i % 12, 1 + i % 28)
    return {
        "id": i,
        "guid": f"p{i:02d}",
        "born": born,
        "seen": None if i == 5 else seen,  # no time: the date stands in (first-of)
        "epoch_s": (moment - EPOCH).total_seconds(),
        "y": parts[0],
        "m": parts[1],
        "d": parts[2],
    }


ROWS = [_row(i) for i in range(1, 26)]
NOTHING = {"id": 91, "guid": "p91", "born": None, "seen": None, "epoch_s": None, "y": None, "m": None, "d": None}
# What each engine lets a table hold that is no date (PostgreSQL's DATE and TIMESTAMP hold none).
JUNK = {
    "sqlite": {"id": 90, "guid": "p90", "born": 1577836800, "seen": "unknown", "epoch_s": "2020-01-01", "y": 1990, "m": 13, "d": None},
    "postgresql": {
        "id": 90,
        "guid": "p90",
        "born": date(1961, 3, 3),
        "seen": datetime(2020, 1, 1),
        "epoch_s": 1e20,
        "y": 1990,
        "m": 13,
        "d": None,
    },
    "mariadb": {
        "id": 90,
        "guid": "p90",
        "born": "0000-00-00",
        "seen": "2020-02-30 10:00:00",
        "epoch_s": 1e20,
        "y": 1990,
        "m": 13,
        "d": None,
    },
}
JUNK_COLUMNS = {"sqlite": {"born", "seen", "epoch_s", "parts"}, "postgresql": {"epoch_s", "parts"}, "mariadb": {"seen", "epoch_s", "parts"}}
# MariaDB compares a date it stored under ALLOW_INVALID_DATES ('2020-02-30') as a date: SQL finds it,
# while the resource leaves it out (no such day exists).
SEARCHED_AS_MISSING = {"sqlite": {"seen"}, "postgresql": set(), "mariadb": set()}

MAPPING = """\
mapping: typed
timezone: America/New_York
resources:
  Patient:
    search:
      birthdate: {type: date, sortable: true}
    sources:
      - table: tp
        alias: t
        id: "{t.guid}"
        resource:
          identifier: [{system: "urn:test:guid", value: {column: t.guid}}]
          birthDate: {column: t.born, as: date}
        search:
          birthdate: {column: t.born}
  Immunization:
    search:
      date: {type: date, sortable: true}
    sources:
      - table: tp
        alias: t
        id: "imm-{t.guid}"
        resource:
          status: completed
          vaccineCode: {text: Test vaccine}
          patient: {reference: {template: "Patient/{t.guid}"}}
          occurrenceDateTime: {column: t.seen, as: dateTime}
        search:
          date: {column: t.seen}
  Observation:
    search:
      date: {type: date, sortable: true}
      issued: {type: date, sortable: true}
      value-date: {type: date, sortable: true}
    sources:
      - table: tp
        alias: t
        id: "obs-{t.guid}"
        resource:
          status: final
          code: {text: Typed dates}
          subject: {reference: {template: "Patient/{t.guid}"}}
          effectiveDateTime: {first: [{column: t.seen, as: dateTime}, {column: t.born, as: date}]}
          issued: {column: t.epoch_s, as: instant}
          valueDateTime: {parts: {year: t.y, month: t.m, day: t.d}}
        search:
          date: {first: [{column: t.seen}, {column: t.born}]}
          issued: {column: t.epoch_s}
          value-date: {parts: {year: t.y, month: t.m, day: t.d}}
"""


def _stored(row: dict, engine_name: str) -> dict:
    """SQLite gets dates as the ISO text most tools write (its driver has no date type)."""
    if engine_name != "sqlite":
        return row
    return {k: v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else v for k, v in row.items()}


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def typed(request, tmp_path_factory):
    engine_name = request.param
    service = {"postgresql": "postgres_url", "mariadb": "mariadb_url"}.get(engine_name)
    url_fixture = request.getfixturevalue(service) if service else None
    tmp = tmp_path_factory.mktemp(f"typed-{engine_name}")
    with scratch_database(engine_name, tmp, url_fixture, prefix="typed") as url:
        writer = sa.create_engine(url, poolclass=sa.NullPool)
        with writer.begin() as conn:
            if engine_name == "mariadb":
                conn.exec_driver_sql("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
            conn.exec_driver_sql(DDL[engine_name])
            for statement in INDEXES:
                conn.exec_driver_sql(statement)
            table = sa.table("tp", *(sa.column(c) for c in ("id", "guid", "born", "seen", "epoch_s", "y", "m", "d")))
            conn.execute(table.insert(), [_stored(r, engine_name) for r in (*ROWS, JUNK[engine_name], NOTHING)])
        writer.dispose()
        mapping = tmp / "typed.yaml"
        mapping.write_text(MAPPING, encoding="utf-8")
        settings = Settings(
            auth_mode="off",
            database_url=reader_url(url),
            mapping=str(mapping),
            base_url="http://testserver/fhir",
            state_url=f"sqlite:///{tmp / 'state.sqlite'}",  # an audit database of its own
        )
        app = create_app(settings)
        yield engine_name, app.test_client(), reader_url(url), mapping
        app.extensions["fhir_facade"].adapter.engine.dispose()


def _walk(client, url: str) -> list[dict]:
    resources, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        bundle = response.get_json()
        resources += [entry["resource"] for entry in bundle.get("entry", [])]
        url = next((link["url"].replace("http://testserver", "") for link in bundle["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages > 2  # paging really happened
    return resources


def _valid(row: dict, column: str) -> bool:
    return row[column] is not None


SORTS = [
    ("Patient", "birthdate", lambda r: r["born"], "born"),
    ("Immunization", "date", lambda r: r["seen"], "seen"),
    ("Observation", "issued", lambda r: r["epoch_s"], "epoch_s"),
    ("Observation", "value-date", lambda r: (r["y"], r["m"] or 1, r["d"] or 1), "y"),
    ("Observation", "date", lambda r: r["seen"] or datetime(r["born"].year, r["born"].month, r["born"].day), "born"),
]


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize(("type_name", "param", "key", "column"), SORTS, ids=[f"{s[0]}-{s[1]}" for s in SORTS])
def test_paging_sorted_by_a_typed_column(typed, type_name, param, key, column, descending):
    """Every page after the first resumes after the last row's typed sort key, on every engine."""
    _, client, _, _ = typed
    sort = f"-{param}" if descending else param
    resources = _walk(client, f"/fhir/{type_name}?_sort={sort}&_count=4")
    ids = [r["id"] for r in resources]
    assert len(ids) == len(set(ids)) == len(ROWS) + 2  # every row once: junk and empty ones too
    by_id = {r["guid"]: r for r in ROWS}
    keys = [key(by_id[i.rpartition("-")[2]]) for i in ids if i.rpartition("-")[2] in by_id]
    keys = [k for k in keys if k is not None]  # NULL sorts below every value; its place is the engine's
    assert keys == sorted(keys, reverse=descending)
    walk_back(client, walk(client, f"/fhir/{type_name}?_sort={sort}&_count=4"))  # typed cursor values backwards too


def _ids(client, url: str) -> set[str]:
    response = client.get(url + ("&" if "?" in url else "?") + "_count=1000")
    assert response.status_code == 200, response.get_json()
    return {entry["resource"]["id"] for entry in response.get_json().get("entry", [])}


def _expect(prefix: str, rows: list[dict], test) -> set[str]:
    return {prefix + r["guid"] for r in rows if test(r)}


def test_searches_compare_typed_values(typed):
    _, client, _, _ = typed
    born = ROWS[10]["born"].isoformat()
    assert _ids(client, f"/fhir/Patient?birthdate={born}") == _expect("", ROWS, lambda r: r["born"].isoformat() == born)
    assert _ids(client, "/fhir/Patient?birthdate=ge1980-01-01") == _expect("", ROWS, lambda r: r["born"] >= date(1980, 1, 1))
    assert _ids(client, "/fhir/Patient?birthdate=lt1961-03-03") == _expect("", ROWS, lambda r: r["born"] < date(1961, 3, 3))
    # a DATETIME searched in the mapping's time zone (New York), to the second
    seen = ROWS[3]["seen"].replace(tzinfo=ZoneInfo("America/New_York"))
    assert _ids(client, f"/fhir/Immunization?date={quote(seen.isoformat())}") == {"imm-" + ROWS[3]["guid"]}
    assert _ids(client, f"/fhir/Immunization?date={quote(seen.astimezone(UTC).isoformat())}") == {"imm-" + ROWS[3]["guid"]}
    assert _ids(client, "/fhir/Immunization?date=ge2021-01-01") == _expect(
        "imm-", ROWS, lambda r: r["seen"] and r["seen"] >= datetime(2021, 1, 1)
    )
    # epoch seconds are UTC instants, before 1970 too
    assert _ids(client, "/fhir/Observation?issued=lt1970-01-01T00:00:00Z") == _expect("obs-", ROWS, lambda r: r["epoch_s"] < 0)
    # parts are searched at their own precision: a year-only 1933 is all of 1933
    assert _ids(client, "/fhir/Observation?value-date=1933") == {"obs-p03"}
    assert _ids(client, "/fhir/Observation?value-date=1933-05-01") == set()
    assert _ids(client, "/fhir/Observation?value-date=1935-06-06") == {"obs-p05"}
    assert _ids(client, "/fhir/Observation?value-date=1934-05") == {"obs-p04"}
    # first-of: the timestamp where there is one, else the date (p05 has no timestamp)
    p05 = ROWS[4]["born"].isoformat()
    assert "obs-p05" in _ids(client, f"/fhir/Observation?date={p05}")


def test_junk_values_are_absent_not_a_server_error(typed):
    engine_name, client, _, _ = typed
    junk_columns = JUNK_COLUMNS[engine_name]
    patient = client.get("/fhir/Patient/p90")
    assert patient.status_code == 200
    assert ("birthDate" in patient.get_json()) == (engine_name == "postgresql")  # junk on SQLite; a zero date on MariaDB
    immunization = client.get("/fhir/Immunization/imm-p90").get_json()
    if "seen" in junk_columns:  # occurrence[x] is required: the reason it is absent is given
        assert "occurrenceDateTime" not in immunization
        assert immunization["_occurrenceDateTime"]["extension"][0]["valueCode"] == "unknown"
    observation = client.get("/fhir/Observation/obs-p90").get_json()
    assert "issued" not in observation and "valueDateTime" not in observation
    nothing = client.get("/fhir/Immunization/imm-p91").get_json()
    assert nothing["_occurrenceDateTime"]["extension"][0]["url"].endswith("data-absent-reason")
    for url in ("/fhir/Observation?issued:missing=true", "/fhir/Observation?value-date:missing=true"):
        assert {"obs-p90", "obs-p91"} <= _ids(client, url)
    assert ("imm-p90" in _ids(client, "/fhir/Immunization?date:missing=true")) == ("seen" in SEARCHED_AS_MISSING[engine_name])
    for url in ("/fhir/Observation?issued=ge1900", "/fhir/Patient?birthdate=ge1900", "/fhir/Observation?value-date=ge1900"):
        assert client.get(url).status_code == 200


def test_resources_are_valid_fhir(typed):
    from fhir.resources.R4B import get_fhir_model_class

    _, client, _, _ = typed
    for type_name in ("Patient", "Immunization", "Observation"):
        for resource in _walk(client, f"/fhir/{type_name}?_count=10"):
            if "_occurrenceDateTime" in resource and "occurrenceDateTime" not in resource:
                # occurrence[x] present with only its DataAbsentReason, as FHIR's JSON allows; the
                # fhir.resources models insist on a value for a choice, so check the rest without it.
                assert resource["_occurrenceDateTime"]["extension"][0]["valueCode"] == "unknown"
                resource = {**resource, "occurrenceString": "unknown"}
                del resource["_occurrenceDateTime"]
            get_fhir_model_class(type_name).model_validate(resource)


def test_mapping_check_lists_junk_with_its_ids(typed):
    engine_name, _, url, mapping = typed
    run = CliRunner().invoke(main, ["mapping", "check", "--mapping", str(mapping), "--db", url, "--json"])
    import orjson

    report = orjson.loads(run.output)
    assert run.exit_code == 0 and report["ok"], run.output
    junk = {(item["resource"], j["value"].partition(":")[0]): j["examples"] for item in report["reconciliation"] for j in item["junk"]}
    expected = {
        "born": ("Patient", "t.born"),
        "seen": ("Immunization", "t.seen"),
        "epoch_s": ("Observation", "t.epoch_s"),
        "parts": ("Observation", "t.y"),
    }
    for column, where in expected.items():
        prefix = {"Patient": "", "Immunization": "imm-", "Observation": "obs-"}[where[0]]
        if column in JUNK_COLUMNS[engine_name]:
            assert junk.get(where) == [prefix + "p90"], (column, junk)
        else:
            assert where not in junk, (column, junk)


def test_every_engine_gives_the_same_resources(postgres_url, mariadb_url, tmp_path):
    """Valid typed values come out byte for byte the same from SQLite, PostgreSQL and MariaDB."""
    import orjson

    answers = []
    for engine_name, service in (("sqlite", None), ("postgresql", postgres_url), ("mariadb", mariadb_url)):
        with scratch_database(engine_name, tmp_path, service, prefix="typed_same") as url:
            writer = sa.create_engine(url, poolclass=sa.NullPool)
            with writer.begin() as conn:
                conn.exec_driver_sql(DDL[engine_name])
                table = sa.table("tp", *(sa.column(c) for c in ("id", "guid", "born", "seen", "epoch_s", "y", "m", "d")))
                conn.execute(table.insert(), [_stored(r, engine_name) for r in ROWS])
            writer.dispose()
            mapping = tmp_path / "typed.yaml"
            mapping.write_text(MAPPING, encoding="utf-8")
            app = create_app(
                Settings(auth_mode="off", database_url=reader_url(url), mapping=str(mapping), base_url="http://testserver/fhir")
            )
            client = app.test_client()
            answer = [
                orjson.dumps(client.get(f"/fhir/{t}?_sort={s}&_count=100").get_json()["entry"])
                for t, s in (("Patient", "birthdate"), ("Immunization", "-date"), ("Observation", "issued"), ("Observation", "-date"))
            ]
            app.extensions["fhir_facade"].adapter.engine.dispose()
            answers.append(answer)
    assert answers[0] == answers[1] == answers[2]


def test_row_filters_compare_typed_columns(typed, tmp_path):
    """`where:` filters against DATE and DATETIME columns and epoch numbers, on every engine."""
    from facade.search.parser import parse_search
    from legacy_adapters.engines import create_legacy_engine
    from legacy_adapters.mapping import yamlpos
    from legacy_adapters.mapping.loader import parse_mapping
    from legacy_adapters.sql_adapter import SqlAdapter

    engine_name, _, url, _ = typed
    text = MAPPING.replace(
        '        id: "{t.guid}"\n',
        '        id: "{t.guid}"\n'
        "        where:\n"
        '          - {column: t.born, at_least: "1961-03-03"}\n'
        '          - {column: t.seen, less_than: "2021-01-01 00:00:00"}\n'
        "          - {column: t.epoch_s, greater_than: 0}\n",
        1,
    )
    adapter = SqlAdapter(parse_mapping(yamlpos.load(text, "filters.yaml"), "filters.yaml"), create_legacy_engine(url))
    found = {r["id"] for r in adapter.search(parse_search("Patient", [("_count", "100")], adapter.search_params("Patient"))).resources}
    rows = [*ROWS, JUNK[engine_name]] if engine_name == "postgresql" else ROWS  # PostgreSQL's "junk" row has real dates
    expected = {
        r["guid"] for r in rows if r["born"] >= date(1961, 3, 3) and r["seen"] and r["seen"] < datetime(2021, 1, 1) and r["epoch_s"] > 0
    }
    assert found == expected and expected
    adapter.engine.dispose()
