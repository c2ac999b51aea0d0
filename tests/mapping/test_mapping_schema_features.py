"""Engine features real EHR schemas need (OpenEMR's first), on a small SQLite database:
binary uuid ids served and searched as text, code-string columns searched as tokens,
typed DATE/DATETIME columns, variants with their own filters, ``any``/``at_least`` filters.
The same features run on OpenEMR's own DDL in MariaDB in test_openemr.py.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from facade.search.parser import parse_search
from legacy_adapters.mapping.columns import UuidAsText, canonical_uuid
from legacy_adapters.mapping.dates import LegacyDateFormat
from legacy_adapters.mapping.loader import parse_mapping
from legacy_adapters.sql_adapter import SqlAdapter

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
SYSTEMS = {"ICD10": ICD10, "SNOMED-CT": SNOMED, "SNOMED": SNOMED}


def u(n: int) -> uuid.UUID:
    return uuid.UUID(int=n * 0x1111, version=4)


PROBLEMS = [  # id, uuid, pid, diagnosis, enddate, kind
    (1, u(1), 1, "ICD10:E11.9;SNOMED-CT:44054006", None, "problem"),
    (2, u(2), 1, "ICD10:I10", datetime(2019, 1, 1), "problem"),
    (3, u(3), 2, "SNOMED:38341003;ICD10:I10", None, "problem"),
    (4, u(4), 2, "ICD10:I10.9", None, "problem"),
    (5, u(5), 2, "icd10:i10", None, "problem"),
    (6, u(6), 2, "I10", None, "problem"),
    (7, u(7), 2, "LOCAL:I10;X:Y", None, "problem"),
    (8, u(8), 1, "ICD10:I10", None, "allergy"),
    (9, None, 1, "ICD10:I10", None, "problem"),
    (10, u(10), 2, "ICD10:E1_%", None, "problem"),
    (11, u(11), 2, None, None, "problem"),
]

MAPPING = {
    "resources": {
        "Patient": {
            "sources": [
                {
                    "table": "patient",
                    "alias": "p",
                    "where": [{"column": "p.uuid", "is_null": False}],
                    "id": "{p.uuid:uuid}",
                    "resource": {"birthDate": {"column": "p.dob", "date": "%Y-%m-%d", "as": "date"}},
                }
            ],
        },
        "Condition": {
            "search": {
                "code": {"type": "token"},
                "patient": {"type": "reference", "target": "Patient"},
                "clinical-status": {"type": "token"},
            },
            "sources": [
                {
                    "table": "problem",
                    "alias": "l",
                    "joins": [{"table": "patient", "alias": "p", "match": {"l.pid": "p.pid"}}],
                    "where": [{"column": "l.uuid", "is_null": False}, {"column": "l.kind", "equals": "problem"}],
                    "id": "{l.uuid:uuid}-c",
                    "resource": {
                        "clinicalStatus": {"coding": [{"code": "${status}"}]},
                        "code": {"coding": [{"column": "l.diagnosis", "split_codings": {"systems": SYSTEMS}}]},
                        "subject": {"reference": {"template": "Patient/{p.uuid:uuid}"}},
                        "abatementDateTime": {"column": "l.enddate", "date": "%Y-%m-%d %H:%M:%S"},
                    },
                    "search": {
                        "code": {"column": "l.diagnosis", "split_codings": {"systems": SYSTEMS}},
                        "patient": {"column": "p.uuid:uuid"},
                        "clinical-status": {"const": "${status}"},
                    },
                    "variants": [
                        {
                            "name": "inactive",
                            "vars": {"status": "inactive"},
                            "where": [{"column": "l.enddate", "at_least": "0001-01-01 00:00:00"}],
                        },
                        {
                            "name": "active",
                            "vars": {"status": "active"},
                            "where": [
                                {
                                    "any": [
                                        {"column": "l.enddate", "is_null": True},
                                        {"column": "l.enddate", "less_than": "0001-01-01 00:00:00"},
                                    ]
                                }
                            ],
                        },
                    ],
                }
            ],
        },
    }
}


@pytest.fixture(scope="module")
def adapter():
    engine = sa.create_engine("sqlite://", poolclass=sa.StaticPool)
    meta = sa.MetaData()
    patient = sa.Table(
        "patient",
        meta,
        sa.Column("pid", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.LargeBinary(16), unique=True),
        sa.Column("dob", sa.Date),
    )
    problem = sa.Table(
        "problem",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.LargeBinary(16), unique=True),
        sa.Column("pid", sa.Integer),
        sa.Column("diagnosis", sa.String(255)),
        sa.Column("enddate", sa.DateTime),
        sa.Column("kind", sa.String(20)),
    )
    meta.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            patient.insert(),
            [
                {"pid": 1, "uuid": u(100).bytes, "dob": date(1970, 1, 31)},
                {"pid": 2, "uuid": u(200).bytes, "dob": None},
                {"pid": 3, "uuid": None, "dob": None},
                {"pid": 4, "uuid": bytes(16), "dob": None},
            ],
        )
        connection.execute(
            problem.insert(),
            [
                {"id": i, "uuid": key.bytes if key else None, "pid": pid, "diagnosis": diagnosis, "enddate": end, "kind": kind}
                for i, key, pid, diagnosis, end, kind in PROBLEMS
            ],
        )
    return SqlAdapter(parse_mapping(MAPPING), engine)


def search(adapter, resource_type, *pairs):
    request = parse_search(resource_type, list(pairs), adapter.search_params(resource_type), default_count=100)
    return [r["id"] for r in adapter.search(request).resources]


def cid(n: int) -> str:
    return f"{u(n)}-c"


def test_binary_uuids_are_served_and_searched_as_text(adapter):
    assert sorted(search(adapter, "Patient")) == sorted([str(u(100)), str(u(200))])  # not the NULL or all-zero uuids
    assert adapter.read("Patient", str(u(100))) == {"resourceType": "Patient", "id": str(u(100)), "birthDate": "1970-01-31"}
    assert search(adapter, "Patient", ("_id", str(u(200)))) == [str(u(200))]
    for other in (str(u(100)).upper(), u(100).hex, "nonsense", ""):
        assert adapter.read("Patient", other) is None
    condition = adapter.read("Condition", cid(1))
    assert condition["subject"] == {"reference": f"Patient/{u(100)}"}
    assert adapter.read("Condition", str(u(1))) is None  # the literal part of the id template is required
    assert set(search(adapter, "Condition", ("patient", f"Patient/{u(100)}"))) == {cid(1), cid(2)}


def test_ids_page_in_order_across_variants(adapter):
    request = parse_search("Condition", [("_count", "2"), ("_sort", "_id")], adapter.search_params("Condition"))
    seen = []
    while True:
        page = adapter.search(request)
        seen += [r["id"] for r in page.resources]
        if page.next_cursor is None:
            break
        request = replace(request, cursor=page.next_cursor)
    expected = sorted(cid(i) for i, key, _, _, _, kind in PROBLEMS if key and kind == "problem")
    assert sorted(seen) == expected and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "token, expected",
    [
        (f"{ICD10}|I10", {2, 3}),
        (f"{ICD10}|E11.9", {1}),
        (f"{SNOMED}|38341003", {3}),  # SNOMED and SNOMED-CT both stand for SNOMED CT
        (f"{SNOMED}|44054006", {1}),
        ("I10", {2, 3, 6, 7}),  # any system, or none
        ("|I10", {6}),  # explicitly no system: bare codes
        (f"{ICD10}|", {1, 2, 3, 4, 10}),  # any ICD-10 code
        (f"{ICD10}|E1_%", {10}),  # LIKE wildcards in a code are literal characters
        (f"{ICD10}|E1", set()),
        ("http://example.org|I10", set()),
    ],
)
def test_code_strings_search_whole_items(adapter, token, expected):
    assert set(search(adapter, "Condition", ("code", token))) == {cid(n) for n in expected}


def test_code_strings_not_and_missing(adapter):
    everything = {cid(i) for i, key, _, _, _, kind in PROBLEMS if key and kind == "problem"}
    assert set(search(adapter, "Condition", ("code:not", f"{ICD10}|I10"))) == everything - {cid(2), cid(3)}
    assert set(search(adapter, "Condition", ("code:missing", "false"))) == everything - {cid(11)}
    assert set(search(adapter, "Condition", ("code:missing", "true"))) == {cid(11)}


def test_variant_filters_partition_rows(adapter):
    assert set(search(adapter, "Condition", ("clinical-status", "inactive"))) == {cid(2)}
    active = set(search(adapter, "Condition", ("clinical-status", "active")))
    assert cid(2) not in active and cid(1) in active
    assert adapter.read("Condition", cid(2))["clinicalStatus"] == {"coding": [{"code": "inactive"}]}
    assert adapter.read("Condition", cid(2))["abatementDateTime"] == "2019-01-01T00:00:00+00:00"


def test_typed_dates_and_canonical_uuids():
    fmt = LegacyDateFormat("%Y-%m-%d %H:%M:%S", ZoneInfo("America/New_York"))
    assert fmt.to_fhir(datetime(2024, 7, 5, 10, 15), "dateTime") == "2024-07-05T10:15:00-04:00"
    assert fmt.to_fhir(date(2024, 7, 5), "date") == "2024-07-05"
    assert fmt.to_fhir("0000-00-00 00:00:00", "dateTime") is None  # how MySQL drivers hand over zero dates
    assert canonical_uuid(str(u(1))) == str(u(1))
    assert canonical_uuid(str(u(10)).upper()) is None and canonical_uuid(u(10).hex) is None


@pytest.mark.parametrize(
    "engine_url",
    [
        pytest.param("sqlite://", id="sqlite"),
        pytest.param("postgres_url", id="postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb_url", id="mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_a_binary_uuid_as_text_in_sql_is_its_canonical_form(request, engine_url):
    """Where binary uuid ids share a union with text ids, SQL spells them as the server does,
    so they sort like the ids served (the byte order of the binary column)."""
    url = engine_url if engine_url.startswith("sqlite") else request.getfixturevalue(engine_url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    values = sorted([u(1).bytes, u(10).bytes, bytes.fromhex("00ff7f80a0b0c0d0e0f0102030405060"), bytes(range(16, 32))])
    column = sa.bindparam("v", type_=sa.LargeBinary)
    with engine.connect() as connection:
        texts = [connection.execute(sa.select(UuidAsText(column)), {"v": value}).scalar_one() for value in values]
    engine.dispose()
    assert texts == [str(uuid.UUID(bytes=value)) for value in values]
    assert texts == sorted(texts)
