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

Each record also carries its *writer* (a spool file, or a process's commit writer) and
its number in that writer's sequence, inside the hashed content. The chain alone shows
edits, deletions and reordering; the numbering also shows a record that never reached
the chain, or reached it twice, even when the chain itself is consistent. The store
keeps one copy of each (writer, number): a second one is not chained.

The chain proves integrity against edits made through the database, not against
someone who rewrites the whole chain: keep the head hash that ``audit verify``
prints somewhere else (a ticket, a log shipper) to pin it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from facade.audit.spool import AuditSpool
from facade.audit.writer import GroupCommitWriter, new_writer_id
from facade.state import WriterLock, create_state_tables, metadata

log = logging.getLogger("facade.audit.store")

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
    # Who wrote the record (a spool file, a process's commit writer) and its number in that
    # writer's sequence, copied from the hashed body: a second copy is refused, and verify
    # reports a writer's missing or repeated numbers.
    sa.Column("writer", sa.String(128)),
    sa.Column("wseq", sa.BigInteger().with_variant(sa.Integer, "sqlite")),
    sa.Index("audit_record_writer_wseq", "writer", "wseq", unique=True),
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
_BUMP_HEAD = (
    audit_head.update()
    .where(audit_head.c.id == 1)
    .values(seq=audit_head.c.seq + sa.bindparam("count"))
    .returning(audit_head.c.seq, audit_head.c.hash)
)
_SET_HEAD_HASH = audit_head.update().where(audit_head.c.id == 1).values(hash=sa.bindparam("new_hash"))
_COLUMNS = ("seq", "recorded", "kind", "patient", "agent", "body", "prev_hash", "hash", "writer", "wseq")


class _DriverInsert:
    """The record INSERT compiled once per database dialect and run through the driver itself:
    SQLAlchemy's per-row parameter processing cost the shipper more than the insert itself.
    Every column is text or an integer, which every driver binds as is.

    On PostgreSQL (psycopg2) the rows go in with ``COPY``: an ``executemany`` is one round
    trip per row (about 5,000 records/s on loopback) and a many-row INSERT still parses
    every row (about 17,000/s); COPY took about 90,000/s."""

    def __init__(self, dialect: sa.Dialect):
        compiled = audit_record.insert().compile(dialect=dialect, column_keys=list(_COLUMNS))
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.copy = dialect.driver == "psycopg2"

    def run(self, connection: sa.Connection, rows: list[dict]) -> None:
        if self.copy:
            text = "".join("\t".join(_copy_text(row[name]) for name in _COLUMNS) + "\n" for row in rows)
            dbapi = connection.connection.dbapi_connection
            assert dbapi is not None
            cursor = dbapi.cursor()
            try:
                cursor.copy_expert(_COPY, io.StringIO(text))
            finally:
                cursor.close()
            return
        parameters = rows if self.order is None else [tuple(row[name] for name in self.order) for row in rows]
        connection.exec_driver_sql(self.sql, parameters)


_COPY = f"COPY audit_record ({', '.join(_COLUMNS)}) FROM STDIN"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: object) -> str:
    """A value in COPY's text format."""
    return "\\N" if value is None else str(value).translate(_COPY_ESCAPES)


_DRIVER_INSERTS: dict[str, _DriverInsert] = {}


def chain_hash(prev_hash: str, seq: int, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{body}".encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


DELIVERIES = ("spool", "commit")


class AuditStore:
    def __init__(self, engine: sa.Engine, *, delivery: str = "commit", spool_dir: str | None = None, **writer_options: Any):
        """``delivery``: ``commit`` (each record committed before ``append`` returns) or ``spool``
        (written to a file under ``spool_dir`` and shipped by a background thread)."""
        if delivery not in DELIVERIES:
            raise ValueError(f"audit delivery must be one of {', '.join(DELIVERIES)}, not {delivery!r}")
        self.engine = engine
        self._created = False
        self._lock = threading.Lock()
        self._writer_lock = WriterLock(engine)
        self._sequence = _Sequence()  # numbers this process's committed records (delivery "commit")
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
        _index_writer_columns(self.engine)
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
        if self.spool is not None:
            self.spool.append(record)
            return None
        self.ensure()
        return self.writer.submit(record)

    def write_batch(self, records: list[dict]) -> list[int | None]:
        """Number, chain and insert ``records`` in order, in one transaction; their sequence numbers."""
        with self._sequence.lock:
            writer, last = self._sequence.current()
            try:
                with self._writer_lock.held(), self.engine.begin() as connection:
                    if last is None:  # after a failure: did that batch commit after all?
                        last = _last_number(connection, writer)
                    rows = []
                    for number, record in enumerate(records, start=last + 1):
                        numbered = {**record, "writer": writer, "wseq": number}
                        rows.append(_row(numbered, orjson.dumps(numbered, option=orjson.OPT_SORT_KEYS).decode()))
                    seqs = self._chain(connection, rows)
            except BaseException:
                # The commit may have failed, or succeeded with the answer lost on the way back:
                # the next batch reads how far this writer got instead of guessing.
                self._sequence.last = None
                raise
            self._sequence.last = last + len(records)
            return seqs

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

    def unshipped_bytes(self) -> int:
        """Records this process has spooled that are not in the chain yet (``commit``: none)."""
        return self.spool.unshipped_bytes() if self.spool is not None else 0

    def lag(self) -> float:
        """Seconds the oldest of them has waited."""
        return self.spool.lag() if self.spool is not None else 0.0

    def ping(self) -> None:
        """The chain's head can be read (the state database answers)."""
        with self.engine.connect() as connection:
            connection.execute(sa.select(audit_head.c.seq).where(audit_head.c.id == 1)).first()

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
    def _chain(connection: sa.Connection, rows: list[dict]) -> list[int | None]:
        """Chain ``rows`` after the head; a row whose writer already stored that number is not
        chained again (None in its place): the store keeps one copy of each record."""
        rows, kept = _not_yet_stored(connection, rows)
        if not rows:
            return [None] * len(kept)
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
        insert.run(connection, chained)
        connection.execute(_SET_HEAD_HASH, {"new_hash": prev_hash})
        seqs = iter(row["seq"] for row in chained)
        return [next(seqs) if keep else None for keep in kept]

    def get(self, seq: int) -> dict | None:
        self.ensure()
        self.flush()
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(audit_record.c.seq, audit_record.c.body).where(audit_record.c.seq == seq)).first()
        return None if row is None else _loaded(row)

    def search(
        self,
        *,
        since: str | None = None,
        before: str | None = None,
        patient: str | None = None,
        agent: str | None = None,
        seq: int | None = None,
        after_seq: int | None = None,
        limit: int = 20,
    ) -> list[dict]:
        """Newest first; ``after_seq`` continues a page (keyset on the sequence number)."""
        query = self._filtered(sa.select(audit_record.c.seq, audit_record.c.body), since, before, patient, agent, seq)
        if after_seq is not None:
            query = query.where(audit_record.c.seq < after_seq)
        query = query.order_by(audit_record.c.seq.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_loaded(row) for row in connection.execute(query)]

    def count(
        self,
        *,
        since: str | None = None,
        before: str | None = None,
        patient: str | None = None,
        agent: str | None = None,
        seq: int | None = None,
    ) -> int:
        query = self._filtered(sa.select(sa.func.count()).select_from(audit_record), since, before, patient, agent, seq)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()

    def _filtered(
        self, query: sa.Select, since: str | None, before: str | None, patient: str | None, agent: str | None, seq: int | None
    ) -> sa.Select:
        self.ensure()
        self.flush()  # a worker reads its own records
        for column, value, test in (
            (audit_record.c.recorded, since, "ge"),
            (audit_record.c.recorded, before, "lt"),
            (audit_record.c.patient, patient, "eq"),
            (audit_record.c.agent, agent, "eq"),
            (audit_record.c.seq, seq, "eq"),
        ):
            if value is not None:
                query = query.where(column >= value if test == "ge" else column < value if test == "lt" else column == value)
        return query

    def verify(self) -> VerifyResult:
        """Walk the chain: every hash, the head, and each writer's numbering (a record lost
        between its writer and the chain is a gap; one chained twice is a repeat).

        The head is read first and the walk stops at it: records up to the head were committed
        with it and never change, so a server appending meanwhile does not make the chain look
        cut. Records beyond the head that no append put there are reported at the end."""
        self.ensure()
        self.flush()
        result = VerifyResult()
        expected_seq, prev_hash = 1, GENESIS
        writers: dict[str, int] = {}  # writer → the last number seen
        columns = [audit_record.c[name] for name in _COLUMNS]
        with self.engine.connect() as connection:
            head = connection.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
            walk = sa.select(*columns).order_by(audit_record.c.seq)
            if head is not None:
                walk = walk.where(audit_record.c.seq <= head.seq)
            rows = connection.execution_options(yield_per=1000).execute(walk)
            for seq, recorded, kind, patient, agent, body, stored_prev, stored_hash, writer, wseq in rows:
                if seq != expected_seq:
                    result.problems.append(
                        f"record {expected_seq}" + (f"..{seq - 1}" if seq > expected_seq + 1 else "") + " missing (deleted?)"
                    )
                if stored_prev != prev_hash:
                    result.problems.append(f"record {seq}: does not follow the record before it (reordered or a record removed)")
                if chain_hash(stored_prev, seq, body) != stored_hash:
                    result.problems.append(f"record {seq}: content does not match its hash (edited)")
                else:
                    record = orjson.loads(body)
                    indexed = (recorded, kind, patient, agent, writer, wseq)
                    if indexed != (
                        record.get("recorded"),
                        record.get("kind", "rest"),
                        record.get("patient"),
                        record.get("client_id"),
                        record.get("writer"),
                        record.get("wseq"),
                    ):
                        result.problems.append(f"record {seq}: indexed columns differ from its hashed content (edited)")
                    elif writer is not None:
                        _check_numbering(result.problems, writers, seq, writer, wseq)
                expected_seq, prev_hash = seq + 1, stored_hash
                result.count += 1
            # One statement, so it sees the head and the records as of one moment.
            beyond = connection.execute(
                sa.select(sa.func.count())
                .select_from(audit_record)
                .where(audit_record.c.seq > sa.select(audit_head.c.seq).scalar_subquery())
            ).scalar_one()
        if beyond:
            result.problems.append(f"{beyond} record(s) lie beyond the head (added outside the store?)")
        if head is None:
            result.problems.append("the audit head is missing")
        elif (head.seq, head.hash) != (expected_seq - 1, prev_hash):
            result.problems.append(
                f"the head says {head.seq} records, the chain ends at {expected_seq - 1} (records removed from the end?)"
            )
        result.head_hash = prev_hash
        result.writers = len(writers)
        return result


def _check_numbering(problems: list[str], writers: dict[str, int], seq: int, writer: str, number: int) -> None:
    """A writer numbers its records 1, 2, 3… and they reach the chain in that order."""
    last = writers.get(writer, 0)
    if number == last + 1:
        writers[writer] = number
    elif number > last + 1:
        lost = f"{last + 1}" if number == last + 2 else f"{last + 1}..{number - 1}"
        problems.append(f"writer {writer}: record(s) {lost} never reached the chain (lost before record {seq})")
        writers[writer] = number
    else:
        problems.append(f"writer {writer}: record {number} chained again at record {seq} (a duplicate, or out of order)")


@dataclass
class VerifyResult:
    count: int = 0
    problems: list[str] = field(default_factory=list)
    head_hash: str = GENESIS
    writers: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class _Sequence:
    """This process's writer id and the last number it committed (delivery "commit"); None when
    a batch failed and the chain must say. A forked worker is a new writer, numbered from 1."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.writer = ""
        self.last: int | None = 0

    def current(self) -> tuple[str, int | None]:
        if self.pid != os.getpid():
            self.pid, self.writer, self.last = os.getpid(), new_writer_id(), 0
        return self.writer, self.last


def _last_number(connection: sa.Connection, writer: str) -> int:
    found = connection.execute(sa.select(sa.func.max(audit_record.c.wseq)).where(audit_record.c.writer == writer)).scalar()
    return int(found or 0)


class NumberingConflict(RuntimeError):
    """A writer's number is already in the chain with other content: never chained over, never dropped."""


def _row(record: dict, body: str) -> dict:
    """The audit_record columns of a record: its indexed fields and its canonical JSON."""
    return {
        "recorded": record["recorded"],
        "kind": record.get("kind", "rest"),
        "patient": record.get("patient"),
        "agent": record.get("client_id"),
        "body": body,
        "writer": record.get("writer"),
        "wseq": record.get("wseq"),
    }


def _spooled_row(line: bytes) -> dict:
    """The row of a spooled record. A line that is not a record (the spool was edited on
    disk) is chained as a record saying so, with its text: evidence kept, shipping goes on.
    It belongs to no writer; the record it replaced shows as a gap in its writer's numbers."""
    try:
        record = orjson.loads(line)
        if isinstance(record, dict) and isinstance(record.get("recorded"), str) and _numbering_fits(record):
            return _row(record, line.decode())
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        pass
    record = {"kind": "spool", "recorded": now_iso(), "error": "unreadable spool line", "line": line.decode(errors="replace")}
    return _row(record, orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode())


def _numbering_fits(record: dict) -> bool:
    writer, number = record.get("writer"), record.get("wseq")
    if writer is None and number is None:
        return True
    return isinstance(writer, str) and 0 < len(writer) <= 128 and type(number) is int and 0 < number < 2**63


def _not_yet_stored(connection: sa.Connection, rows: list[dict]) -> tuple[list[dict], list[bool]]:
    """``rows`` without those whose (writer, number) the chain already holds, and which were kept.
    One indexed range query per writer in the batch (a batch has one writer, or a few)."""
    ranges: dict[str, list[int]] = {}
    for row in rows:
        if row["writer"] is not None:
            ranges.setdefault(row["writer"], []).append(row["wseq"])
    stored: dict[tuple[str, int], str] = {}
    for writer, numbers in ranges.items():
        found = connection.execute(
            sa.select(audit_record.c.wseq, audit_record.c.body).where(
                audit_record.c.writer == writer, audit_record.c.wseq.between(min(numbers), max(numbers))
            )
        )
        stored.update(((writer, number), body) for number, body in found)
    seen_in_batch: dict[tuple[str, int], str] = {}
    kept_rows, kept = [], []
    for row in rows:
        key = (row["writer"], row["wseq"])
        earlier = stored.get(key, seen_in_batch.get(key)) if row["writer"] is not None else None
        if earlier is None:
            kept_rows.append(row)
            if row["writer"] is not None:
                seen_in_batch[key] = row["body"]
            kept.append(True)
        elif earlier == row["body"]:  # the same record shipped again: one copy is kept
            log.warning("audit record %s #%s is already in the chain: not chained again", row["writer"], row["wseq"])
            kept.append(False)
        else:  # fail closed: the shipment (or the requests it answers for) waits, nothing is lost
            raise NumberingConflict(f"audit record {row['writer']} #{row['wseq']} is in the chain with other content")
    return kept_rows, kept


def _index_writer_columns(engine: sa.Engine) -> None:
    """State databases made before records were numbered per writer got the two columns from
    create_state_tables (older records keep NULL there: they predate numbering); here, their
    unique index."""
    if "audit_record_writer_wseq" in {index["name"] for index in sa.inspect(engine).get_indexes("audit_record")}:
        return
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE UNIQUE INDEX audit_record_writer_wseq ON audit_record (writer, wseq)")
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        if "audit_record_writer_wseq" not in {index["name"] for index in sa.inspect(engine).get_indexes("audit_record")}:
            raise  # not a race with another worker doing the same


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
