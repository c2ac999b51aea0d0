"""Append-only audit records in the state database, chained by hash.

Each record's hash covers the previous record's hash, its sequence number and its
body (canonical JSON), so editing, deleting or reordering records breaks the chain
and ``verify`` finds it. A one-row head table holds the last sequence number and
hash: appending locks that row with an ``UPDATE`` (PostgreSQL row lock, SQLite
write lock) for one short transaction — inserts and head update — and nothing
else; readers are not blocked. The head also reveals a truncated tail.

How a record reaches the chain is the deployment's choice (``[audit] audit_delivery``):
``spool`` (the default, spool.py) writes it to a file the worker owns before the
response leaves and ships it into the chain within ``SHIP_INTERVAL``; ``commit``
(writer.py) returns only once the transaction holding it has committed, sharing
that transaction with every concurrent request of the process. Reads (``get``,
``search``, ``verify``) first ship what this process has spooled, so a worker
reads its own records.

The chain proves integrity against edits made through the database, not against
someone who rewrites the whole chain: keep the head hash that ``audit verify``
prints somewhere else (a ticket, a log shipper) to pin it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson
import sqlalchemy as sa

from facade.audit.spool import AuditSpool
from facade.audit.writer import GroupCommitWriter
from facade.state import WriterLock, create_state_tables, metadata

GENESIS = "0" * 64
MAX_IDS = 1000  # ids recorded per search page (a page is at most max_count)

audit_record = sa.Table(
    "audit_record",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("recorded", sa.String(32), nullable=False, index=True),  # ISO 8601 UTC, sorts as text
    sa.Column("kind", sa.String(16), nullable=False),  # rest | token
    sa.Column("patient", sa.String(255), index=True),
    sa.Column("agent", sa.String(255), index=True),  # client_id
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
audit_spool = sa.Table(  # how far each spool file has been shipped (spool.py): exactly once
    "audit_spool",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("shipped", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
)
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


# Built once: constructing statements costs more than running them on SQLite.
_BUMP_HEAD = (audit_head.update().where(audit_head.c.id == 1)
              .values(seq=audit_head.c.seq + sa.bindparam("count")).returning(audit_head.c.seq, audit_head.c.hash))
_SET_HEAD_HASH = audit_head.update().where(audit_head.c.id == 1).values(hash=sa.bindparam("new_hash"))
_COLUMNS = ("seq", "recorded", "kind", "patient", "agent", "body", "prev_hash", "hash")


class _DriverInsert:
    """The record INSERT compiled once per database dialect and run as the driver's own
    ``executemany`` over plain tuples or dicts: SQLAlchemy's per-row parameter processing
    cost the shipper more than the insert itself. Every column is text or an integer, which
    every driver binds as is."""

    def __init__(self, dialect: sa.Dialect):
        compiled = audit_record.insert().compile(dialect=dialect, column_keys=list(_COLUMNS))
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup) if compiled.positional else None

    def parameters(self, rows: list[dict]) -> list:
        if self.order is None:
            return rows
        order = self.order
        return [tuple(row[name] for name in order) for row in rows]


_DRIVER_INSERTS: dict[str, _DriverInsert] = {}


def chain_hash(prev_hash: str, seq: int, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{body}".encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


DELIVERIES = ("spool", "commit")


class AuditStore:
    def __init__(self, engine: sa.Engine, *, delivery: str = "commit", spool_dir: str | None = None, **writer_options):
        """``delivery``: ``commit`` (each record committed before ``append`` returns) or ``spool``
        (written to a file under ``spool_dir`` and shipped by a background thread)."""
        if delivery not in DELIVERIES:
            raise ValueError(f"audit delivery must be one of {', '.join(DELIVERIES)}, not {delivery!r}")
        self.engine = engine
        self._created = False
        self._lock = threading.Lock()
        self._writer_lock = WriterLock(engine)
        self.writer = GroupCommitWriter(self.write_batch, **writer_options)
        self.spool = AuditSpool(spool_dir or default_spool_dir(engine), self.ship, self.shipped_offset) if delivery == "spool" else None

    def ensure(self) -> None:
        """Create the state tables on first use (once per process)."""
        if not self._created:
            with self._lock:
                if not self._created:
                    self.create()
                    self._created = True

    def create(self) -> None:
        """Create the state tables and the audit head row (idempotent, safe when several workers
        start at once)."""
        create_state_tables(self.engine)
        try:
            with self.engine.begin() as connection:
                if connection.execute(sa.select(audit_head.c.id)).first() is None:
                    connection.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS))
        except sa.exc.IntegrityError:
            pass  # another worker created it first

    def append(self, record: dict) -> int | None:
        """Store one record: its sequence number once committed (``commit``), None once
        spooled (``spool``; the number is given when it is shipped).

        Raises facade.audit.writer.AuditUnavailable if it could not be stored."""
        record = {"recorded": now_iso(), **record}
        body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        if self.spool is not None:
            self.spool.append(body)  # no newline in orjson's output: one line per record
            return None
        self.ensure()
        return self.writer.submit(_row(record, body.decode()))

    def write_batch(self, rows: list[dict]) -> list[int]:
        """Chain and insert ``rows`` in order, in one transaction; their sequence numbers."""
        with self._writer_lock.held(), self.engine.begin() as connection:
            return self._chain(connection, rows)

    def ship(self, spool_name: str, offset: int, lines: list[bytes]) -> None:
        """Chain the spooled records and store how far ``spool_name`` is shipped, in one transaction."""
        self.ensure()
        rows = [_spooled_row(line) for line in lines]
        with self._writer_lock.held(), self.engine.begin() as connection:
            self._chain(connection, rows)
            stored = connection.execute(audit_spool.update().where(audit_spool.c.name == spool_name).values(shipped=offset))
            if stored.rowcount == 0:
                connection.execute(audit_spool.insert().values(name=spool_name, shipped=offset))

    def shipped_offset(self, spool_name: str) -> int:
        self.ensure()
        with self.engine.connect() as connection:
            return connection.execute(sa.select(audit_spool.c.shipped).where(audit_spool.c.name == spool_name)).scalar() or 0

    def flush(self) -> None:
        """Ship what this process (and any ended worker) has spooled."""
        if self.spool is not None:
            self.spool.flush()

    def close(self) -> None:
        """Refuse later records; ship (spool) or commit (writer) what is pending."""
        if self.spool is not None:
            self.spool.close()
        self.writer.close()

    @staticmethod
    def _chain(connection: sa.Connection, rows: list[dict]) -> list[int]:
        # The UPDATE takes the lock first, so concurrent writers queue here, not deadlock.
        last, prev_hash = connection.execute(_BUMP_HEAD, {"count": len(rows)}).one()
        chained = []
        for seq, row in enumerate(rows, start=last - len(rows) + 1):
            digest = chain_hash(prev_hash, seq, row["body"])
            chained.append({**row, "seq": seq, "prev_hash": prev_hash, "hash": digest})
            prev_hash = digest
        insert = _DRIVER_INSERTS.get(connection.dialect.name)
        if insert is None:
            insert = _DRIVER_INSERTS[connection.dialect.name] = _DriverInsert(connection.dialect)
        connection.exec_driver_sql(insert.sql, insert.parameters(chained))
        connection.execute(_SET_HEAD_HASH, {"new_hash": prev_hash})
        return [row["seq"] for row in chained]

    def get(self, seq: int) -> dict | None:
        self.ensure()
        self.flush()
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(audit_record.c.seq, audit_record.c.body).where(audit_record.c.seq == seq)).first()
        return None if row is None else _loaded(row)

    def search(self, *, since: str | None = None, before: str | None = None, patient: str | None = None,
               agent: str | None = None, after_seq: int | None = None, limit: int = 20) -> list[dict]:
        """Newest first; ``after_seq`` continues a page (keyset on the sequence number)."""
        self.ensure()
        self.flush()
        query = sa.select(audit_record.c.seq, audit_record.c.body)
        if since is not None:
            query = query.where(audit_record.c.recorded >= since)
        if before is not None:
            query = query.where(audit_record.c.recorded < before)
        if patient is not None:
            query = query.where(audit_record.c.patient == patient)
        if agent is not None:
            query = query.where(audit_record.c.agent == agent)
        if after_seq is not None:
            query = query.where(audit_record.c.seq < after_seq)
        query = query.order_by(audit_record.c.seq.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_loaded(row) for row in connection.execute(query)]

    def verify(self) -> VerifyResult:
        self.ensure()
        self.flush()
        result = VerifyResult()
        expected_seq, prev_hash = 1, GENESIS
        columns = [audit_record.c[name] for name in ("seq", "recorded", "kind", "patient", "agent", "body", "prev_hash", "hash")]
        with self.engine.connect() as connection:
            rows = connection.execution_options(yield_per=1000).execute(sa.select(*columns).order_by(audit_record.c.seq))
            for seq, recorded, kind, patient, agent, body, stored_prev, stored_hash in rows:
                if seq != expected_seq:
                    result.problems.append(f"record {expected_seq}" + (f"..{seq - 1}" if seq > expected_seq + 1 else "") + " missing (deleted?)")
                if stored_prev != prev_hash:
                    result.problems.append(f"record {seq}: does not follow the record before it (reordered or a record removed)")
                if chain_hash(stored_prev, seq, body) != stored_hash:
                    result.problems.append(f"record {seq}: content does not match its hash (edited)")
                else:
                    record = orjson.loads(body)
                    if (recorded, kind, patient, agent) != (record.get("recorded"), record.get("kind", "rest"), record.get("patient"), record.get("client_id")):
                        result.problems.append(f"record {seq}: indexed columns differ from its hashed content (edited)")
                expected_seq, prev_hash = seq + 1, stored_hash
                result.count += 1
            head = connection.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
        if head is None:
            result.problems.append("the audit head is missing")
        elif (head.seq, head.hash) != (expected_seq - 1, prev_hash):
            result.problems.append(f"the head says {head.seq} records, the chain ends at {expected_seq - 1} (records removed from the end?)")
        result.head_hash = prev_hash
        return result


@dataclass
class VerifyResult:
    count: int = 0
    problems: list[str] = field(default_factory=list)
    head_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return not self.problems


def _row(record: dict, body: str) -> dict:
    """The audit_record columns of a record: its indexed fields and its canonical JSON."""
    return {"recorded": record["recorded"], "kind": record.get("kind", "rest"),
            "patient": record.get("patient"), "agent": record.get("client_id"), "body": body}


def _spooled_row(line: bytes) -> dict:
    """The row of a spooled record. A line that is not a record (the spool was edited on
    disk) is chained as a record saying so, with its text: evidence kept, shipping goes on."""
    try:
        record = orjson.loads(line)
        if isinstance(record, dict) and isinstance(record.get("recorded"), str):
            return _row(record, line.decode())
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        pass
    record = {"kind": "spool", "recorded": now_iso(), "error": "unreadable spool line", "line": line.decode(errors="replace")}
    return _row(record, orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode())


def default_spool_dir(engine: sa.Engine) -> str:
    """Beside a SQLite state file; else in the data directory, one folder per state database."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:":
        return f"{database}-audit-spool"
    from facade.config import data_home

    url = engine.url.render_as_string(hide_password=True)
    return str(data_home() / "audit-spool" / hashlib.sha256(url.encode()).hexdigest()[:16])


def _loaded(row: sa.Row) -> dict:
    record = orjson.loads(row.body)
    record["seq"] = row.seq
    return record


def iter_ids(resources: list[dict]) -> Iterator[str]:
    for resource in resources[:MAX_IDS]:
        yield f"{resource['resourceType']}/{resource['id']}"
