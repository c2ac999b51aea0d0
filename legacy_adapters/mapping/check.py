"""``fhir-facade mapping check``: a mapping validated against a live legacy database, then reconciled.

Two passes, for vendors and data stewards:

1. **Schema** — the mapping is bound exactly as the server binds it at start-up (the same
   checks, the same errors, all at once, each at its ``file:line:column``); then warnings:
   columns read with a legacy ``date:`` format that are not text, search columns that lead no
   index or primary key (searches would scan).
2. **Reconciliation** — per resource type and source: legacy rows, rows the source's filters
   exclude (soft deletes…), then every remaining row is built as the server would build it,
   streamed in batches. Rows that fail are grouped by reason with example keys — the exception
   queue a migration team works from. Duplicate ids are found with ``GROUP BY … HAVING``, ids
   two sources share with ``INTERSECT``, code-table keys that are not unique with ``GROUP BY``.
   Date values a column cannot decode (junk) are listed per column with example ids.

Errors (mapping problems, rows that fail to map, duplicate or shared ids, code tables whose key
is not unique) make the check fail; warnings and junk values do not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from legacy_adapters.mapping.binder import BoundResource, Branch, bind_mapping
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.idspaces import overlapping_pairs
from legacy_adapters.mapping.loader import MappingSpec, expand_variant
from legacy_adapters.mapping.values import JUNK, TEMPLATE_FIELD

EXAMPLES = 5
_TEXT = (sa.String, sa.Text, sa.Unicode, sa.UnicodeText, sa.Enum)


@dataclass
class Issue:
    severity: str  # error | warning
    where: str
    message: str
    at: str = ""  # file:line:column in the mapping


@dataclass
class Reconciliation:
    resource: str
    source: str
    variant: str | None
    legacy_rows: int
    excluded_by_filters: int
    resources: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)  # reason -> example ids/keys
    failure_counts: dict[str, int] = field(default_factory=dict)
    junk: dict[str, list[str]] = field(default_factory=dict)  # "column: what" -> example ids (values are absent)
    junk_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class CheckReport:
    issues: list[Issue] = field(default_factory=list)
    reconciliation: list[Reconciliation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues) and not any(r.failure_counts for r in self.reconciliation)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "issues": [vars(i) for i in self.issues],
            "reconciliation": [
                {
                    **{k: v for k, v in vars(r).items() if k not in ("failure_counts", "junk_counts")},
                    "failures": [{"reason": k, "rows": r.failure_counts[k], "examples": v} for k, v in r.failures.items()],
                    "junk": [{"value": k, "rows": r.junk_counts[k], "examples": v} for k, v in r.junk.items()],
                }
                for r in self.reconciliation
            ],
        }


def check_mapping(mapping: MappingSpec, connection: sa.Connection, *, limit: int | None = None) -> CheckReport:
    report = CheckReport()
    try:
        bound = bind_mapping(mapping, connection)
    except MappingError as exc:
        for problem in exc.problems:
            report.issues.append(Issue("error", problem.where, problem.message, str(problem.mark or "")))
        bound = None
    inspector = sa.inspect(connection)
    warnings = CheckReport()
    for type_name, spec in mapping.resources.items():
        for source in spec.sources:
            for label, expanded in _expanded(source):
                _check_source(f"{type_name} source {source.get('name', source['table'])!r}{label}", expanded, inspector, warnings)
    unique = {(i.severity, i.where, i.message): i for i in warnings.issues if i.severity == "warning"}  # variants repeat findings
    report.issues += list(unique.values())
    if bound is None:
        return report
    for type_name, resource in bound.items():
        for branch in resource.branches:
            report.reconciliation.append(_reconcile(type_name, branch, connection, limit))
        _shared_ids(type_name, resource, connection, report)
    _code_table_keys(mapping, bound, connection, report)
    return report


def _shared_ids(type_name: str, resource: BoundResource, connection: sa.Connection, report: CheckReport) -> None:
    """Ids two sources (or variants) of one type both make: a read would find two rows."""
    for a, b in overlapping_pairs(resource):
        ids = [sa.select(branch.id.sql().label("shared")).select_from(branch.source.from_clause).where(*branch.where) for branch in (a, b)]
        statement = sa.select(sa.intersect(*ids).subquery().c.shared).limit(EXAMPLES)
        examples = [str(a.id.render(row[0])) for row in connection.execute(statement)]
        if examples:
            names = [f"{x.source.name!r}" + (f" variant {x.variant!r}" if x.variant else "") for x in (a, b)]
            message = f"sources {names[0]} and {names[1]} make the same ids, e.g. {', '.join(examples)}: give each its own id prefix"
            report.issues.append(Issue("error", type_name, message, str(getattr(b.id.template, "mark", None) or "")))


def _code_table_keys(mapping: MappingSpec, bound: dict, connection: sa.Connection, report: CheckReport) -> None:
    """A code table joined for output must have one row per key, else it repeats legacy rows."""
    in_use: dict[int, Any] = {id(t): t for resource in bound.values() for source in resource.sources for t in source.code_tables}
    for table in in_use.values():
        key = table.table.c[table.spec.key]
        statement = (
            sa.select(key).where(*table._conditions(table.table)).group_by(key).having(sa.func.count() > 1).order_by(key).limit(EXAMPLES)
        )
        repeated = [str(row[0]) for row in connection.execute(statement)]
        if repeated:
            report.issues.append(
                Issue(
                    "error",
                    f"code table {table.spec.name!r}",
                    f"key {table.spec.key!r} is not unique in {table.spec.table!r} (e.g. {', '.join(repeated)}): "
                    "narrow it with where: so that each key has one row",
                )
            )


# --------------------------------------------------------------------------- schema
def _expanded(source: dict) -> list[tuple[str, dict]]:
    """A source as each of its variants sees it (see loader.expand_variant)."""
    if not source.get("variants"):
        return [("", source)]
    expanded = []
    for variant in source["variants"]:
        merged = expand_variant(source, variant)
        merged["required"] = [{"column": ref} for ref in merged.pop("require")]
        expanded.append((f" variant {variant.get('name')!r}", merged))
    return expanded


def _check_source(where: str, source: dict, inspector: Any, report: CheckReport) -> None:
    aliases = {source.get("alias") or source["table"].rpartition(".")[2]: source["table"]}
    for join in source.get("joins") or []:
        aliases[join.get("alias") or join["table"].rpartition(".")[2]] = join["table"]
    for name, collection in (source.get("collections") or {}).items():  # a collection's name is its alias
        if isinstance(collection, dict) and isinstance(collection.get("table"), str):
            aliases[name] = collection["table"]
    base = next(iter(aliases))
    columns: dict[str, dict[str, Any] | None] = {}
    for alias, table in aliases.items():
        schema, _, name = table.rpartition(".")
        try:
            columns[alias] = {c["name"]: c for c in inspector.get_columns(name, schema=schema or None)}
        except sa.exc.NoSuchTableError:
            columns[alias] = None
            report.issues.append(Issue("error", where, f"table {table!r} does not exist"))

    def column(ref: str, role: str) -> dict | None:
        alias, _, name = ref.rpartition(".")
        alias = alias or base
        if alias not in columns:
            report.issues.append(Issue("error", where, f"{role} {ref!r}: unknown table alias {alias!r}"))
            return None
        found = columns[alias]
        if found is None:
            return None  # the missing table is already reported
        if name not in found:
            report.issues.append(Issue("error", where, f"{role} {ref!r}: column {name!r} not found in {aliases[alias]!r}"))
            return None
        return found[name]

    for ref, role, date in _references(source):
        info = column(ref, role)
        if info is not None and date and not isinstance(info["type"], _TEXT):
            report.issues.append(
                Issue("warning", where, f"{role} {ref!r} is read with legacy date format {date!r} but is {info['type']}, not text")
            )
    indexed = _leading_columns(inspector, aliases)
    for name, binding in (source.get("search") or {}).items():
        for ref in _binding_columns(binding):
            alias, _, col = ref.rpartition(".")
            known = columns.get(alias or base)
            if known and col in known and (alias or base, col) not in indexed:
                report.issues.append(
                    Issue(
                        "warning",
                        where,
                        f"search parameter {name!r}: {ref!r} leads no index; searches on it scan {aliases[alias or base]!r}",
                    )
                )


def _references(node: Any, role: str = "resource", date: str | None = None) -> list[tuple[str, str, str | None]]:
    """Every ``alias.column`` a source spec reads, with where it is used and its legacy date format."""
    found: list[tuple[str, str, str | None]] = []
    if isinstance(node, dict):
        node_date = node.get("date") if isinstance(node.get("date"), str) else None
        for key, value in node.items():
            child_role = role if role != "resource" or key not in ("id", "joins", "where", "search", "last_updated") else key
            if key == "column" and isinstance(value, str) and "${" not in value:
                found.append((value, child_role, node_date))
            elif key == "columns" and isinstance(value, list):
                found += [(v, child_role, None) for v in value if isinstance(v, str) and "${" not in v]
            elif key in ("template", "id") and isinstance(value, str):
                found += [(ref, key, None) for ref in TEMPLATE_FIELD.findall(value)]
            elif key == "match" and isinstance(value, dict):
                found += [(ref, "join", None) for pair in value.items() for ref in pair]
            elif key in ("lookup", "table", "alias", "name", "map", "vars", "require"):
                continue
            else:
                found += _references(value, child_role, node_date)
    elif isinstance(node, list):
        for item in node:
            found += _references(item, role, date)
    return found


def _binding_columns(binding: Any) -> list[str]:
    if not isinstance(binding, dict):
        return []
    items = binding.get("codings") or [binding]
    refs = []
    for item in items:
        if isinstance(item.get("column"), str) and "${" not in item["column"]:
            refs.append(item["column"])
        refs += [c for c in item.get("columns") or [] if "${" not in c]
    return refs[:1] if binding.get("columns") is None else refs  # OR across columns: each needs an index


def _leading_columns(inspector: Any, aliases: dict[str, str]) -> set[tuple[str, str]]:
    leading = set()
    for alias, table in aliases.items():
        schema, _, name = table.rpartition(".")
        try:
            pk = inspector.get_pk_constraint(name, schema=schema or None).get("constrained_columns") or []
            indexes = inspector.get_indexes(name, schema=schema or None)
        except sa.exc.NoSuchTableError:
            continue
        if pk:
            leading.add((alias, pk[0]))
        for index in indexes:
            names = index.get("column_names") or []
            if names and names[0]:
                leading.add((alias, names[0]))
    return leading


# --------------------------------------------------------------------------- reconciliation
def _reconcile(type_name: str, branch: Branch, connection: sa.Connection, limit: int | None) -> Reconciliation:
    source = branch.source
    total = connection.execute(sa.select(sa.func.count()).select_from(source.from_clause)).scalar_one()
    kept = connection.execute(sa.select(sa.func.count()).select_from(source.from_clause).where(*branch.where)).scalar_one()
    result = Reconciliation(type_name, source.name, branch.variant, total, total - kept)
    failures: dict[str, list[str]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)

    def fail(reason: str, key: str) -> None:
        counts[reason] += 1
        if len(failures[reason]) < EXAMPLES:
            failures[reason].append(key)

    id_sql = branch.id.sql().label("_check_id")
    statement = sa.select(*source.columns, id_sql).select_from(source.from_clause).where(*branch.where).order_by(id_sql)
    if limit:
        statement = statement.limit(limit)
    width = len(source.columns)
    junk: dict[str, list[str]] = defaultdict(list)
    junk_counts: dict[str, int] = defaultdict(int)
    current: list[str] = [""]

    def undecodable(ref: str, _raw: object) -> None:  # values stay out of the report: they may be PHI
        what = f"{ref}: not a date this column can hold"
        junk_counts[what] += 1
        if len(junk[what]) < EXAMPLES:
            junk[what].append(current[0])

    token = JUNK.set(undecodable)
    try:
        for row in connection.execution_options(yield_per=1000).execute(statement):
            key = row[width]
            if key is None or str(key).strip() == "":
                fail("no id: the id columns are empty", _row_key(row, width))
                continue
            current[0] = branch.id.render(key)
            try:
                body = branch.build(row)
                if branch.last_updated is not None:
                    branch.last_updated(row)
            except Exception as exc:  # noqa: BLE001 - every way a row can fail is what the report is for
                fail(f"cannot build: {type(exc).__name__}: {exc}", str(key))
                continue
            if not body:
                fail("builds an empty resource", str(key))
                continue
            result.resources += 1
    finally:
        JUNK.reset(token)
    result.junk, result.junk_counts = dict(junk), dict(junk_counts)
    duplicates = (
        sa.select(id_sql, sa.func.count().label("n"))
        .select_from(source.from_clause)
        .where(*branch.where)
        .group_by(id_sql)
        .having(sa.func.count() > 1)
        .order_by(id_sql)
    )
    for key, n in connection.execute(duplicates):
        if key is not None:
            reason = "duplicate id: several legacy rows make the same resource id"
            fail(reason, str(key))
            counts[reason] += n - 1  # every row sharing the id, one example
    result.failures, result.failure_counts = dict(failures), dict(counts)
    return result


def _row_key(row: Any, width: int) -> str:
    return "row " + ", ".join(str(v) for v in row[: min(width, 3)])
