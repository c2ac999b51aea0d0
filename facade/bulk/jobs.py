"""Export jobs as rows of the state database: any worker or host answers their status, serves
their files, and takes over one whose runner died.

A runner *claims* a job with a lease (``lease_owner`` until ``lease_until``); every checkpoint
renews it and records, in the same statement, the resume position and the files written so
far. A checkpoint that matches no row (the lease was lost, or the job was cancelled) tells
the runner to stop. A claim is a conditional UPDATE, so two runners never both win: on
PostgreSQL the candidate row is first locked ``FOR UPDATE SKIP LOCKED`` (runners do not queue
on each other); SQLite serialises writers on its database lock.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from facade.state import metadata

QUEUED, RUNNING, COMPLETE, FAILED, CANCELLED = "queued", "running", "complete", "failed", "cancelled"
UNFINISHED = (QUEUED, RUNNING)
_LOCK_SPACE = 0x0B17  # advisory locks of kick-offs: (this space, a hash of the client id)

bulk_job = sa.Table(
    "bulk_job",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("client_id", sa.String(255)),  # who may poll, download and cancel ("" when access control is off)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("request_url", sa.Text, nullable=False),  # the kick-off URL, for the manifest
    sa.Column("request", sa.Text, nullable=False),  # ExportRequest as JSON
    sa.Column("grant", sa.Text, nullable=False),  # the token's claims that decide what it may read
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("transaction_time", sa.String(40), nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    sa.Column("position", sa.Text),  # where to resume: type index, patient batch, keyset cursor
    sa.Column("outputs", sa.Text, nullable=False, default="[]"),  # files written: name, type, count, bytes
    sa.Column("progress", sa.String(100)),
    sa.Column("error", sa.Text),  # why a failed job failed (no PHI: an error class and its message)
    sa.Column("finished_at", sa.Float),
    sa.Column("expires_at", sa.Float),
    sa.Column("polled_at", sa.Float),  # the client's last status poll that was answered (see ``poll``)
    sa.Index("ix_bulk_job_status", "status", "lease_until"),
    sa.Index("ix_bulk_job_client", "client_id", "status"),
)


@dataclass
class Job:
    id: str
    client_id: str
    status: str
    request_url: str
    request: dict
    grant: dict
    created_at: float
    transaction_time: str
    position: dict | None = None
    outputs: list[dict] = field(default_factory=list)
    progress: str | None = None
    error: str | None = None
    finished_at: float | None = None
    expires_at: float | None = None

    @classmethod
    def from_row(cls, row: sa.Row) -> Job:
        return cls(
            id=row.id,
            client_id=row.client_id or "",
            status=row.status,
            request_url=row.request_url,
            request=orjson.loads(row.request),
            grant=orjson.loads(row.grant),
            created_at=row.created_at,
            transaction_time=row.transaction_time,
            position=orjson.loads(row.position) if row.position else None,
            outputs=orjson.loads(row.outputs or "[]"),
            progress=row.progress,
            error=row.error,
            finished_at=row.finished_at,
            expires_at=row.expires_at,
        )


class JobStore:
    def __init__(self, engine: sa.Engine, *, expiry: int = 3600, lease_seconds: float = 30.0):
        self.engine = engine
        self.expiry = expiry
        self.lease_seconds = lease_seconds

    # -- the client's side --------------------------------------------------------------

    def create(self, client_id: str, request_url: str, request: dict, grant: dict, *, limit: int) -> Job | None:
        """A queued job, or None when the client already has ``limit`` unfinished ones."""
        now = time.time()
        job = Job(
            id=secrets.token_hex(16),
            client_id=client_id,
            status=QUEUED,
            request_url=request_url,
            request=request,
            grant=grant,
            created_at=now,
            transaction_time=datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        unfinished = (
            sa.select(sa.func.count())
            .select_from(bulk_job)
            .where(bulk_job.c.client_id == client_id, bulk_job.c.status.in_(UNFINISHED))
            .scalar_subquery()
        )
        values = {
            "id": job.id,
            "client_id": client_id,
            "status": QUEUED,
            "request_url": request_url,
            "request": orjson.dumps(request).decode(),
            "grant": orjson.dumps(grant).decode(),
            "created_at": now,
            "transaction_time": job.transaction_time,
            "outputs": "[]",
        }
        # The count and the insert are one statement, so SQLite (which takes its write lock before
        # the statement reads) never lets two kick-offs both pass. PostgreSQL reads a snapshot, so
        # simultaneous kick-offs of one client first queue on a lock of their own.
        row = sa.select(*(sa.literal(value, bulk_job.c[name].type) for name, value in values.items())).where(unfinished < limit)
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_SPACE, sa.func.hashtext(client_id))))
            done = connection.execute(bulk_job.insert().from_select(list(values), row))
        if done.rowcount != 1:
            return None
        return job

    def get(self, job_id: str, client_id: str | None = None) -> Job | None:
        """The job, if it exists, has not expired or been cancelled, and (when ``client_id`` is
        given) belongs to that client: to anyone else it does not exist."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(bulk_job).where(bulk_job.c.id == job_id)).first()
        if row is None or row.status == CANCELLED or (row.expires_at is not None and row.expires_at < time.time()):
            return None
        if client_id is not None and (row.client_id or "") != client_id:
            return None
        return Job.from_row(row)

    def poll(self, job_id: str, interval: float) -> bool:
        """Record a status poll; False when the last answered one was under ``interval`` seconds
        ago. One conditional UPDATE, so polls arriving at once on several workers count once."""
        now = time.time()
        with self.engine.begin() as connection:
            done = connection.execute(
                bulk_job.update()
                .where(bulk_job.c.id == job_id, sa.or_(bulk_job.c.polled_at.is_(None), bulk_job.c.polled_at <= now - interval))
                .values(polled_at=now)
            )
        return done.rowcount == 1

    def all(self, client_id: str | None = None) -> list[Job]:
        query = sa.select(bulk_job).order_by(bulk_job.c.created_at)
        if client_id is not None:
            query = query.where(bulk_job.c.client_id == client_id)
        with self.engine.connect() as connection:
            return [Job.from_row(row) for row in connection.execute(query)]

    def cancel(self, job_id: str) -> bool:
        """Cancelled (its files are removed by the runner's sweep); False if there was nothing to cancel."""
        with self.engine.begin() as connection:
            done = connection.execute(
                bulk_job.update()
                .where(bulk_job.c.id == job_id, bulk_job.c.status != CANCELLED)
                .values(status=CANCELLED, lease_owner=None, finished_at=time.time(), expires_at=time.time())
            )
        return done.rowcount == 1

    # -- the runner's side -------------------------------------------------------------

    def claim(self, owner: str, only: str | None = None) -> Job | None:
        """The oldest queued job (or the job ``only``), or a running one whose lease ran out (its runner died)."""
        now = time.time()
        claimable = sa.and_(bulk_job.c.status.in_(UNFINISHED), sa.or_(bulk_job.c.lease_until.is_(None), bulk_job.c.lease_until < now))
        if only is not None:
            claimable = sa.and_(claimable, bulk_job.c.id == only)
        with self.engine.begin() as connection:
            candidate = sa.select(bulk_job.c.id).where(claimable).order_by(bulk_job.c.created_at).limit(1)
            if connection.dialect.name == "postgresql":
                candidate = candidate.with_for_update(skip_locked=True)
            job_id = connection.execute(candidate).scalar()
            if job_id is None:
                return None
            won = connection.execute(
                bulk_job.update()
                .where(bulk_job.c.id == job_id, claimable)
                .values(status=RUNNING, lease_owner=owner, lease_until=now + self.lease_seconds)
            )
            if won.rowcount != 1:
                return None
            row = connection.execute(sa.select(bulk_job).where(bulk_job.c.id == job_id)).one()
        return Job.from_row(row)

    def checkpoint(self, job: Job, owner: str, position: dict | None, outputs: list[dict], progress: str) -> bool:
        """Record progress and renew the lease, atomically; False: stop (lease lost or cancelled)."""
        with self.engine.begin() as connection:
            done = connection.execute(
                bulk_job.update()
                .where(bulk_job.c.id == job.id, bulk_job.c.lease_owner == owner, bulk_job.c.status == RUNNING)
                .values(
                    position=orjson.dumps(position).decode() if position is not None else None,
                    outputs=orjson.dumps(outputs).decode(),
                    progress=progress[:99],
                    lease_until=time.time() + self.lease_seconds,
                )
            )
        return done.rowcount == 1

    def finish(self, job: Job, owner: str, status: str, outputs: list[dict], error: str | None = None) -> bool:
        now = time.time()
        with self.engine.begin() as connection:
            done = connection.execute(
                bulk_job.update()
                .where(bulk_job.c.id == job.id, bulk_job.c.lease_owner == owner, bulk_job.c.status == RUNNING)
                .values(
                    status=status,
                    outputs=orjson.dumps(outputs).decode(),
                    error=error,
                    lease_owner=None,
                    lease_until=None,
                    finished_at=now,
                    expires_at=now + self.expiry,
                    progress=None,
                )
            )
        return done.rowcount == 1

    def release(self, job: Job, owner: str) -> None:
        """Give the job back (the runner is stopping): another runner resumes it at once."""
        with self.engine.begin() as connection:
            connection.execute(
                bulk_job.update()
                .where(bulk_job.c.id == job.id, bulk_job.c.lease_owner == owner, bulk_job.c.status == RUNNING)
                .values(lease_owner=None, lease_until=None)
            )

    def sweep(self) -> list[str]:
        """Forget expired and cancelled jobs; their ids, whose files the caller removes."""
        now = time.time()
        gone = sa.and_(bulk_job.c.expires_at.is_not(None), bulk_job.c.expires_at < now)
        with self.engine.begin() as connection:
            ids = list(connection.execute(sa.select(bulk_job.c.id).where(gone)).scalars())
            if ids:
                connection.execute(bulk_job.delete().where(bulk_job.c.id.in_(ids)))
        return ids
