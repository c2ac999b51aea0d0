"""Plans run as prepared driver SQL (legacy_adapters/prepared.py) answer exactly what
SQLAlchemy's own execution answers, on each engine: the values fixed in the plan, lists
expanded, the values left open bound at each call, typed columns converted; the engine's
statement listeners see each statement, and driver failures reach legacy_errors as before."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from facade.errors import FacadeError, UpstreamUnavailable
from legacy_adapters.engines import create_legacy_engine, legacy_errors
from legacy_adapters.prepared import Prepared
from support.scratch_db import reader_url, scratch_database
from support.sql_statements import count_statements

ROWS = [
    {"id": 1, "name": "a%b", "born": date(1970, 1, 2), "amount": Decimal("1.50"), "blob": b"\x00\x01"},
    {"id": 2, "name": "b", "born": date(1980, 3, 4), "amount": Decimal("20.25"), "blob": None},
    {"id": 3, "name": "c", "born": None, "amount": None, "blob": b"\xff"},
    {"id": 4, "name": "d", "born": date(2001, 12, 31), "amount": Decimal("0.00"), "blob": b"\x10"},
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def legacy(request, tmp_path_factory):
    engine_name = request.param
    service = {"postgresql": "postgres_url", "mariadb": "mariadb_url"}.get(engine_name)
    service_url = request.getfixturevalue(service) if service else None
    with scratch_database(engine_name, tmp_path_factory.mktemp(f"prepared-{engine_name}"), service_url, prefix="prepared") as url:
        writer = sa.create_engine(url, poolclass=sa.NullPool)
        metadata = sa.MetaData()
        sa.Table(
            "things",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(20)),
            sa.Column("born", sa.Date),
            sa.Column("amount", sa.Numeric(10, 2)),
            sa.Column("blob", sa.LargeBinary),
        )
        metadata.create_all(writer)
        with writer.begin() as connection:
            connection.execute(metadata.tables["things"].insert(), ROWS)
        writer.dispose()
        engine = create_legacy_engine(reader_url(url))
        yield engine, sa.Table("things", sa.MetaData(), autoload_with=engine)
        engine.dispose()


def _statements(things: sa.Table) -> list[tuple[sa.Select | sa.CompoundSelect, dict]]:
    """Statements of the shapes plans have, each with the values a call leaves open."""
    c = things.c
    cursor = sa.bindparam("cursor_id", type_=c.id.type)
    return [
        (sa.select(c.id, c.name).where(c.id == sa.bindparam("b0_0", type_=c.id.type)), {"b0_0": 2}),
        (sa.select(things).where(c.id.in_([1, 3, 4]), c.id > cursor).order_by(c.id), {"cursor_id": 1}),
        (sa.select(things).where(c.name.in_(["a%b", "d"])).order_by(c.id), {}),  # a driver's % escaping
        (sa.select(c.born, c.amount).where(c.born > date(1975, 1, 1)).order_by(c.born), {}),  # typed bound value
        (
            sa.union_all(
                sa.select(sa.literal(0).label("b"), c.id).where(c.id.in_([1, 2])),
                sa.select(sa.literal(1).label("b"), c.id).where(c.id.in_([3]), c.id > cursor),
            ).order_by("id"),
            {"cursor_id": 0},
        ),
    ]


def test_rows_are_what_sqlalchemy_answers(legacy):
    engine, things = legacy
    for statement, params in _statements(things):
        with engine.connect() as connection:
            expected = [tuple(row) for row in connection.execute(statement, params)]
            assert Prepared.compile(statement, engine.dialect).rows(connection, params) == expected
    assert expected, "the last statement matched rows"


def test_typed_columns_come_back_converted(legacy):
    engine, things = legacy
    with engine.connect() as connection:
        rows = Prepared.compile(sa.select(things).order_by(things.c.id), engine.dialect).rows(connection)
    assert [row[2] for row in rows] == [r["born"] for r in ROWS]  # a date on SQLite too, where the driver answers text
    assert [row[3] for row in rows] == [r["amount"] for r in ROWS]


def test_open_values_are_bound_at_each_call(legacy):
    engine, things = legacy
    prepared = Prepared.compile(sa.select(things.c.name).where(things.c.id == sa.bindparam("b0_0", type_=things.c.id.type)), engine.dialect)
    with engine.connect() as connection:
        assert [prepared.rows(connection, {"b0_0": i}) for i in (1, 4, 9)] == [[("a%b",)], [("d",)], []]


def test_listeners_see_each_statement(legacy):
    engine, things = legacy
    prepared = Prepared.compile(sa.select(things.c.id).where(things.c.id.in_([1, 2])), engine.dialect)
    with count_statements(engine) as sent, engine.connect() as connection:
        prepared.rows(connection)
        prepared.rows(connection)
    assert sent == [prepared.sql, prepared.sql]


def test_a_failing_statement_is_a_facade_error(legacy):
    engine, _ = legacy
    missing = sa.table("no_such_table", sa.column("id"))
    with pytest.raises(FacadeError) as raised, legacy_errors(), engine.connect() as connection:
        Prepared.compile(sa.select(missing.c.id), engine.dialect).rows(connection)
    assert "no_such_table" not in str(raised.value)


def test_a_lost_connection_is_unavailable_and_replaced(postgres_url, tmp_path):
    with scratch_database("postgresql", tmp_path, postgres_url, prefix="prepared_lost") as url:
        engine = create_legacy_engine(url)
        prepared = Prepared.compile(sa.select(sa.literal(1)), engine.dialect)
        with engine.connect() as connection:
            backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
        with admin.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
        admin.dispose()
        with pytest.raises(UpstreamUnavailable), legacy_errors(), engine.connect() as connection:
            prepared.rows(connection)
        with engine.connect() as connection:  # the pool dropped the dead connection
            assert prepared.rows(connection) == [(1,)]
        engine.dispose()


def test_statements_of_one_shape_share_its_sql_and_keep_their_values(legacy):
    """Statements that differ only in their values (an id, a list of any length) compile once;
    each answers with its own values, as SQLAlchemy's execution does."""
    from legacy_adapters.prepared import Shapes

    engine, things = legacy
    c = things.c
    shapes = Shapes(engine.dialect)
    statements = [
        sa.select(c.id).where(c.name == "b"),
        sa.select(c.id).where(c.name == "d"),
        sa.select(c.id).where(c.id.in_([1, 3]), c.born > date(1960, 1, 1)).order_by(c.id),
        sa.select(c.id).where(c.id.in_([2, 3, 4]), c.born > date(1990, 1, 1)).order_by(c.id),
    ]
    with engine.connect() as connection:
        for statement in statements:
            assert shapes.prepare(statement).rows(connection) == [tuple(row) for row in connection.execute(statement)]
    assert len(shapes) == 1  # an IN list's length is in the SQL: those two are compiled each alone


def test_shapes_keep_no_statement_alive(legacy):
    """A shape keeps the SQL and where each value goes, not the compiled form and its expression
    tree (hundreds of KB for a page over several sources), nor the values of its first statement."""
    import gc
    import weakref

    from legacy_adapters.prepared import Shapes

    engine, things = legacy
    shapes = Shapes(engine.dialect)
    statement = sa.select(things).where(things.c.name == "b", things.c.id > sa.bindparam("cursor_id", type_=things.c.id.type))
    alive = weakref.ref(statement)
    prepared = shapes.prepare(statement)
    del statement
    gc.collect()
    assert alive() is None and len(shapes) == 1
    assert "b" not in [constant for _, _, constant in next(iter(shapes._shapes.values())).slots]
    with engine.connect() as connection:
        assert [row[0] for row in prepared.rows(connection, {"cursor_id": 0})] == [2]


def test_values_a_cache_key_does_not_carry_are_compiled_alone(legacy):
    """Values given with ``.params()`` or computed by a callable are not among a cache key's bound
    parameters: such statements never borrow another's compiled form, and keep their own values."""
    from legacy_adapters.prepared import Shapes

    engine, things = legacy
    c = things.c
    shapes = Shapes(engine.dialect)
    given = [sa.select(c.name).where(c.id == sa.bindparam("x")).params(x=v) for v in (2, 4)]
    computed = [sa.select(c.name).where(c.id == sa.bindparam("y", callable_=lambda v=v: v)) for v in (1, 4)]
    with engine.connect() as connection:
        assert [shapes.prepare(s).rows(connection) for s in given] == [[("b",)], [("d",)]]
        assert [shapes.prepare(s).rows(connection) for s in computed] == [[("a%b",)], [("d",)]]
    assert len(shapes) == 0
