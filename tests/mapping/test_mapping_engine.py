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

    def date_format(self, fmt):
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
    with pytest.raises(MappingError, match="column 'nope' not found in table 'pat'"):
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
    with pytest.raises(MappingError, match="needs a type"):
        parse_mapping({"resources": {"Patient": {"search": {"name": {}}, "sources": [{"table": "pat", "id": "{guid}", "resource": {}}]}}})
    with pytest.raises(MappingError, match="unknown source keys"):
        parse_mapping({"resources": {"Patient": {"sources": [{"table": "pat", "id": "{guid}", "resource": {}, "joinz": []}]}}})


def test_code_tables_are_read_once_and_refreshed(tmp_path):
    from legacy_adapters.code_tables import CodeTable

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'codes.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE tests (cd TEXT PRIMARY KEY, loinc TEXT)")
        conn.exec_driver_sql("INSERT INTO tests VALUES ('GLU', '2345-7'), ('GLUF', '2345-7'), ('MISC', NULL)")
    table = sa.Table("tests", sa.MetaData(), autoload_with=engine)
    codes = CodeTable(engine, table, table.c.cd, table.c.loinc, refresh_seconds=3600)
    assert sorted(codes.keys_for("2345-7")) == ["GLU", "GLUF"]
    assert codes.keys_for("nope") == [] and codes.all_keys() == ["GLU", "GLUF"]
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE tests SET loinc = '2345-7' WHERE cd = 'MISC'")
    assert "MISC" not in codes.keys_for("2345-7")  # still within refresh_seconds
    codes.refresh_seconds = 0
    assert "MISC" in codes.keys_for("2345-7")
    engine.dispose()
