"""Each parameter type's binding, on a table declared in code: the predicate it builds for a
clause (rendered as SQLite SQL), decided in Python where it can be."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from facade.search.params import DateValue, MissingValue, Prefix, ReferenceValue, SearchClause, StringValue, TokenValue
from legacy_adapters.mapping.bindings import DateBinding, IdBinding, IdTemplate, ReferenceBinding, StringBinding, TokenBinding
from legacy_adapters.mapping.dates import LegacyDateFormat
from legacy_adapters.mapping.sqlexpr import is_false, is_true

TABLE = sa.Table(
    "obs",
    sa.MetaData(),
    sa.Column("guid", sa.String),
    sa.Column("code", sa.String),
    sa.Column("status", sa.String),
    sa.Column("name", sa.String),
    sa.Column("taken", sa.String),
    sa.Column("pt", sa.String),
)


def resolve(ref: str) -> sa.ColumnElement:
    return TABLE.c[ref.rpartition(".")[2]]


def sql(expr: sa.ColumnElement) -> str:
    return str(expr.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def clause(name: str, type_: str, *values, modifier: str | None = None) -> SearchClause:
    return SearchClause(name, type_, modifier, tuple(values), raw="-")


def test_token_with_a_value_map_searches_the_legacy_values():
    binding = TokenBinding.from_spec(
        {"column": "o.status", "map": {"F": "final", "P": "preliminary", "C": "final"}, "system": "http://hl7.org/fhir/observation-status"},
        resolve,
    )
    found = sql(binding.predicate(clause("status", "token", TokenValue(None, "final"))))
    assert "obs.status IN ('F', 'C')" in found
    assert is_false(binding.predicate(clause("status", "token", TokenValue("http://other", "final"))))  # another system: no row
    negated = sql(binding.predicate(clause("status", "token", TokenValue(None, "final"), modifier="not")))
    assert negated.startswith("NOT")


def test_a_constant_code_is_decided_without_the_database():
    binding = TokenBinding.from_spec(
        {"const": "laboratory", "system": "http://terminology.hl7.org/CodeSystem/observation-category"}, resolve
    )
    assert is_true(binding.predicate(clause("category", "token", TokenValue(None, "laboratory"))))
    assert is_false(binding.predicate(clause("category", "token", TokenValue(None, "vital-signs"))))


def test_missing_is_one_rule_for_every_type():
    token = TokenBinding.from_spec({"column": "o.code"}, resolve)
    string = StringBinding.from_spec({"column": "o.name"}, resolve)
    for binding in (token, string):
        present = sql(binding.predicate(clause("x", "token", MissingValue(False), modifier="missing")))
        absent = sql(binding.predicate(clause("x", "token", MissingValue(True), modifier="missing")))
        assert "IS NOT NULL" in present and "!= ''" in present
        assert absent.startswith("NOT")
    assert is_false(IdBinding(IdTemplate("{o.guid}", resolve)).predicate(clause("_id", "token", MissingValue(True), modifier="missing")))


def test_string_matches_start_exact_and_contains():
    binding = StringBinding.from_spec({"column": "o.name"}, resolve)
    assert "lower(obs.name) LIKE lower('smi') || '%'" in sql(binding.predicate(clause("name", "string", StringValue("smi"))))
    assert "obs.name = 'Smith'" in sql(binding.predicate(clause("name", "string", StringValue("Smith"), modifier="exact")))
    assert "LIKE '%' || lower('m/_t') || '%' ESCAPE '/'" in sql(
        binding.predicate(clause("name", "string", StringValue("m_t"), modifier="contains"))
    )


def test_date_bounds_are_formatted_like_the_legacy_column():
    binding = DateBinding(TABLE.c.taken, LegacyDateFormat("%Y%m%d%H%M%S", ZoneInfo("UTC")))
    day = DateValue(Prefix.EQ, datetime(2024, 3, 5), datetime(2024, 3, 6))
    assert sql(binding.predicate(clause("date", "date", day))) == "obs.taken >= '20240305000000' AND obs.taken < '20240306000000'"
    after = DateValue(Prefix.GT, datetime(2024, 3, 5), datetime(2024, 3, 6))
    assert sql(binding.predicate(clause("date", "date", after))) == "obs.taken >= '20240306000000'"


def test_reference_ids_are_one_in_list_and_ids_of_another_type_match_nothing():
    binding = ReferenceBinding.from_spec({"column": "o.pt", "type": "Patient"}, resolve)
    refs = clause("subject", "reference", ReferenceValue("Patient", "a"), ReferenceValue("Patient", "b"))
    assert "obs.pt IN ('a', 'b')" in sql(binding.predicate(refs))
    assert is_false(binding.predicate(clause("subject", "reference", ReferenceValue("Group", "a"))))


@pytest.mark.parametrize(
    ("template", "value", "parts"),
    [
        ("{o.guid}", "abc", ["abc"]),
        ("{o.guid}-pulse", "abc-pulse", ["abc"]),
        ("{o.guid}-pulse", "abc-temp", None),
        ("{o.guid}-pulse", "abc-pulse\n", None),
    ],
)
def test_id_templates_parse_only_their_own_shape(template, value, parts):
    assert IdTemplate(template, resolve).parse(value) == parts
