"""A :class:`SearchRequest` and a bound resource type → one SQL statement. No I/O.

Each branch (source or variant) contributes ``SELECT <its columns>, branch, id,
sort keys FROM <tables> WHERE <static filters> AND <search predicates> AND
<after cursor>``; branches whose predicates are false at compile time are dropped.
One branch is ordered and limited directly; several are each limited, then
unioned, ordered and limited again, so every page is a single round trip and
every branch can use its indexes.

Order is always the requested sort keys, then the branch, then the id, so it is
total: keyset cursors (the last row's keys) never skip or repeat a row.

No I/O, except that a code-table lookup (legacy_adapters/code_tables.py) may refresh its in-memory copy.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BooleanClauseList, ColumnElement

from facade.errors import InvalidRequest
from facade.search.params import STORAGE_ORDER, SortKey
from facade.search.request import SearchRequest
from legacy_adapters.mapping.binder import BoundResource, Branch
from legacy_adapters.mapping.bindings.ids import IdBinding
from legacy_adapters.mapping.sqlexpr import FALSE, TRUE, FewPass, all_of, any_of, is_false, is_true, python_type


@dataclass
class PageQuery:
    statement: sa.Select | sa.CompoundSelect | None  # None when no branch can match
    layout: dict[int, int]  # branch index -> offset of its source's columns in a result row
    meta: int  # position of the first meta column (branch, id, sort keys..., references...)
    references: int = 0  # position of the first reference column (one per ``request.references``)
    listed: frozenset[int] = frozenset()  # reference columns holding several ids (a collection, split_collection)
    reversed: bool = False  # rows come in reverse order (a page ending before its cursor)


def branch_filters(resource: BoundResource, request: SearchRequest) -> list[tuple[Branch, ColumnElement]]:
    """Each branch that may match, with its full WHERE clause (static filters and search)."""
    # Token clauses first: against a branch's fixed codes they decide in Python, and a
    # branch found false is dropped before any other predicate is built for it.
    clauses = sorted(request.clauses, key=lambda clause: clause.type != "token")
    selected = []
    for branch in resource.branches:
        parts = list(branch.where)
        for clause in clauses:
            binding = branch.bindings.get(clause.name)
            predicate = binding.predicate(clause) if binding is not None else FALSE
            if is_false(predicate):
                break
            parts.append(predicate)
        else:
            for group in request.restrictions:
                predicate = _any_of_group(branch, group)
                if is_false(predicate):
                    break
                parts.append(predicate)
            else:
                selected.append((branch, all_of(*parts)))
    return selected


def _any_of_group(branch: Branch, group: tuple) -> ColumnElement:
    """An authorization group: OR of alternatives, each an AND of clauses. A clause the branch
    cannot evaluate makes its alternative false, so a restriction can narrow, never widen."""
    alternatives = []
    for alternative in group:
        predicates = []
        for clause in alternative:
            binding = branch.bindings.get(clause.name)
            predicates.append(binding.predicate(clause) if binding is not None else FALSE)
        alternatives.append(all_of(*predicates))
    return any_of(*alternatives)


def compile_page(
    resource: BoundResource, request: SearchRequest, limit: int, *, nulls_last_by_default: bool = False, ids_only: bool = False
) -> PageQuery:
    """``nulls_last_by_default``: the engine sorts NULL above every value (PostgreSQL, Oracle).
    ``ids_only``: the same page with the meta columns alone (branch, id, sort keys), no source
    columns and no references: who matches, without what it takes to build them."""
    sort = request.sort or resource.spec.default_sort
    candidates = branch_filters(resource, request)
    if not candidates:
        return PageQuery(None, {}, 0)
    storage = sort[:1] == (STORAGE_ORDER,)  # an export's walk: a page is few of the rows after its cursor
    if STORAGE_ORDER.name in (key.name for key in sort) and not _keyed(candidates):
        sort = tuple(SortKey("_id", key.descending) if key.name == STORAGE_ORDER.name else key for key in sort)

    sources = [] if ids_only else list(dict.fromkeys(branch.source for branch, _ in candidates))
    offsets, position = _offsets(sources)
    layout = {branch.index: offsets[id(branch.source)] for branch, _ in candidates if not ids_only}
    reference_names = () if ids_only else request.references

    slot_columns = _slot_columns(resource, tuple(sources))
    listed = frozenset(
        j
        for branch, _ in candidates
        for j, name in enumerate(reference_names)
        if (binding := branch.bindings.get(name)) is not None and binding.several_per_row
    )
    # A page that ends before its cursor (a ``previous`` link) reads the same order reversed;
    # the adapter turns the rows round.
    reverse = request.before and request.cursor is not None
    # Ids that are binary uuids in some branches and text in others meet in one union column
    # and, sorted by ``_id``, in one order: then every branch selects and sorts its id as text.
    text_ids = len({branch.id.converted for branch, _ in candidates}) > 1
    members = [(branch, where, _sort_keys(branch, sort, reverse, text_ids), branch.id.sql(text_ids)) for branch, where in candidates]
    selects = []  # (statement, its ORDER BY)
    # In storage order each variant is its own seek on the primary key, a page long: read in one
    # pass, the variants' join made SQLite sort every row after the cursor, on every page.
    keyed_walk = storage and all(key.name == STORAGE_ORDER.name for key in sort)
    for group in [[member] for member in members] if keyed_walk else _scans(members):
        columns = [] if ids_only else list(slot_columns[id(group[0][0].source)])
        if len(group) == 1:
            branch, where, keys, id_expr = group[0]
            branch_column: ColumnElement = sa.literal(branch.index, sa.Integer)
            from_clause = branch.source.from_clause
            references = _reference_columns(branch, reference_names)
            if request.cursor is not None:
                where = all_of(where, _after(keys, branch.index, id_expr, request.cursor, reverse, storage))
            order = [*_order(keys, nulls_last_by_default), _direction(id_expr, reverse)]
        else:
            branch_column, id_expr, from_clause, where, references = _shared_scan(group, reference_names)
            keys = group[0][2]
            if request.cursor is not None:
                where = all_of(where, _after_shared(keys, branch_column, id_expr, request.cursor, reverse, storage))
            order = [*_order(keys, nulls_last_by_default), _direction(branch_column, reverse), _direction(id_expr, reverse)]
        if is_false(where):
            continue
        columns.append(branch_column.label("_b"))
        columns.append(id_expr.label("_id"))
        columns += [expr.label(f"_k{i}") for i, (expr, _) in enumerate(keys)]
        columns += [expr.label(f"_r{j}") for j, expr in enumerate(references)]
        selects.append((sa.select(*columns).select_from(from_clause).where(where), order))

    if not selects:
        return PageQuery(None, {}, 0)
    if len(selects) == 1:
        statement, order = selects[0]
        statement = statement.order_by(*order).limit(limit)
    else:
        union = sa.union_all(*(sa.select(statement.order_by(*order).limit(limit).subquery()) for statement, order in selects))
        page = union.subquery("page")
        outer_keys = [(page.c[f"_k{i}"], key.descending != reverse) for i, key in enumerate(sort)]
        ties = (_direction(page.c["_b"], reverse), _direction(page.c["_id"], reverse))
        statement = sa.select(page).order_by(*_order(outer_keys, nulls_last_by_default), *ties).limit(limit)
    return PageQuery(statement, layout, position, position + 2 + len(sort), listed, reverse)


Member = tuple[Branch, ColumnElement, list[tuple[ColumnElement, bool]], ColumnElement]  # branch, where, sort keys, id


def _scans(members: list[Member]) -> list[list[Member]]:
    """Branches that read one source in the same order are read in one pass over it (variants
    of one table: a vital-signs row is a pulse, a temperature, a weight...). Each branch
    scanning the table on its own read every row once per variant, and a variant that rarely
    has a value read them all to find nothing."""
    by_source: dict[int, list[Member]] = {}
    for member in members:
        by_source.setdefault(id(member[0].source), []).append(member)
    scans = []
    for group in by_source.values():
        keys = [expr for expr, _ in group[0][2]]
        if all(len(m[2]) == len(keys) and all(a.compare(b) for a, (b, _) in zip(keys, m[2])) for m in group[1:]):
            scans.append(group)
        else:
            scans += [[member] for member in group]
    return scans


def _shared_scan(
    group: list[Member], reference_names: tuple[str, ...]
) -> tuple[ColumnElement, ColumnElement, sa.FromClause, ColumnElement, list[ColumnElement]]:
    """One pass over the group's source joined to its branch numbers: each row comes once per
    branch whose own filters it meets. Filters every branch shares stay outside the OR, so
    the engine can still use an index for them (the patient, the deleted flag)."""
    numbers = sa.union_all(*(sa.select(sa.literal_column(str(int(m[0].index)), sa.Integer).label("n")) for m in group))
    # a name no legacy table or mapping alias takes (a table may well be called "branch")
    branch_column = numbers.subquery("_fhir_facade_branch").c.n
    conjuncts = [_conjuncts(where) for _, where, _, _ in group]
    keys = [[_sql_key(c) for c in mine] for mine in conjuncts]
    in_common: Callable[[ColumnElement, tuple | None], bool]
    if all(key is not None for mine in keys for key in mine):
        # Conjuncts are the same filter when their SQL and values are: set lookups, where comparing
        # expression trees pairwise took ~10 ms for the twelve vital-sign variants.
        shared = set(keys[0]).intersection(*map(set, keys[1:]))
        in_common = lambda _c, key: key in shared  # noqa: E731
    else:  # a construct SQLAlchemy cannot key: compared tree against tree
        trees = [c for c in conjuncts[0] if all(any(c.compare(d) for d in other) for other in conjuncts[1:])]
        in_common = lambda c, _key: any(c.compare(k) for k in trees)  # noqa: E731
    common = [c for c, key in zip(conjuncts[0], keys[0]) if in_common(c, key)]
    own = [
        all_of(branch_column == m[0].index, *(c for c, key in zip(mine, mine_keys) if not in_common(c, key)))
        for m, mine, mine_keys in zip(group, conjuncts, keys)
    ]
    where = all_of(*common, any_of(*own))
    id_expr = _by_branch(branch_column, [(m[0].index, m[3]) for m in group])
    per_branch = [(m[0].index, _reference_columns(m[0], reference_names)) for m in group]
    references = [_by_branch(branch_column, [(index, refs[j]) for index, refs in per_branch]) for j in range(len(reference_names))]
    from_clause = sa.join(group[0][0].source.from_clause, branch_column.table, sa.true())
    return branch_column, id_expr, from_clause, where, references


def _sql_key(expr: ColumnElement) -> tuple | None:
    """Equal for expressions that are the same SQL with the same values: SQLAlchemy's cache key
    (the structure its compiled cache keys on) and the bound values. None when it has none."""
    key = expr._generate_cache_key()
    if key is None:
        return None
    try:
        values = tuple(_hashable(bind.effective_value) for bind in key.bindparams)
        hash(values)
    except TypeError:  # a value no set can hold
        return None
    return key.key, values


def _hashable(value: object) -> object:
    return tuple(_hashable(v) for v in value) if isinstance(value, (list, tuple)) else value


def _by_branch(branch_column: ColumnElement, exprs: list[tuple[int, ColumnElement]]) -> ColumnElement:
    """The expression every branch shares, or a CASE on the branch number."""
    first = exprs[0][1]
    if all(expr.compare(first) for _, expr in exprs[1:]):
        return first
    return sa.case(*((branch_column == index, expr) for index, expr in exprs))


def _conjuncts(where: ColumnElement) -> list[ColumnElement]:
    if is_true(where):
        return []
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        return [part for clause in where.clauses for part in _conjuncts(clause)]
    return [where]


def _reference_columns(branch: Branch, names: tuple[str, ...]) -> list[ColumnElement]:
    """The target id of each named reference parameter, as text (NULL where the branch has none):
    the same expression the parameter filters on, so ``_include`` returns exactly what a search
    by that parameter would match. A reference held by a collection (a report's results) is
    every id of the row's collection in one column, aggregated by a correlated subquery."""
    columns = []
    for name in names:
        binding = branch.bindings.get(name)
        column = binding.include_column() if binding is not None else None
        columns.append(column if column is not None else sa.cast(sa.null(), sa.String))
    return columns


def _offsets(sources: list) -> tuple[dict[int, int], int]:
    """Where each source's columns start in a result row, and where the meta columns start."""
    offsets, position = {}, 0
    for source in sources:
        offsets[id(source)] = position
        position += len(source.columns)
    return offsets, position


def _slot_columns(resource: BoundResource, sources: tuple) -> dict[int, list[ColumnElement]]:
    """Each source's select list in a query over ``sources``: its own columns, NULL for the others'.

    Labelling columns is a noticeable part of a request, and the combinations of sources
    a query can touch are few, so the lists are built once per combination.
    """
    key = tuple(id(source) for source in sources)
    cached = resource.select_lists.get(key)
    if cached is None:
        cached = {}
        for source in sources:
            columns, position = [], 0
            for other in sources:
                for column in other.columns:
                    label = f"c{position}"
                    columns.append(column.label(label) if other is source else sa.cast(sa.null(), column.type).label(label))
                    position += 1
            cached[id(source)] = columns
        resource.select_lists[key] = cached
    return cached


def compile_read(resource: BoundResource, branch_indexes: tuple[int, ...]) -> PageQuery:
    """A read by id over the branches whose id template accepts it, with the id parts as bind
    parameters ``b{branch}_{part}``: built once per set of branches, reused for every id."""
    branches = [resource.branches[i] for i in branch_indexes]
    sources = list(dict.fromkeys(branch.source for branch in branches))
    slot_columns = _slot_columns(resource, tuple(sources))
    offsets, position = _offsets(sources)
    members = []
    for branch in branches:
        columns = [*slot_columns[id(branch.source)], sa.literal(branch.index, sa.Integer).label("_b"), branch.id.sql().label("_id")]
        where = all_of(*branch.where, branch.id.match_bound(f"b{branch.index}"))
        members.append(sa.select(*columns).select_from(branch.source.from_clause).where(where))
    statement = members[0] if len(members) == 1 else sa.union_all(*members)
    layout = {branch.index: offsets[id(branch.source)] for branch in branches}
    return PageQuery(statement, layout, position)


def compile_count(resource: BoundResource, request: SearchRequest) -> sa.Select | None:
    counts = [
        sa.select(sa.func.count()).select_from(branch.source.from_clause).where(where).scalar_subquery()
        for branch, where in branch_filters(resource, request)
    ]
    if not counts:
        return None
    total: ColumnElement = counts[0]
    for count in counts[1:]:
        total = total + count
    return sa.select(total)


def _sort_keys(branch: Branch, sort: tuple[SortKey, ...], reverse: bool, text_ids: bool) -> list[tuple[ColumnElement, bool]]:
    """(expression, descending) per sort key; ``reverse`` turns every direction round."""
    keys = []
    for key in sort:
        binding = branch.bindings.get(key.name)
        expr: ColumnElement
        if key.name == STORAGE_ORDER.name and branch.source.key is not None:
            expr = branch.source.key
        elif binding is None:
            expr = sa.null()
        elif text_ids and isinstance(binding, IdBinding):
            expr = binding.text_sort_key()
        else:
            expr = binding.sort_key()
        keys.append((expr, key.descending != reverse))
    return keys


def _keyed(candidates: list[tuple[Branch, ColumnElement]]) -> bool:
    """Storage order needs a primary key in every branch, all of one type (they meet in one
    union column); otherwise the id stands in for it."""
    keys = [branch.source.key for branch, _ in candidates]
    return all(key is not None for key in keys) and len({python_type(key) for key in keys if key is not None}) == 1


def _direction(expr: ColumnElement, descending: bool) -> ColumnElement:
    return expr.desc() if descending else expr


def _order(keys: Sequence[tuple[ColumnElement, bool]], nulls_last_by_default: bool) -> list[ColumnElement]:
    """NULL sorts as the smallest value. Engines that think otherwise are told, but only for
    nullable columns: an explicit NULLS clause can stop them using an index for the order."""
    order: list[ColumnElement] = []
    for expr, descending in keys:
        term = expr.desc() if descending else expr.asc()
        if nulls_last_by_default and getattr(expr, "nullable", True):
            term = term.nulls_last() if descending else term.nulls_first()
        order.append(term)
    return order


def _after(
    keys: list[tuple[ColumnElement, bool]], branch_index: int, id_expr: ColumnElement, cursor: tuple, reverse: bool, few: bool = False
) -> ColumnElement:
    """Rows strictly after the cursor in (keys..., branch, id) order, NULL being smallest; with
    ``reverse`` the keys come already turned round, and branch and id ties turn with them."""
    alternatives, equal_so_far, not_before = _beyond_keys(keys, id_expr, cursor, few)
    *_, cursor_branch, cursor_id = cursor
    # Ties on every key: branch, then id, break them.
    cursor_id_bound = sa.bindparam("cursor_id", cursor_id, type_=id_expr.type)
    if (branch_index < cursor_branch) if reverse else (branch_index > cursor_branch):
        alternatives.append(all_of(*equal_so_far))
    elif branch_index == cursor_branch and not any(expr.compare(id_expr) for expr, _ in keys):
        # Sorted by the id itself (``_id``, how exports page), a tie on every key is the same
        # row: no alternative, so the predicate is ``id > ?`` alone, which engines answer from
        # the id's index (with the OR, SQLite scanned it from its start on every page).
        alternatives.append(all_of(*equal_so_far, id_expr < cursor_id_bound if reverse else id_expr > cursor_id_bound))
    return all_of(not_before, any_of(*alternatives))


def _after_shared(
    keys: list[tuple[ColumnElement, bool]],
    branch_column: ColumnElement,
    id_expr: ColumnElement,
    cursor: tuple,
    reverse: bool,
    few: bool = False,
) -> ColumnElement:
    """:func:`_after` for branches read in one pass: the branch is a column, compared like a key."""
    alternatives, equal_so_far, not_before = _beyond_keys(keys, id_expr, cursor, few)
    *_, cursor_branch, cursor_id = cursor
    cursor_id_bound = sa.bindparam("cursor_id", cursor_id, type_=id_expr.type)
    alternatives.append(all_of(*equal_so_far, branch_column < cursor_branch if reverse else branch_column > cursor_branch))
    beyond_id = id_expr < cursor_id_bound if reverse else id_expr > cursor_id_bound
    alternatives.append(all_of(*equal_so_far, branch_column == cursor_branch, beyond_id))
    return all_of(not_before, any_of(*alternatives))


def _beyond_keys(
    keys: list[tuple[ColumnElement, bool]], id_expr: ColumnElement, cursor: tuple, few: bool = False
) -> tuple[list, list, ColumnElement]:
    """The cursor checked against the keys, and the rows beyond it on some key: one alternative
    per key (equal on the keys before it), the equalities on every key, for the ties, and what
    every row after the cursor meets on the first key alone. Said on its own, that last one
    lets the engine seek an index to the cursor (ascending) or drop the rows before it as it
    reads them, before any join (descending: NULL, the smallest, also comes after)."""
    if len(cursor) != len(keys) + 2:
        raise InvalidRequest("_cursor does not fit this search; follow the Bundle's links", expression="_cursor")
    *values, _cursor_branch, cursor_id = cursor
    for (expr, _), value in zip([*keys, (id_expr, False)], [*values, cursor_id]):
        if value is not None and not _fits(expr, value):
            raise InvalidRequest("_cursor does not fit this search; follow the Bundle's links", expression="_cursor")
    # Values are named bind parameters (see cursor_params), so every later page of a search
    # can reuse one statement; which keys are NULL and the branch shape the statement itself.
    alternatives = []
    equal_so_far: list[ColumnElement] = []
    for i, ((expr, descending), value) in enumerate(zip(keys, values)):
        bound = None if value is None else sa.bindparam(f"cursor_k{i}", value, type_=expr.type)
        beyond = _less(expr, bound) if descending else _greater(expr, bound)
        alternatives.append(all_of(*equal_so_far, beyond))
        equal_so_far.append(expr.is_(None) if bound is None else expr == bound)
    not_before: ColumnElement = TRUE
    if keys:
        (expr, descending), bound = keys[0], sa.bindparam("cursor_k0", values[0], type_=keys[0][0].type) if values[0] is not None else None
        if descending:
            not_before = expr.is_(None) if bound is None else sa.or_(expr <= bound, expr.is_(None))
        elif bound is not None:
            not_before = FewPass(expr >= bound) if few else expr >= bound
    return alternatives, equal_so_far, not_before


_DATE_TEXT = re.compile(r"[0-9][0-9:. T+-]*")
_ZERO_DATE = re.compile(r"0000-00-00( 00:00:00)?")


def _iso(text: str) -> bool:
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _fits(expr: ColumnElement, value: object) -> bool:
    """A cursor value the database can compare with ``expr`` (cursors come back from clients)."""
    expected = python_type(expr)
    if isinstance(value, bool):
        return False
    if expected is object:  # a column read as stored (SQLite date columns): text or a number
        return isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 64)
    if isinstance(value, int):
        return expected in (int, float, None) and -(2**63) <= value < 2**63
    if isinstance(value, float):
        return expected in (float, None)
    if isinstance(value, str) and expected in (datetime.date, datetime.datetime):
        # A DATE/DATETIME sort key travels in the cursor as ISO text, or as the raw text of a
        # MySQL zero date ('0000-00-00 00:00:00'), which the driver cannot make a datetime.
        return len(value) <= 32 and _DATE_TEXT.fullmatch(value) is not None and bool(_ZERO_DATE.fullmatch(value) or _iso(value))
    return isinstance(value, str) and expected in (str, None)


def cursor_shape(cursor: tuple | None) -> tuple | None:
    """What of a cursor changes the statement (its branch, which keys are NULL); the rest is bound."""
    if cursor is None:
        return None
    if len(cursor) < 2 or not isinstance(cursor[-2], int) or isinstance(cursor[-2], bool) or cursor[-1] is None:
        raise InvalidRequest("_cursor does not fit this search; follow the Bundle's links", expression="_cursor")
    return (cursor[-2], tuple(value is None for value in cursor[:-2]))


def cursor_params(cursor: tuple | None) -> dict[str, object]:
    if cursor is None:
        return {}
    params: dict[str, object] = {f"cursor_k{i}": v for i, v in enumerate(cursor[:-2]) if v is not None}
    params["cursor_id"] = cursor[-1]
    return params


def _greater(expr: ColumnElement, bound: ColumnElement | None) -> ColumnElement:
    return expr.isnot(None) if bound is None else expr > bound


def _less(expr: ColumnElement, bound: ColumnElement | None) -> ColumnElement:
    return FALSE if bound is None else sa.or_(expr < bound, expr.is_(None))
