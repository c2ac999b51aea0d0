"""The mapping engine's building blocks: value expressions, templates, legacy dates, mapping errors."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from legacy_adapters.mapping.binder import bind_mapping
from legacy_adapters.mapping.dates import LegacyDateFormat
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.loader import parse_mapping
from legacy_adapters.mapping.templates import compile_template
from legacy_adapters.mapping.values import compile_value

NEW_YORK = ZoneInfo("America/New_York")


class Ctx:
    """A compile context over a dict-shaped fake row."""

    def __init__(self, hooks=None):
        self.refs: list[str] = []
        self.hooks = hooks or {}

    def slot(self, ref):
        if ref not in self.refs:
            self.refs.append(ref)
        return self.refs.index(ref)

    def hook(self, name):
        return self.hooks[name]

    def date_format(self, fmt, column=None):
        return LegacyDateFormat(fmt, NEW_YORK)

    def row(self, **values):
        return tuple(values.get(ref) for ref in self.refs)


def value(spec, hooks=None, **row):
    ctx = Ctx(hooks)
    fn = compile_value(spec, ctx, "test")
    return fn(ctx.row(**row))


def test_columns_are_trimmed_and_empty_is_absent():
    assert value({"column": "a"}, a="SMITH   ") == "SMITH"
    assert value({"column": "a"}, a="   ") is None


def test_value_maps_otherwise_and_default():
    spec = {"column": "a", "map": {"M": "male", "F": "female"}, "otherwise": "unknown", "default": "unknown"}
    assert value(spec, a="M") == "male"
    assert value(spec, a="X") == "unknown"
    assert value(spec, a=None) == "unknown"
    assert value({"column": "a", "map": {"M": "male"}}, a="X") is None
    assert value({"column": "a", "map": {"M": "male"}, "otherwise": "keep"}, a="X") == "X"


def test_legacy_dates():
    assert value({"column": "a", "date": "%Y%m%d", "as": "date"}, a="19800131") == "1980-01-31"
    assert value({"column": "a", "date": "%Y%m%d%H%M%S"}, a="20240705101500") == "2024-07-05T10:15:00-04:00"
    assert value({"column": "a", "date": "%Y%m%d%H%M%S", "as": "instant"}, a="20240105101500") == "2024-01-05T15:15:00Z"
    for junk in ("", "00000000", "20241341", "2024", None):
        assert value({"column": "a", "date": "%Y%m%d", "as": "date"}, a=junk) is None


def test_types_cases_templates_hooks_and_code_strings():
    assert value({"column": "a", "type": "decimal"}, a="5.40") == 5.4
    assert value({"column": "a", "type": "decimal"}, a="abc") is None
    assert value({"column": "a", "type": "integer"}, a="7") == 7
    assert value({"column": "a", "type": "boolean"}, a="Y") is True
    assert value({"column": "a", "case": "title"}, a="MARY ANN") == "Mary Ann"
    assert value({"template": "Patient/{p.id}"}, **{"p.id": "abc"}) == "Patient/abc"
    assert value({"template": "Patient/{p.id}"}) is None
    assert value({"hook": "twice", "columns": ["a"]}, {"twice": lambda a: a * 2}, a="x") == "xx"
    codes = {"column": "a", "split_codings": {"systems": {"ICD10": "http://hl7.org/fhir/sid/icd-10-cm"}}}
    assert value(codes, a="ICD10:E11.9;LOCAL:HTN2; ;E78") == [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"},
        {"code": "HTN2"},
        {"code": "E78"},
    ]


def test_unknown_value_keys_are_mapping_errors():
    with pytest.raises(MappingError):
        compile_value({"column": "a", "mapp": {}}, Ctx(), "x")
    with pytest.raises(MappingError):
        compile_value({"column": "a", "type": "float128"}, Ctx(), "x")


def test_templates_prune_elements_without_data():
    ctx = Ctx()
    build = compile_template(
        {
            "status": "final",
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": {"column": "loinc"}},
                    {"system": "urn:local", "code": {"column": "local"}},
                ]
            },
            "note": [{"text": {"column": "comment"}}],
            "category": [{"coding": [{"system": "urn:cat", "code": "lab"}]}],
        },
        ctx,
    )
    full = build(ctx.row(loinc="2345-7", local="GLU", comment="fasting"))
    assert full["code"]["coding"][0] == {"system": "http://loinc.org", "code": "2345-7"}
    assert full["note"] == [{"text": "fasting"}]
    sparse = build(ctx.row(local="GLU"))
    # The LOINC coding had only its constant system left: it is dropped, not half-built.
    assert sparse["code"]["coding"] == [{"system": "urn:local", "code": "GLU"}]
    assert "note" not in sparse
    assert sparse["status"] == "final" and sparse["category"][0]["coding"][0]["code"] == "lab"


def test_legacy_date_bounds_and_guard():
    fmt = LegacyDateFormat("%Y-%m-%d %H:%M:%S", NEW_YORK)
    assert fmt.format_bound(datetime(2024, 7, 5, 14, 0, tzinfo=ZoneInfo("UTC"))) == "2024-07-05 10:00:00"
    assert fmt.guard == "0001-01-01 00:00:00" > "0000-00-00 00:00:00"
    day = LegacyDateFormat("%Y%m%d", NEW_YORK)
    assert day.ceil(datetime(2024, 1, 1, 10)) == datetime(2024, 1, 2)
    assert day.floor(datetime(2024, 1, 1, 10)) == datetime(2024, 1, 1)
    with pytest.raises(ValueError):
        LegacyDateFormat("%d/%m/%Y", NEW_YORK)  # not sortable as text: cannot be searched in SQL


def _bind(document):
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE pat (id INTEGER PRIMARY KEY, guid TEXT, nm TEXT)")
    with engine.connect() as conn:
        return bind_mapping(parse_mapping(document), conn)


def _doc(**source):
    base = {"table": "pat", "id": "{guid}", "resource": {"name": [{"family": {"column": "nm"}}]}}
    base.update(source)
    return {
        "resources": {"Patient": {"search": {"family": {"type": "string"}}, "sources": [dict(base, search={"family": {"column": "nm"}})]}}
    }


def test_mapping_errors_name_the_problem():
    assert _bind(_doc())["Patient"].branches
    with pytest.raises(MappingError, match="column 'nope' not found in 'pat'"):
        _bind(_doc(resource={"gender": {"column": "nope"}}))
    with pytest.raises(MappingError, match="table 'missing' does not exist"):
        _bind(_doc(table="missing"))
    with pytest.raises(MappingError, match="declared but no source binds it"):
        parse_mapping(
            {
                "resources": {
                    "Patient": {"search": {"name": {"type": "string"}}, "sources": [{"table": "pat", "id": "{guid}", "resource": {}}]}
                }
            }
        )
    with pytest.raises(MappingError, match="a search parameter needs 'type'"):
        parse_mapping({"resources": {"Patient": {"search": {"name": {}}, "sources": [{"table": "pat", "id": "{guid}", "resource": {}}]}}})
    with pytest.raises(MappingError, match="unknown key 'joinz' in a source; did you mean 'joins'"):
        parse_mapping({"resources": {"Patient": {"sources": [{"table": "pat", "id": "{guid}", "resource": {}, "joinz": []}]}}})


def test_code_table_lookups_ask_the_table_and_refresh(tmp_path):
    """A searched code is resolved to local keys by one query on the code table (never a copy of the
    table in memory); the answer is kept for the refresh period, then asked again."""
    from legacy_adapters.code_tables import CodeTable, CodeTableSpec

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'codes.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE tests (cd TEXT PRIMARY KEY, loinc TEXT)")
        conn.exec_driver_sql("INSERT INTO tests VALUES ('GLU', '2345-7'), ('GLUF', '2345-7'), ('MISC', NULL)")
        conn.exec_driver_sql("CREATE TABLE result (id INTEGER PRIMARY KEY, cd TEXT)")
        conn.exec_driver_sql("INSERT INTO result VALUES (1, 'GLU'), (2, 'GLUF'), (3, 'MISC'), (4, NULL)")
    table = sa.Table("tests", sa.MetaData(), autoload_with=engine)
    result = sa.Table("result", sa.MetaData(), autoload_with=engine)
    spec = CodeTableSpec("tests", "tests", "http://loinc.org", "tests", "loinc", key="cd")
    codes = CodeTable(spec, table, engine, refresh_seconds=3600)

    def matching(system, code):
        with engine.connect() as conn:
            return sorted(conn.execute(sa.select(result.c.id).where(codes.match(result.c.cd, system, code))).scalars())

    assert matching("http://loinc.org", "2345-7") == [1, 2]
    assert matching(None, "2345-7") == [1, 2] and matching("http://snomed.info/sct", "2345-7") == []
    assert matching("http://loinc.org", None) == [1, 2]  # any LOINC code: a subquery
    assert matching("http://loinc.org", "nope") == []
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE tests SET loinc = '2345-7' WHERE cd = 'MISC'")
    assert matching("http://loinc.org", "2345-7") == [1, 2]  # still within refresh_seconds
    codes._keys.clear()  # the refresh period passes
    assert matching("http://loinc.org", "2345-7") == [1, 2, 3]
    engine.dispose()


def test_first_parts_and_sentinels_as_values():
    assert value({"first": [{"column": "a"}, {"column": "b"}]}, a=None, b="B") == "B"
    assert value({"first": [{"column": "a"}, {"column": "b"}]}, a="A", b="B") == "A"
    assert value({"first": [{"column": "a", "absent": ["0"]}, {"const": "x"}]}, a="0") == "x"
    parts = {"parts": {"year": "y", "month": "m", "day": "d"}}
    assert value(parts, y=1950) == "1950" and value(parts, y=1950, m=6) == "1950-06" and value(parts, y=1950, m=6, d=1) == "1950-06-01"
    assert value(parts, y=1950, m=13) is None and value(parts, y=1950, d=3) is None and value(parts, m=6) is None  # junk
    assert value({"column": "a", "absent": ["0000000000", 0]}, a="0000000000") is None
    assert value({"column": "a", "absent": [0]}, a=0) is None and value({"column": "a", "absent": [0]}, a=7) == 7
    mapped = {"column": "a", "absent": ["UNK"], "map": {"M": "male"}, "otherwise": "other", "default": "unknown"}
    assert value(mapped, a="UNK") == "unknown" and value(mapped, a="X") == "other"


def test_sentinels_are_neither_found_nor_present_in_token_searches():
    from facade.search.parser import parse_search
    from legacy_adapters.mapping.compiler import branch_filters

    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE staff (id INTEGER PRIMARY KEY, npi TEXT)")
        conn.exec_driver_sql("INSERT INTO staff VALUES (1, '1234567893'), (2, '0000000000'), (3, NULL)")
    document = {
        "resources": {
            "Practitioner": {
                "search": {"identifier": {"type": "token"}},
                "sources": [
                    {
                        "table": "staff",
                        "alias": "s",
                        "id": "{s.id}",
                        "resource": {
                            "identifier": [
                                {"system": "http://hl7.org/fhir/sid/us-npi", "value": {"column": "s.npi", "absent": ["0000000000"]}}
                            ]
                        },
                        "search": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "column": "s.npi", "absent": ["0000000000"]}},
                    }
                ],
            }
        }
    }
    with engine.connect() as conn:
        bound = bind_mapping(parse_mapping(document), conn)["Practitioner"]

        def found(token: str) -> set[int]:
            request = parse_search("Practitioner", [("identifier", token)], bound.spec.params)
            selected = branch_filters(bound, request)
            if not selected:  # decided without asking the database
                return set()
            (branch, where), *_ = selected
            return set(conn.execute(sa.select(sa.literal_column("s.id")).select_from(branch.source.from_clause).where(where)).scalars())

        assert found("0000000000") == set() and not branch_filters(
            bound, parse_search("Practitioner", [("identifier", "0000000000")], bound.spec.params)
        )
        assert found("1234567893") == {1}
        request = parse_search("Practitioner", [("identifier:missing", "true")], bound.spec.params)
        (branch, where), *_ = branch_filters(bound, request)
        assert set(conn.execute(sa.select(sa.literal_column("s.id")).select_from(branch.source.from_clause).where(where)).scalars()) == {
            2,
            3,
        }
        row = conn.execute(
            sa.select(*branch.source.columns).select_from(branch.source.from_clause).where(sa.literal_column("s.id") == 2)
        ).first()
        assert "identifier" not in (branch.build(row) or {})


def test_first_of_in_token_and_string_searches():
    """The alternative the resource shows is the one searched: a mobile number, else the home one."""
    from facade.search.parser import parse_search
    from legacy_adapters.mapping.compiler import compile_page

    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE pat (id INTEGER PRIMARY KEY, mobile TEXT, home TEXT, nick TEXT, family TEXT)")
        conn.exec_driver_sql(
            "INSERT INTO pat VALUES (1, '555-1', '555-9', NULL, 'Smith'), (2, NULL, '555-1', 'Bo', 'Jones'), (3, NULL, NULL, NULL, 'Brown')"
        )
    document = {
        "resources": {
            "Patient": {
                "search": {"phone": {"type": "token"}, "name": {"type": "string", "sortable": True}},
                "sources": [
                    {
                        "table": "pat",
                        "alias": "p",
                        "id": "{p.id}",
                        "resource": {
                            "telecom": [{"system": "phone", "value": {"first": [{"column": "p.mobile"}, {"column": "p.home"}]}}],
                            "name": [{"text": {"first": [{"column": "p.nick"}, {"column": "p.family"}]}}],
                        },
                        "search": {
                            "phone": {"first": [{"column": "p.mobile"}, {"column": "p.home"}]},
                            "name": {"first": [{"column": "p.nick"}, {"column": "p.family"}]},
                        },
                    }
                ],
            }
        }
    }
    with engine.connect() as conn:
        bound = bind_mapping(parse_mapping(document), conn)["Patient"]

        def ids(*params) -> list[int]:
            statement = compile_page(bound, parse_search("Patient", list(params), bound.spec.params), 100).statement
            return [row._mapping["_id"] for row in conn.execute(statement)] if statement is not None else []

        assert sorted(ids(("phone", "555-1"))) == [1, 2]  # 1's mobile, 2's home (2 has no mobile)
        assert ids(("phone", "555-9")) == []  # 1's home number is not the one shown
        assert ids(("phone:missing", "true")) == [3]
        assert sorted(ids(("phone:not", "555-1"))) == [3]
        assert ids(("name", "bo")) == [2] and ids(("name", "jones")) == []  # 2 is shown as 'Bo'
        assert ids(("_sort", "name")) == [2, 3, 1]  # Bo, Brown, Smith


def test_required_elements_without_a_value_say_why():
    """A primitive FHIR requires, absent (or junk) in a row, carries the DataAbsentReason extension;
    an element the template already extends, or a constant, is left as it is."""
    ctx = Ctx()
    build = compile_template(
        {
            "status": {"column": "st", "map": {"F": "final"}},
            "code": {"text": {"column": "name"}},
            "issued": {"column": "at", "date": "%Y%m%d", "as": "instant"},
        },
        ctx,
        resource_type="Observation",
    )
    absent = build(ctx.row(st="?", name="Glucose"))
    assert "status" not in absent and absent["_status"]["extension"][0] == {
        "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
        "valueCode": "unknown",
    }
    assert "_issued" not in absent  # not required
    assert build(ctx.row(st="F", name="Glucose"))["status"] == "final" and "_status" not in build(ctx.row(st="F", name="Glucose"))
    assert build(ctx.row(st="?")) is None  # no data at all: no resource body, not a lone extension
