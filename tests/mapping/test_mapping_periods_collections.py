"""Mapping engine features the US Core types need: date search on Periods, child-row
collections (a report's results) and reference parameters that point at several types.

Period semantics are checked against a plain-Python reading of R4 search §3.1.1.4.3
(ranges), not against the SQL the engine writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from facade.search.parser import parse_search
from legacy_adapters.mapping.binder import bind_mapping
from legacy_adapters.mapping.compiler import branch_filters
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.loader import parse_mapping
from legacy_adapters.mapping.values import split_collection

FMT = "%Y-%m-%d %H:%M:%S"
# (guid, start, end): junk and empty values are open sides
PERIODS = [
    ("a", "2024-03-10 09:00:00", "2024-03-10 09:30:00"),  # inside one day
    ("b", "2024-03-09 22:00:00", "2024-03-11 08:00:00"),  # spans the day
    ("c", "2024-03-11 00:00:00", "2024-03-12 12:00:00"),  # starts the next day
    ("d", "2024-03-01 10:00:00", None),  # ongoing
    ("e", "2024-03-20 10:00:00", ""),  # ongoing, empty end
    ("f", "0000-00-00 00:00:00", "2024-03-10 12:00:00"),  # start unknown
    ("g", "0000-00-00 00:00:00", None),  # nothing known
    ("h", "2024-03-10 00:00:00", "2024-03-10 23:59:59"),  # exactly the day
    ("i", "2024-02-01 08:00:00", "2024-02-03 08:00:00"),  # well before
]
MAPPING = {
    "resources": {
        "Encounter": {
            "search": {
                "date": {"type": "date"},
                "result": {"type": "reference", "target": "Observation"},
                "target": {"type": "reference", "target": ["Encounter", "Patient"]},
            },
            "sources": [
                {
                    "table": "visit",
                    "alias": "v",
                    "id": "{v.guid}",
                    "collections": {
                        "notes": {
                            "table": "note",
                            "match": {"notes.visit_guid": "v.guid"},
                            "where": [{"column": "notes.del_flg", "not_equals": "Y"}],
                        },
                    },
                    "resource": {
                        "status": "finished",
                        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                        "period": {"start": {"column": "v.s", "date": FMT}, "end": {"column": "v.e", "date": FMT}},
                        "serviceType": {"text": {"column": "notes.txt"}},
                    },
                    "search": {
                        "date": {"column": "v.s", "end": "v.e", "date": FMT},
                        "result": {"column": "notes.guid"},
                        "target": {"column": "v.guid", "type": "Encounter"},
                    },
                }
            ],
        }
    }
}
NOTES = [("n1", "a", "first", "N"), ("n2", "a", "second", "N"), ("n3", "b", "gone", "Y"), ("n4", "c", "x,y", None)]


@pytest.fixture(scope="module")
def bound():
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE visit (guid TEXT PRIMARY KEY, s TEXT, e TEXT)")
        conn.exec_driver_sql("CREATE TABLE note (guid TEXT PRIMARY KEY, visit_guid TEXT, txt TEXT, del_flg TEXT)")
        conn.exec_driver_sql("INSERT INTO visit VALUES (?, ?, ?)", PERIODS)
        conn.exec_driver_sql("INSERT INTO note VALUES (?, ?, ?, ?)", NOTES)
    spec = parse_mapping(MAPPING)
    with engine.connect() as conn:
        resource = bind_mapping(spec, conn)["Encounter"]
    yield engine, spec, resource
    engine.dispose()


def _matches(bound, query: str) -> set[str]:
    engine, spec, resource = bound
    pairs = [tuple(part.split("=", 1)) for part in query.split("&")]
    request = parse_search("Encounter", pairs, spec.resources["Encounter"].params)
    ids = set()
    with engine.connect() as conn:
        for branch, where in branch_filters(resource, request):
            statement = sa.select(branch.id.sql()).select_from(branch.source.from_clause).where(where)
            ids.update(conn.execute(statement).scalars())
    return ids


def _parse(text):
    try:
        return datetime.strptime(text, FMT) if text else None
    except ValueError:
        return None


def _expected(prefix: str, low: datetime, high: datetime) -> set[str]:
    """R4 §3.1.1.4.3 on [start, end + 1 s), open sides infinite; nothing known never matches."""
    out = set()
    for guid, s_text, e_text in PERIODS:
        s, e = _parse(s_text), _parse(e_text)
        if s is None and e is None:
            continue
        start = s if s is not None else datetime.min
        end = e + timedelta(seconds=1) if e is not None else datetime.max
        inside = s is not None and e is not None and low <= start and end <= high
        hit = {
            "eq": inside,
            "ne": not inside,
            "gt": end > high,
            "ge": end > low,
            "lt": start < low,
            "le": start < high,
            "sa": start >= high,
            "eb": end <= low,
        }[prefix]
        if hit:
            out.add(guid)
    return out


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "ge", "lt", "le", "sa", "eb"])
@pytest.mark.parametrize(
    "value,low,high",
    [
        ("2024-03-10", datetime(2024, 3, 10), datetime(2024, 3, 11)),
        ("2024-03", datetime(2024, 3, 1), datetime(2024, 4, 1)),
        ("2024-03-10T09:00:00", datetime(2024, 3, 10, 9), datetime(2024, 3, 10, 9, 0, 1)),
    ],
)
def test_period_prefixes_follow_the_range_rules(bound, prefix, value, low, high):
    assert _matches(bound, f"date={prefix}{value}") == _expected(prefix, low, high)


def test_period_rules_are_not_vacuous(bound):
    # the cases above really discriminate: ongoing and open-start periods take part
    assert _matches(bound, "date=ge2024-03-15") == {"d", "e"}
    assert _matches(bound, "date=lt2024-03-01") == {"f", "i"}
    assert _matches(bound, "date=2024-03-10") == {"a", "h"}


def test_period_missing(bound):
    assert _matches(bound, "date:missing=true") == {"g"}
    assert _matches(bound, "date:missing=false") == {guid for guid, *_ in PERIODS} - {"g"}


def test_collection_reference_search_uses_live_child_rows(bound):
    assert _matches(bound, "result=n1") == {"a"}
    assert _matches(bound, "result=Observation/n2,n4") == {"a", "c"}
    assert _matches(bound, "result=n3") == set()  # the child row is soft-deleted
    assert _matches(bound, "result:missing=true") == {guid for guid, *_ in PERIODS} - {"a", "c"}


def test_collection_values_come_back_as_one_column(bound):
    engine, _, resource = bound
    branch = resource.branches[0]
    statement = sa.select(*branch.source.columns, branch.id.sql()).select_from(branch.source.from_clause)
    with engine.connect() as conn:
        built = {row[-1]: branch.build(row[:-1]) for row in conn.execute(statement)}
    assert split_collection(built["a"]["serviceType"]["text"]) == ["first", "second"]
    assert "serviceType" not in built["b"]  # only a deleted child
    assert split_collection(None) == [] and split_collection("b,a,,a") == ["a", "b"]


def test_reference_with_several_target_types(bound):
    _, spec, _ = bound
    definition = spec.resources["Encounter"].params["target"]
    assert (definition.target, definition.targets) == ("Resource", ("Encounter", "Patient"))  # exactly the listed types
    assert _matches(bound, "target=Encounter/a") == {"a"}
    assert _matches(bound, "target=a") == {"a"}
    assert _matches(bound, "target=Patient/a") == set()  # same id, other type


def test_collection_mistakes_are_mapping_errors(bound):
    engine, _, _ = bound
    source = MAPPING["resources"]["Encounter"]["sources"][0]
    for collections, message in [
        ({"v": {"table": "note", "match": {"v.guid": "v.guid"}}}, "name of a table alias"),
        ({"notes": {"table": "note"}}, "needs 'match'"),
        ({"notes": {"table": "note", "match": {"notes.nope": "v.guid"}}}, "nope"),
    ]:
        document = {"resources": {"Encounter": {"sources": [dict(source, collections=collections, search={})]}}}
        with engine.connect() as conn, pytest.raises(MappingError, match=message):
            bind_mapping(parse_mapping(document), conn)
