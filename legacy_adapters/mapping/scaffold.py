"""``fhir-facade mapping scaffold``: a first draft of a mapping, from what the database says of itself.

The schema is reflected (tables, columns and their types, keys, foreign keys, indexes) and a few
values are sampled, never more than a handful per column. From that:

* candidate resources, from table and column names (``pt_master``, ``person`` → Patient;
  ``lab_result``, ``measurement`` → Observation…), each source linked to its patient through a
  foreign key or a column named like the patient table's key;
* code tables: small tables of codes and descriptions, or concept tables whose rows name their
  vocabulary (whose values are mapped to the code systems FHIR knows); code columns are looked up
  in them;
* date columns: DATE/DATETIME/TIMESTAMP types as they are, text columns with their format found
  from sampled values, year/month/day parts;
* soft-delete flags and sentinels, as TODO notes;
* indexes to add, for every search the draft binds to a column that leads no index.

The draft loads and checks (``fhir-facade mapping check``); it is meant to be edited: every guess
is marked ``TODO``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from legacy_adapters.mapping.dates import says_no_date
from legacy_adapters.mapping.scaffold_resources import Draft, resource_drafts
from legacy_adapters.mapping.scaffold_yaml import emit

RESOURCE_NAMES = [  # (resource type, pattern on the table name), first match wins
    ("AllergyIntolerance", r"allerg"),
    ("Immunization", r"immun|vacc"),
    ("Patient", r"^(pt|pat|patient|person|member)s?(_master|_data|_demographics?)?$|^demograph"),
    ("Condition", r"problem|prob_list|diagnos|_dx$|^dx|condition"),
    ("Encounter", r"visit_occ|visit$|^visits?$|encounter|^enc_|admission"),
    ("MedicationRequest", r"^rx|prescri|drug_exposure|med_order|medication_request"),
    ("Procedure", r"^proc|procedure"),
    ("Observation", r"lab_result|result$|measurement|^observation$|vital|^obs(_|$)"),
    ("Practitioner", r"^provider$|^staff$|physician|doctor|clinician"),
    ("Organization", r"^org|facility|care_site|clinic"),
    ("Location", r"^location$|^dept|ward"),
]
CODE_TABLE_NAME = re.compile(r"(_cd|_code|_codes|_lookup|_type|_types)$|^(concept|list_options|code|codes|lookup)$")
DESCRIPTION = re.compile(r"(desc|description|name|title|display|text|_nm)$")
CODE_COLUMN = re.compile(r"(_cd|_code|code|_concept_id|_id)$")
VOCABULARY_COLUMN = re.compile(r"^(vocabulary_id|vocabulary|code_system|system|code_type|coding_system)$")
KNOWN_SYSTEMS = {
    "loinc": "http://loinc.org",
    "snomed": "http://snomed.info/sct",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "icd10": "http://hl7.org/fhir/sid/icd-10",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "ucum": "http://unitsofmeasure.org",
    "cpt4": "http://www.ama-assn.org/go/cpt",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "cvx": "http://hl7.org/fhir/sid/cvx",
    "ndc": "http://hl7.org/fhir/sid/ndc",
    "hcpcs": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
}
TEXT_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d"]
SAMPLE = 20


@dataclass
class Column:
    name: str
    type: Any
    kind: str  # text | integer | number | date | datetime | other
    date: str | None = None  # how the column holds dates, when it does: a format, "typed", "epoch"


@dataclass
class Table:
    name: str
    columns: dict[str, Column]
    key: list[str]
    foreign: list[tuple[list[str], str, list[str]]]
    leading: set[str]  # columns that lead an index or the primary key
    rows: int = 0
    code_table: dict | None = None
    resource: str | None = None


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    code_tables: dict[str, dict] = field(default_factory=dict)  # name -> code table spec
    lookups: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column) -> code table name
    indexes: list[str] = field(default_factory=list)  # CREATE INDEX suggestions


def scaffold(connection: sa.Connection, schema: str | None = None, tables: list[str] | None = None) -> str:
    """The draft mapping, as YAML text."""
    found = reflect(connection, schema, tables)
    _find_code_tables(found, connection)
    drafts = resource_drafts(found, RESOURCE_NAMES)
    return emit(_document(found, drafts, connection.dialect.name))


def reflect(connection: sa.Connection, schema: str | None = None, only: list[str] | None = None) -> Schema:
    inspector = sa.inspect(connection)
    found = Schema()
    for name in sorted(inspector.get_table_names(schema=schema)):
        if only and name not in only:
            continue
        columns = {c["name"]: Column(c["name"], c["type"], _kind(c["type"])) for c in inspector.get_columns(name, schema=schema)}
        key = inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or []
        foreign = [
            (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"])
            for fk in inspector.get_foreign_keys(name, schema=schema)
        ]
        leading = {key[0]} if key else set()
        leading |= {
            ix["column_names"][0] for ix in inspector.get_indexes(name, schema=schema) if ix.get("column_names") and ix["column_names"][0]
        }
        table = Table(name, columns, key, foreign, leading)
        qualified = sa.table(name, *(sa.column(c) for c in columns), schema=schema)
        table.rows = connection.execute(sa.select(sa.func.count()).select_from(qualified)).scalar_one()
        for column in columns.values():
            column.date = _date_kind(column, qualified, connection)
        found.tables[name] = table
    return found


def _kind(column_type: Any) -> str:
    if isinstance(column_type, sa.DateTime):
        return "datetime"
    if isinstance(column_type, sa.Date):
        return "date"
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, (sa.Numeric, sa.Float)):
        return "number"
    if isinstance(column_type, sa.String):
        return "text"
    return "other"


def _date_kind(column: Column, table: Any, connection: sa.Connection) -> str | None:
    if column.kind in ("date", "datetime"):
        return "typed"
    dated_name = re.search(r"(date|_dt$|dttm|_time$|datetime|dob|birth)", column.name.lower())
    if not dated_name:
        return None
    if column.kind == "number" and re.search(r"datetime", column.name.lower()):
        return "epoch"  # OHDSI's tools keep datetimes as Unix seconds in REAL columns
    if column.kind != "text":
        return None
    # The largest values: real dates sort above the zero dates and blanks legacy systems write.
    statement = sa.select(table.c[column.name]).where(table.c[column.name] > "").order_by(table.c[column.name].desc()).limit(SAMPLE)
    values = [v for (v,) in connection.execute(statement) if v and not says_no_date(v)]
    best, hits = None, 0
    for fmt in TEXT_FORMATS:
        parsed = sum(1 for v in values if _parses(str(v), fmt))
        if parsed > hits:
            best, hits = fmt, parsed
    return best


def _parses(text: str, fmt: str) -> bool:
    if len(text.strip()) != len(datetime(2000, 1, 1).strftime(fmt)):  # fixed widths: strptime alone is lenient
        return False
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def _find_code_tables(found: Schema, connection: sa.Connection) -> None:
    for table in found.tables.values():
        descriptions = [c for c in table.columns if DESCRIPTION.search(c.lower())]
        vocabulary = next((c for c in table.columns if VOCABULARY_COLUMN.match(c.lower())), None)
        small = len(table.columns) <= 6 and table.key and len(table.key) <= 2
        named = CODE_TABLE_NAME.search(table.name.lower())
        looks_like_resource = any(re.search(pattern, table.name.lower()) for _, pattern in RESOURCE_NAMES)
        if not (named or (small and descriptions and not looks_like_resource)):
            continue
        key = table.key[-1] if table.key else next(iter(table.columns))
        standard = {c for c in table.columns for word in KNOWN_SYSTEMS if re.search(rf"(^|_){word}(_|$)", c.lower())}
        code = next((c for c in table.columns if re.search(r"(^|_)code$", c.lower()) and c != key and c not in standard), key)
        spec: dict[str, Any] = {"table": table.name, "key": key, "code": code}
        if descriptions:
            spec["display"] = descriptions[0]
        if vocabulary:
            spec["system"] = {
                "column": vocabulary,
                "map": _vocabularies(table, vocabulary, connection),
                "otherwise": f"urn:local:{table.name}",
            }
        else:
            spec["system"] = f"urn:local:{table.name}"  # TODO: the system URI of these codes
        table.code_table = spec
        found.code_tables[_code_table_name(table.name)] = spec
        for column in table.columns:  # a column of standard codes beside the local one: its own code table
            for word, uri in KNOWN_SYSTEMS.items():
                if column != code and re.search(rf"(^|_){word}(_|$)", column.lower()):
                    found.code_tables[f"{_code_table_name(table.name)}-{word}"] = {
                        "table": table.name,
                        "key": key,
                        "code": column,
                        "system": uri,
                    }
                    break


def _vocabularies(table: Table, column: str, connection: sa.Connection) -> dict[str, str]:
    values: list[Any] = list(
        connection.execute(sa.select(sa.column(column)).select_from(sa.table(table.name)).distinct().limit(200)).scalars()
    )
    mapped = {}
    for value in values:
        uri = KNOWN_SYSTEMS.get(re.sub(r"[^a-z0-9]", "", str(value).lower()))
        if uri:
            mapped[str(value)] = uri
    return mapped or {"TODO": "http://example.org/code-system"}


def _code_table_name(table: str) -> str:
    return re.sub(r"_+", "-", table.lower()).strip("-")


def _document(found: Schema, drafts: list[Draft], dialect: str) -> dict:
    document: dict[str, Any] = {
        "# ": "Drafted by `fhir-facade mapping scaffold`: edit it, then run `fhir-facade mapping check`. Every guess says TODO.",
        "mapping": "draft",
        "description": "TODO: what this mapping serves",
        "timezone": "UTC",
    }
    used = {d.code_table for draft in drafts for d in draft.coded if d.code_table}
    if used:
        document["code_tables"] = {name: spec for name, spec in found.code_tables.items() if name in used}
    document["resources"] = {}
    for draft in drafts:
        entry = document["resources"].setdefault(draft.resource_type, {"search": {}, "sources": []})
        entry["search"].update(draft.params)
        if not draft.source.get("search"):
            draft.source.pop("search", None)
        entry["sources"].append(draft.source)
    for entry in document["resources"].values():
        if not entry["search"]:
            del entry["search"]
    empty = [t.name for t in found.tables.values() if t.rows == 0 and t.code_table is None]
    if empty:
        document["# empty"] = f"Tables without rows, not drafted: {', '.join(empty)}"
    indexes = [index for draft in drafts for index in draft.indexes]
    if indexes:
        document["#  "] = "Indexes to add, so that the searches above use one (run them on the legacy database):"
        for i, index in enumerate(dict.fromkeys(indexes)):
            document[f"#   {i}"] = f"  {index};"
    return document
