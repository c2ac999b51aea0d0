"""SQL does the work: one statement per page, whatever the page size, and branches pruned at compile time."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
import sqlalchemy as sa

from facade.search import parse_search
from facade.search.params import STORAGE_ORDER
from support.sql_statements import count_statements


@pytest.fixture(scope="module")
def adapter(app):
    adapter = app.extensions["fhir_facade"].adapter
    adapter.bound()  # binding (reflection) is once per process, not per request
    return adapter


@pytest.mark.parametrize("count", [1, 50, 1000])
@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient?_count={count}",
        "/fhir/Patient?name=a&_count={count}",
        "/fhir/Observation?category=vital-signs&_count={count}",
        "/fhir/Observation?date=ge2020&_sort=date&_count={count}",
    ],
)
def test_one_statement_per_page(client, adapter, path, count):
    with count_statements(adapter.engine) as statements:
        response = client.get(path.format(count=count))
    assert response.status_code == 200
    assert len(statements) == 1, statements


def test_total_adds_exactly_one_count_statement(client, adapter):
    with count_statements(adapter.engine) as statements:
        bundle = client.get("/fhir/Observation?category=laboratory&_total=accurate&_count=10").get_json()
    assert len(statements) == 2
    assert bundle["total"] > 10


def test_read_is_one_statement(client, adapter):
    oid = client.get("/fhir/Observation?code=8867-4&_count=1").get_json()["entry"][0]["resource"]["id"]
    with count_statements(adapter.engine) as statements:
        assert client.get(f"/fhir/Observation/{oid}").status_code == 200
    assert len(statements) == 1


def _compiled(adapter, resource_type: str, pairs: list[tuple[str, str]]) -> str:
    from legacy_adapters.mapping.compiler import compile_page

    request = parse_search(resource_type, pairs, adapter.search_params(resource_type))
    query = compile_page(adapter.bound()[resource_type], request, 21)
    return "" if query.statement is None else str(query.statement.compile(adapter.engine))


def test_fixed_codes_prune_branches_before_sql(adapter):
    # A vital-sign LOINC code keeps one variant of the wide vitals row; no lab test carries it
    # in the lab code table, so the lab branch goes too.
    sql = _compiled(adapter, "Observation", [("code", "http://loinc.org|8867-4")])
    assert "UNION" not in sql and "lab_result" not in sql and sql.count("FROM vitals") == 1
    # A lab LOINC code keeps only the lab branch.
    sql = _compiled(adapter, "Observation", [("code", "http://loinc.org|2345-7")])
    assert "UNION" not in sql and "vitals" not in sql
    # A code that no source can hold issues no SQL at all.
    assert _compiled(adapter, "Observation", [("code", "http://snomed.info/sct|123")]) == ""


def test_values_are_bound_parameters_never_inlined(adapter):
    sql = _compiled(adapter, "Patient", [("family", "O'BRIEN' OR 1=1 --")])
    assert "BRIEN" not in sql and "1=1" not in sql


def test_code_table_lookups_filter_the_local_indexed_column(adapter, raw_db):
    # LOINC 2345-7 is resolved by the code table to the local codes whose row carries it, so
    # the database filters lab_result.test_cd (indexed with the date), not the code table.
    from legacy_adapters.mapping.compiler import compile_page

    request = parse_search("Observation", [("code", "http://loinc.org|2345-7")], adapter.search_params("Observation"))
    statement = compile_page(adapter.bound()["Observation"], request, 21).statement
    where = str(statement.whereclause.compile(adapter.engine, compile_kwargs={"literal_binds": True}))
    local = [row[0] for row in raw_db.execute("SELECT test_cd FROM lab_test_cd WHERE loinc_cd = '2345-7'")]
    assert local and "loinc_cd" not in where
    assert all(f"'{code}'" in where for code in local)


def test_a_paging_walk_reuses_one_statement(client, adapter):
    # Every page after the first differs only in bound cursor values: one plan serves them all.
    before = set(adapter._page_plans.keys())  # keys, not a count: older plans may expire meanwhile
    url, pages = "/fhir/Patient?gender=female&_count=25", 0
    while url and pages < 6:
        bundle = client.get(url).get_json()
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages == 6
    assert len(set(adapter._page_plans.keys()) - before) == 2  # the first page, and the rest


def test_code_table_edits_show_up_without_a_restart(tmp_path):
    import time

    from facade.app import create_app
    from facade.config import Settings
    from legacy_adapters.sources.demo.generate import generate
    from legacy_adapters.sql_adapter import PLAN_SECONDS

    path = tmp_path / "demo.sqlite"
    generate(str(path), patients=40)
    # The demo translates lab codes with a crosswalk file; here the LOINC search reads the legacy
    # code table instead (`lookup:`), as a mapping does when the legacy keeps the LOINC codes itself.
    from pathlib import Path

    import yaml

    from legacy_adapters.sources.demo import __file__ as demo_package

    mapping = yaml.safe_load((Path(demo_package).parent / "mapping.yaml").read_text(encoding="utf-8"))
    mapping["resources"]["Observation"]["sources"][0]["search"]["code"] = {
        "codings": [
            {"system": "http://loinc.org", "column": "r.test_cd", "lookup": {"table": "lab_test_cd", "key": "test_cd", "code": "loinc_cd"}},
            {"system": "urn:fhir-facade:demo:lab-test", "column": "r.test_cd"},
        ]
    }
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    app = create_app(Settings(auth_mode="off", demo_path=str(path), mapping=str(tmp_path / "mapping.yaml")))
    client, adapter = app.test_client(), app.extensions["fhir_facade"].adapter
    url = "/fhir/Observation?code=http://loinc.org|4548-4&_count=1000"  # HbA1c
    before = len(client.get(url).get_json().get("entry", []))

    writer = sa.create_engine(f"sqlite:///{path}")  # the legacy system itself edits its code table
    with writer.begin() as connection:
        connection.exec_driver_sql("UPDATE lab_test_cd SET loinc_cd = '4548-4' WHERE test_cd = 'GLU'")
    writer.dispose()
    assert len(client.get(url).get_json().get("entry", [])) == before  # cached until they expire

    later = time.monotonic() + PLAN_SECONDS + 1
    adapter._page_plans.expire(later)  # a minute passes for the plans…
    for resource in adapter.bound().values():  # …and the code tables' refresh period
        for branch in resource.branches:
            for binding in branch.bindings.values():
                for coding in getattr(binding, "codings", []):
                    if getattr(coding, "lookup", None) is not None:
                        coding.lookup._keys.expire(time.monotonic() + coding.lookup.refresh_seconds + 1)
    after = client.get(url).get_json().get("entry", [])
    assert len(after) > before
    assert {e["resource"]["code"]["coding"][-1]["code"] for e in after} == {"HGBA1C", "GLU"}  # the local codes


@contextlib.contextmanager
def capture_with_parameters(engine: sa.Engine):
    seen: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, tuple(parameters)))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Observation?patient={guid}&category=laboratory&_count=50",
        "/fhir/Patient?_id={guid}",
        "/fhir/Patient?identifier={mrn}",
    ],
)
def test_indexed_searches_reach_the_index(client, adapter, raw_db, path):
    """The planner must see bare ``column = ?`` predicates: a wrapped comparison (say ``(x = ?) = 1``)
    hides the column and turns an index lookup into a scan of the whole table."""
    guid, mrn = raw_db.execute("SELECT pt_guid, mrn FROM pt_master WHERE del_flg <> 'Y' LIMIT 1").fetchone()
    with capture_with_parameters(adapter.engine) as seen:
        assert client.get(path.format(guid=guid, mrn=mrn)).status_code == 200
    [(statement, parameters)] = [s for s in seen if s[0].lstrip().upper().startswith(("SELECT", "WITH"))]
    plan = " | ".join(row[-1] for row in raw_db.execute("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "SCAN p " not in plan + " " and "SCAN p|" not in plan, plan
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan


def test_variants_of_one_table_are_read_in_one_pass(adapter, raw_db):
    """A patient's Observations: the vitals table once (joined to the variants' numbers), not once
    per vital sign, where a rarely filled variant read every row of the patient to find none."""
    guid = raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' LIMIT 1").fetchone()[0]
    sql = _compiled(adapter, "Observation", [("patient", guid)])
    assert sql.count("FROM vitals") == 1, sql
    assert sql.count("FROM lab_result") == 1


def test_a_later_page_in_ascending_order_seeks_the_index_to_its_cursor(client, adapter, raw_db):
    """Rows after the cursor are never before it on the first sort key; said on its own, the
    planner seeks to the cursor instead of reading the patient's rows from the start on every page."""
    guid = raw_db.execute(
        "SELECT p.pt_guid FROM pt_master p JOIN lab_result r ON r.pt_seq = p.pt_seq WHERE p.del_flg <> 'Y' "
        "GROUP BY p.pt_guid ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()[0]
    first = client.get(f"/fhir/Observation?patient={guid}&category=laboratory&_sort=date&_count=5").get_json()
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    with capture_with_parameters(adapter.engine) as seen:
        assert client.get("/fhir" + following.split("/fhir", 1)[1]).status_code == 200
    [(statement, parameters)] = [s for s in seen if s[0].lstrip().upper().startswith("SELECT")]
    plan = " | ".join(row[-1] for row in raw_db.execute("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "ix_lab_result_pt_dt (pt_seq=? AND collect_dttm>?)" in plan, plan


def test_pages_sorted_by_id_start_at_the_cursor_in_the_index(client, adapter, raw_db):
    """Sorted by ``_id`` (how exports page), a later page is ``id > ?`` on the id's index: a tie
    alternative on the same column made SQLite scan the index from its start on every page."""
    first = client.get("/fhir/Observation?category=laboratory&_sort=_id&_count=20").get_json()
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    with capture_with_parameters(adapter.engine) as seen:
        second = client.get("/fhir" + following.split("/fhir", 1)[1]).get_json()
    ids = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert ids == sorted(ids) and len(set(ids)) == 40
    [(statement, parameters)] = [s for s in seen if s[0].lstrip().upper().startswith("SELECT")]
    plan = " | ".join(row[-1] for row in raw_db.execute("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "SEARCH r USING INDEX ux_lab_result_guid (res_guid>?)" in plan, plan


def _walk(adapter, request) -> list[str]:
    ids = []
    while True:
        page = adapter.search(request)
        ids += [r["id"] for r in page.resources]
        if page.next_cursor is None:
            return ids
        request = replace(request, cursor=page.next_cursor)


def test_exports_walk_each_table_in_its_primary_key_order(adapter, raw_db):
    """Storage order (how exports page): each source's primary key, read from the cursor on in the
    table's own order, where a random id (a guid) made every row of a large table a page read of
    its own. A walk of every Observation (several tables, variants of one table) misses and
    repeats nothing."""
    params = adapter.search_params("Observation")
    labs = replace(parse_search("Observation", [("category", "laboratory"), ("_count", "20")], params), sort=(STORAGE_ORDER,))
    first = adapter.search(labs)
    with capture_with_parameters(adapter.engine) as seen:
        second = adapter.search(replace(labs, cursor=first.next_cursor))
    guids = [r["id"] for r in first.resources + second.resources]
    keys = dict(
        raw_db.execute(f"SELECT res_guid, res_id FROM lab_result WHERE res_guid IN ({','.join('?' * len(guids))})", guids).fetchall()
    )
    assert [keys[g] for g in guids] == sorted(keys.values()) and len(keys) == 40
    [(statement, parameters)] = [s for s in seen if s[0].lstrip().upper().startswith("SELECT")]
    plan = " | ".join(row[-1] for row in raw_db.execute("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "SEARCH r USING INTEGER PRIMARY KEY (rowid>?)" in plan and "TEMP B-TREE" not in plan, plan
    # Told that few rows follow the cursor, SQLite no longer builds a Bloom filter over every
    # patient to join a page's thousand rows, on every page (a cost that grows with the database).
    assert "BLOOM FILTER" not in plan, plan

    everything = parse_search("Observation", [("_count", "500")], params)
    stored = _walk(adapter, replace(everything, sort=(STORAGE_ORDER,)))
    assert len(stored) == len(set(stored)) and sorted(stored) == sorted(_walk(adapter, everything))
    # Variants of one table (vital signs) are each a seek on its key, a page long: read in one
    # pass joined to their numbers, SQLite sorted every row after the cursor, on every page.
    walk = replace(everything, sort=(STORAGE_ORDER,))
    with capture_with_parameters(adapter.engine) as seen:
        adapter.search(replace(walk, cursor=adapter.search(walk).next_cursor))
    (statement, parameters) = [s for s in seen if s[0].lstrip().upper().startswith("SELECT")][-1]
    plan = [row[-1] for row in raw_db.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert plan.count("USE TEMP B-TREE FOR ORDER BY") == 1 and plan[-1] == "USE TEMP B-TREE FOR ORDER BY", plan  # the page's own


def test_cached_plans_keep_their_prepared_sql_not_the_expression_tree(adapter, client):
    """Hundreds of plans stay cached per worker; a page's expression tree is tens of KB."""
    assert client.get("/fhir/Observation?category=vital-signs&_count=5").status_code == 200
    assert client.get("/fhir/Patient/does-not-exist").status_code == 404
    plans = [*adapter._page_plans.values(), *adapter._read_plans.values()]
    assert plans and all(query.statement is None for query, _ in plans)
    assert all(prepared.sql.lstrip().upper().startswith("SELECT") for _, prepared in plans if prepared is not None)


def test_another_patients_same_search_compiles_no_sql(client, adapter, raw_db):
    """Each patient's first search of a kind is a new plan, but the same SQL with another id: its
    SQL is compiled once per shape, and each plan answers for its own patient."""
    from legacy_adapters import prepared

    guids = [row[0] for row in raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' LIMIT 3")]
    compiled: list[object] = []
    original = prepared.Shape.__init__

    def counting(self, *args, **kwargs):
        compiled.append(args[0])
        original(self, *args, **kwargs)

    prepared.Shape.__init__ = counting
    try:
        bundles = {g: client.get(f"/fhir/Observation?patient={g}&category=vital-signs&_count=7").get_json() for g in guids}
    finally:
        prepared.Shape.__init__ = original
    assert len(compiled) <= 1  # none when an earlier test made the shape
    for guid, bundle in bundles.items():
        assert bundle["entry"], guid
        assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {f"Patient/{guid}"}


def test_variants_share_the_filters_the_pairwise_comparison_found(adapter, raw_db, monkeypatch):
    """The filters every variant of one table shares (the patient, the deleted flag) are found by
    their SQL and values; the statement is the one the pairwise comparison of expressions built."""
    from sqlalchemy.sql.elements import ClauseElement

    from legacy_adapters.mapping import compiler

    comparisons = []
    compare = ClauseElement.compare
    monkeypatch.setattr(ClauseElement, "compare", lambda self, other, **kw: comparisons.append(1) or compare(self, other, **kw))
    guid = raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' LIMIT 1").fetchone()[0]
    for pairs in ([("patient", guid)], [("patient", guid), ("category", "vital-signs"), ("date", "ge2019")]):
        comparisons.clear()
        keyed, by_key = _compiled(adapter, "Observation", pairs), len(comparisons)
        comparisons.clear()
        with monkeypatch.context() as patched:
            patched.setattr(compiler, "_sql_key", lambda expr: None)  # as for a construct that has no key
            compared = _compiled(adapter, "Observation", pairs)
        assert keyed == compared
        assert by_key * 10 < len(comparisons)  # the sort keys and ids are still compared, few
