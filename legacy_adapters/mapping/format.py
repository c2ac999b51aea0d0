"""The mapping format as a JSON Schema: one definition for the checks, the editors and the docs.

``mapping.schema.json`` beside this module is generated from :data:`SCHEMA`
(``fhir-facade mapping schema``; a test keeps it current). Point a YAML language server at it
(``# yaml-language-server: $schema=…/mapping.schema.json`` on the first line of a mapping) to get
completion and checking in an editor. The engine reads the same definition
(:mod:`legacy_adapters.mapping.validate`) and docs/mapping/reference.md is written from it.

Resource templates (``resource:``) are FHIR-shaped: the schema leaves them open and the
compiler checks them against the FHIR R4 definitions instead.
"""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "https://fhir-facade.invalid/schemas/mapping.schema.json"


def _s(description: str, **schema: Any) -> dict:
    return {"description": description, **schema}


def _titled(title: str, description: str, **schema: Any) -> dict:
    return {"title": title, "description": description, **schema}


STRING = {"type": "string"}
COLUMN = _s("A column: `alias.column` (or `column` of the source's own table); `alias.column:uuid` reads a binary(16) uuid.", type="string")
FILTERS = _s("Row filters, all of which must hold.", type="array", items={"$ref": "#/$defs/filter"})
MATCH = _s(
    "Join condition: `{left.column: right.column, …}` pairs, all equal.",
    type="object",
    additionalProperties={"type": "string"},
    minProperties=1,
)
DATE = _s(
    "How the column holds dates. A strptime-style format for text (`'%Y%m%d'`, `'%Y-%m-%d %H:%M:%S'`: fields from year "
    "down, fixed widths); `epoch` (seconds since 1970-01-01 UTC, integer or real) or `epoch_ms`. Leave it out for DATE, "
    "DATETIME and TIMESTAMP columns (the column's type decides; numeric columns are read as epoch seconds).",
    type="string",
)
ABSENT = _s("Values that mean 'no value' (sentinels such as `0`, `'0000000000'` or `'UNK'`): read as absent, never searched.", type="array")
PARTS = _s(
    "A date held in separate integer columns: year, and optionally month and day. Gives `YYYY`, `YYYY-MM` or "
    "`YYYY-MM-DD` and is searched at that precision.",
    type="object",
    properties={"year": COLUMN, "month": COLUMN, "day": COLUMN},
    required=["year"],
    additionalProperties=False,
)
SPLIT_CODINGS = _s(
    "A column of code strings such as `ICD10:E11.9;SNOMED-CT:44054006` → codings.",
    type="object",
    properties={
        "systems": _s("Prefix → system URI, or the name of an alias table of the mapping's terminology.", type=["object", "string"]),
        "separator": _s("Between items (default `;`).", type="string"),
        "system_separator": _s("Between prefix and code (default `:`).", type="string"),
    },
    additionalProperties=False,
)

VALUE_EXPRESSION = _titled(
    "a value expression",
    "How one FHIR value is made from legacy columns: one source (`column`, `const`, `template`, `hook`, `first` or "
    "`parts`), then optional transforms.",
    type="object",
    properties={
        "column": COLUMN,
        "const": _s("A constant value."),
        "template": _s("Text with columns in braces, e.g. `'Patient/{p.uuid}'`; absent when any column is.", type="string"),
        "hook": _s("A function of the mapping's `hooks` module, called with the `columns` values and `args`.", type="string"),
        "first": _s("The first of these value expressions that has a value.", type="array", items={"$ref": "#/$defs/value"}, minItems=1),
        "parts": PARTS,
        "columns": _s("The columns a hook receives, in order.", type="array", items=COLUMN),
        "args": _s("Keyword arguments for the hook.", type="object"),
        "map": _s("Legacy value → FHIR value.", type="object"),
        "otherwise": _s(
            "The value for legacy values missing from `map` (`keep` passes them through).", type=["string", "number", "boolean"]
        ),
        "default": _s("The value when the legacy value is absent (searches honour it too)."),
        "date": DATE,
        "as": _s("The FHIR type of a date value (default dateTime).", enum=["date", "dateTime", "instant"]),
        "type": _s("Read the value as this type.", enum=["decimal", "integer", "boolean", "string"]),
        "case": _s("Change the letter case of text.", enum=["title", "upper", "lower"]),
        "split_codings": SPLIT_CODINGS,
        "crosswalk": _s("A crosswalk of the mapping's terminology: the local code → its standard codings and itself.", type="string"),
        "units": _s("A unit table of the mapping's terminology: legacy unit → UCUM.", type="string"),
        "convert": _s("With `units`: convert values where the unit table gives a factor.", type="boolean"),
        "absent": ABSENT,
        "lookup": _s("A code table (`code_tables`): the column holds its key; gives the Coding (system, code, display).", type="string"),
        "get": _s(
            "With `lookup`: the part of the code-table row to give (default `coding`).", enum=["coding", "code", "system", "display"]
        ),
        "range": _s(
            "Printed reference-range text (`4.0-5.6`, `<200`, `>=60`, `Neg`) → a referenceRange item: low and high where "
            "the text has them, the text itself always; `unit` (a value expression) gives the bounds their unit.",
            type=["boolean", "object"],
            properties={"unit": {"$ref": "#/$defs/value"}},
            additionalProperties=False,
        ),
    },
    additionalProperties=False,
    anyOf=[{"required": [key]} for key in ("column", "const", "template", "hook", "first", "parts")],
)

BINDING = _titled(
    "a search binding",
    "How a search parameter filters this source. Token: `column` (+ `map`/`otherwise`/`default`) or `const`, with a "
    "`system`, or a `lookup`, `crosswalk` or `split_codings`; several under `codings`. String: `column` or `columns`, "
    "`normalized`. Date: `column` (+ `date`, `end`), `first` or `parts`. Reference: `column` or `template` with the "
    "target's id (+ `type`).",
    type="object",
    properties={
        "column": COLUMN,
        "columns": _s("Several columns; a value matching any of them matches.", type="array", items=COLUMN),
        "const": _s("A fixed code: every row of the source has it.", type=["string", "number", "boolean"]),
        "system": _s("The code system URI of the codes.", type="string"),
        "map": _s("Legacy value → FHIR code (searches reverse it).", type="object"),
        "otherwise": _s("The code of legacy values missing from `map`.", type=["string", "number", "boolean"]),
        "default": _s("The code an absent legacy value stands for.", type=["string", "number", "boolean"]),
        "codings": _s(
            "Several codings, each a token binding; a value matching any of them matches.", type="array", items={"$ref": "#/$defs/binding"}
        ),
        "lookup": _s(
            "A code table: its name in `code_tables`, or `{table, key, code}` inline (the binding's `system` then names the system).",
            type=["string", "object"],
            properties={"table": STRING, "key": STRING, "code": STRING},
        ),
        "crosswalk": _s("A crosswalk of the mapping's terminology: searches by local and standard codes.", type="string"),
        "split_codings": SPLIT_CODINGS,
        "normalized": _s("The legacy column holds text in this case (searches stay index-friendly).", enum=["upper", "lower"]),
        "date": DATE,
        "end": _s("A period: the column holding its end (same format as `column`).", type="string"),
        "first": _s(
            "The first of these bindings whose column has a value (for dates: a valid one) decides, as `first` does in the resource.",
            type="array",
            items={"$ref": "#/$defs/binding"},
            minItems=1,
        ),
        "parts": PARTS,
        "template": _s("The target id as a template of columns (reference parameters).", type="string"),
        "type": _s("The resource type the reference points at (parameters with several targets).", type="string"),
        "absent": ABSENT,
    },
    additionalProperties=False,
)

FILTER = _titled(
    "a row filter",
    "A row filter: `{column: …, <operator>: value}` with one operator, or `{any: [filters…]}` (one of them holds).",
    type="object",
    properties={
        "column": COLUMN,
        "equals": _s("Equal to this value (exactly).", type=["string", "number", "boolean"]),
        "not_equals": _s("Not equal (NULL counts as not equal).", type=["string", "number", "boolean"]),
        "in": _s("One of these values.", type="array"),
        "not_in": _s("None of these values (NULL counts as none).", type="array"),
        "is_null": _s("true: the column is NULL; false: it is not.", type="boolean"),
        "greater_than": _s("Greater than this value.", type=["string", "number"]),
        "at_least": _s("Greater than or equal to this value.", type=["string", "number"]),
        "less_than": _s("Less than this value.", type=["string", "number"]),
        "any": _s("One of these filters holds.", type="array", items={"$ref": "#/$defs/filter"}, minItems=1),
    },
    additionalProperties=False,
    anyOf=[{"required": ["any"]}, {"required": ["column"]}],
)

CODE_TABLE = _titled(
    "a code table",
    "A legacy table of codes, looked up in SQL (never loaded into memory): legacy rows hold its `key`; each row knows "
    "its code, display and code system.",
    type="object",
    properties={
        "table": _s("The table (`schema.table` works too).", type="string"),
        "key": _s("The column legacy rows refer to (default: `code`).", type="string"),
        "code": _s("The column holding the code.", type="string"),
        "display": _s("The column holding the display text.", type="string"),
        "system": _s(
            "The code system: a URI for the whole table, or `{column: …, map: {value: URI}}` when each row names its "
            "vocabulary (rows whose vocabulary is not in `map` have no system, unless `otherwise` gives one).",
            type=["string", "object"],
            properties={"column": STRING, "map": {"type": "object"}, "otherwise": STRING},
        ),
        "absent": _s("Keys that mean 'no code' (e.g. `[0]`): never a coding, never matched.", type="array"),
        "where": _s("Rows of the table that count (columns of the table, unqualified).", type="array", items={"$ref": "#/$defs/filter"}),
        "title": _s("Title of the code system, when it is published (terminology code tables).", type="string"),
        "target": _s(
            "Published code tables that are crosswalks too: `{system: URI, code: column}`.",
            type="object",
            properties={"system": STRING, "code": STRING},
            additionalProperties=False,
        ),
    },
    required=["table", "code"],
    additionalProperties=False,
)

SOURCE = _titled(
    "a source",
    "One legacy table (with joins) that makes resources of the type.",
    type="object",
    properties={
        "name": _s("A name for the source, used in messages and reports (default: the table).", type="string"),
        "table": _s("The base table (`schema.table` works too).", type="string"),
        "alias": _s("How columns of the base table are named (default: the table name).", type="string"),
        "joins": _s("Tables joined to the base table.", type="array", items={"$ref": "#/$defs/join"}),
        "collections": _s(
            "Rows of other tables belonging to each source row (a lab order's results), by name.",
            type="object",
            additionalProperties={"$ref": "#/$defs/collection"},
        ),
        "where": FILTERS,
        "id": _s("The resource id: a template of columns such as `'{p.uuid}'` or `'lab-{r.id}'`.", type="string"),
        "last_updated": {"$ref": "#/$defs/value", "description": "When the row last changed (meta.lastUpdated, `_lastUpdated`)."},
        "resource": _titled(
            "a resource template",
            "The resource as it should look; any leaf may be a value expression. Checked against FHIR R4.",
            type="object",
        ),
        "search": _s(
            "How each declared search parameter filters this source.", type="object", additionalProperties={"$ref": "#/$defs/binding"}
        ),
        "variants": _s("One row → several resources: each variant makes its own.", type="array", items={"$ref": "#/$defs/variant"}),
    },
    required=["table", "id", "resource"],
    additionalProperties=False,
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "fhir-facade mapping",
    "description": "How FHIR R4 resources are read from a legacy database. Keys starting with `x-` are free (YAML anchors).",
    "type": "object",
    "properties": {
        "mapping": _s("The mapping's name.", type="string"),
        "description": _s("What the mapping serves.", type="string"),
        "timezone": _s("The IANA time zone of the legacy's local timestamps (default UTC).", type="string"),
        "hooks": _s("The Python module holding the mapping's hook functions (`my_package.fhir_hooks`).", type="string"),
        "terminology": _s(
            "Crosswalk files and the legacy code tables published as code systems.",
            type="object",
            properties={
                "crosswalks": _s("Crosswalk manifests: paths relative to the mapping, or `package:path`.", type="array", items=STRING),
                "check_seconds": _s("How often the crosswalk files are checked for changes.", type="number"),
                "code_tables": _s(
                    "Code tables published as CodeSystem and ValueSet (and usable as lookups).",
                    type="object",
                    additionalProperties={"$ref": "#/$defs/code_table"},
                ),
            },
            required=["crosswalks"],
            additionalProperties=False,
        ),
        "code_tables": _s(
            "Legacy code tables by name, for `lookup:` in values and searches.",
            type="object",
            additionalProperties={"$ref": "#/$defs/code_table"},
        ),
        "groups": _s(
            "Patient groups served as FHIR Group (read, search, `Group/[id]/$export`), by id: "
            "each a name and its members as a Patient search.",
            type="object",
            additionalProperties={
                "type": "object",
                "properties": {
                    "name": _s("The group's name.", type="string"),
                    "members": _s("Who belongs: a Patient search query, e.g. `gender=female&birthdate=lt1950`.", type="string"),
                },
                "required": ["name", "members"],
                "additionalProperties": False,
            },
        ),
        "resources": _s(
            "FHIR R4 resource types served, by name.",
            type="object",
            additionalProperties={"$ref": "#/$defs/resource"},
        ),
    },
    "patternProperties": {"^x-": {"description": "Free: a place for YAML anchors."}},
    "required": ["resources"],
    "additionalProperties": False,
    "$defs": {
        "resource": _titled(
            "a resource type",
            "One FHIR resource type: its search parameters and the sources its resources come from.",
            type="object",
            properties={
                "search": _s(
                    "The search parameters of the type (they drive the CapabilityStatement).",
                    type="object",
                    additionalProperties={"$ref": "#/$defs/parameter"},
                ),
                "default_sort": _s("Sort order without `_sort`: parameter names, `-` for descending.", type="array", items=STRING),
                "sources": _s("Where the resources come from.", type="array", items={"$ref": "#/$defs/source"}, minItems=1),
            },
            required=["sources"],
            additionalProperties=False,
        ),
        "parameter": _titled(
            "a search parameter",
            "A search parameter.",
            type="object",
            properties={
                "type": _s("The FHIR search parameter type.", enum=["token", "string", "date", "reference"]),
                "target": _s("Reference parameters: the type (or types) pointed at.", type=["string", "array"], items=STRING),
                "description": _s("What the parameter searches (CapabilityStatement).", type="string"),
                "sortable": _s("May be used in `_sort`.", type="boolean"),
            },
            required=["type"],
            additionalProperties=False,
        ),
        "source": SOURCE,
        "join": _titled(
            "a join",
            "A table joined to the source's base table.",
            type="object",
            properties={
                "table": _s("The joined table.", type="string"),
                "alias": _s("How its columns are named (default: the table name).", type="string"),
                "match": MATCH,
                "outer": _s("A left outer join: the source row stays when no row matches.", type="boolean"),
                "where": _s(
                    "Conditions on the joined rows, part of the join (an outer join keeps its source row).",
                    type="array",
                    items={"$ref": "#/$defs/filter"},
                ),
            },
            required=["table", "match"],
            additionalProperties=False,
        ),
        "collection": _titled(
            "a collection",
            "Rows of another table that belong to a source row.",
            type="object",
            properties={"table": STRING, "match": MATCH, "where": FILTERS},
            required=["table", "match"],
            additionalProperties=False,
        ),
        "filter": FILTER,
        "variant": _titled(
            "a variant",
            "One of several resources made from each row.",
            type="object",
            properties={
                "name": _s("The variant's name (`${variant}`).", type="string"),
                "require": _s("Columns that must have a value for the row to make this resource.", type="array", items=COLUMN),
                "where": FILTERS,
                "vars": _s("Values substituted for `${name}` anywhere in the source.", type="object"),
                "resource": _s("Elements added to (or, set to null, removed from) the source's resource.", type="object"),
                "search": _s(
                    "Bindings added to (or removed from) the source's.",
                    type="object",
                    additionalProperties={"anyOf": [{"$ref": "#/$defs/binding"}, {"type": "null"}]},
                ),
            },
            required=["name"],
            additionalProperties=False,
        ),
        "value": VALUE_EXPRESSION,
        "binding": BINDING,
        "code_table": CODE_TABLE,
    },
}

VALUE_SOURCES = ("column", "const", "template", "hook", "first", "parts")


def schema_text() -> str:
    """:data:`SCHEMA` as the text of ``mapping.schema.json``."""
    import json

    return json.dumps(SCHEMA, indent=2, ensure_ascii=False) + "\n"
