"""The authorization server's state tables and the statements on them.

Everything a second worker or host must see lives here, never in process memory:
registered clients, sign-in flows in progress, authorization codes, refresh
tokens, EHR launch contexts and the replay cache of client-assertion ``jti``s.
Codes and tokens are stored as SHA-256 hashes, so a copy of this database
yields nothing a client could present. Times are UTC epoch seconds.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import orjson
import sqlalchemy as sa

from facade.state import StateStore, metadata
from facade.state.tables import revoked_token

client = sa.Table(
    "smart_client",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),  # JSON: the registration (secret hashed)
    sa.Column("created_at", sa.Integer, nullable=False),
)

pending = sa.Table(  # a sign-in in progress: authorize → login → (patient picker) → consent
    "smart_pending",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("csrf_hash", sa.String(64), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("username", sa.String(128)),
    sa.Column("patient", sa.String(128)),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("expires_at", sa.Integer, nullable=False),
)

authorization_code = sa.Table(
    "smart_authorization_code",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("grant", sa.Text, nullable=False),  # JSON: user, scope, context, PKCE challenge, nonce
    sa.Column("expires_at", sa.Integer, nullable=False),
    sa.Column("used", sa.Boolean, nullable=False, default=False),
    sa.Column("family", sa.String(64), nullable=False),  # tokens issued from this code share it
)

refresh_token = sa.Table(
    "smart_refresh_token",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("grant", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Integer, nullable=False),
    sa.Column("used", sa.Boolean, nullable=False, default=False),  # rotated: presenting it again is theft
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
    sa.Column("family", sa.String(64), nullable=False, index=True),
    sa.Column("access_jti", sa.String(64), nullable=False),  # the access token issued beside it
    sa.Column("access_expires_at", sa.Integer, nullable=False),
)

launch_context = sa.Table(  # EHR launch: what the EHR put in context for the app it launches
    "smart_launch",
    metadata,
    sa.Column("launch_hash", sa.String(64), primary_key=True),
    sa.Column("context", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Integer, nullable=False),
)

assertion_jti = sa.Table(  # RFC 7523 replay cache
    "smart_assertion_jti",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("jti", sa.String(255), primary_key=True),
    sa.Column("expires_at", sa.Integer, nullable=False),
)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def now() -> int:
    return int(time.time())


def dumps(value: dict) -> str:
    return orjson.dumps(value).decode()


def loads(text: str) -> dict:
    return orjson.loads(text)


class SmartStore:
    """Statements on the tables above; one short transaction each."""

    def __init__(self, state: StateStore):
        self.state = state
        self._ready = False

    @property
    def engine(self) -> sa.Engine:
        if not self._ready:  # created on first use, so building an app never touches the database
            self.state.create_tables()
            self._ready = True
        return self.state.engine

    # clients
    def put_client(self, client_id: str, document: dict) -> None:
        with self.engine.begin() as db:
            db.execute(sa.delete(client).where(client.c.client_id == client_id))
            db.execute(sa.insert(client).values(client_id=client_id, document=dumps(document), created_at=now()))

    def get_client(self, client_id: str) -> dict | None:
        with self.engine.connect() as db:
            text = db.scalar(sa.select(client.c.document).where(client.c.client_id == client_id))
        return loads(text) if text else None

    def list_clients(self) -> list[dict]:
        with self.engine.connect() as db:
            return [loads(text) for text in db.scalars(sa.select(client.c.document).order_by(client.c.client_id))]

    def remove_client(self, client_id: str) -> bool:
        with self.engine.begin() as db:
            return db.execute(sa.delete(client).where(client.c.client_id == client_id)).rowcount > 0

    # sign-in flows
    def start_pending(self, flow_id: str, csrf: str, params: dict, lifetime: int) -> None:
        with self.engine.begin() as db:
            db.execute(sa.delete(pending).where(pending.c.expires_at < now()))
            db.execute(
                sa.insert(pending).values(
                    id_hash=digest(flow_id),
                    csrf_hash=digest(csrf),
                    params=dumps(params),
                    failed_logins=0,
                    expires_at=now() + lifetime,
                )
            )

    def get_pending(self, flow_id: str) -> dict | None:
        with self.engine.connect() as db:
            row = db.execute(sa.select(pending).where(pending.c.id_hash == digest(flow_id), pending.c.expires_at >= now())).one_or_none()
        if row is None:
            return None
        return {"csrf_hash": row.csrf_hash, "params": loads(row.params), "username": row.username, "patient": row.patient}

    def count_failed_login(self, flow_id: str) -> int:
        """One more wrong password on this flow; returns the count so far."""
        with self.engine.begin() as db:
            db.execute(sa.update(pending).where(pending.c.id_hash == digest(flow_id)).values(failed_logins=pending.c.failed_logins + 1))
            return db.scalar(sa.select(pending.c.failed_logins).where(pending.c.id_hash == digest(flow_id))) or 0

    def update_pending(self, flow_id: str, **values: str | None) -> None:
        with self.engine.begin() as db:
            db.execute(sa.update(pending).where(pending.c.id_hash == digest(flow_id)).values(**values))

    def finish_pending(self, flow_id: str) -> None:
        with self.engine.begin() as db:
            db.execute(sa.delete(pending).where(pending.c.id_hash == digest(flow_id)))

    # authorization codes
    def save_code(self, code: str, client_id: str, grant: dict, lifetime: int) -> None:
        with self.engine.begin() as db:
            db.execute(sa.delete(authorization_code).where(authorization_code.c.expires_at < now() - 3600))
            db.execute(
                sa.insert(authorization_code).values(
                    code_hash=digest(code),
                    client_id=client_id,
                    grant=dumps(grant),
                    expires_at=now() + lifetime,
                    used=False,
                    family=secrets.token_hex(16),
                )
            )

    def consume_code(self, code: str, client_id: str) -> tuple[dict, str] | None:
        """(grant, family) once; a second presentation revokes what the first one obtained (RFC 6749 §4.1.2)."""
        code_hash = digest(code)
        with self.engine.begin() as db:
            row = db.execute(
                sa.select(authorization_code).where(
                    authorization_code.c.code_hash == code_hash, authorization_code.c.client_id == client_id
                )
            ).one_or_none()
            if row is None:
                return None
            if not self._claim_once(db, authorization_code.c.code_hash, code_hash, row.family):
                return None
            if row.expires_at < now():
                return None
        return loads(row.grant), row.family

    # refresh tokens
    def save_refresh_token(
        self, token: str, client_id: str, grant: dict, lifetime: int, family: str, access_jti: str, access_expires_at: int
    ) -> None:
        with self.engine.begin() as db:
            db.execute(
                sa.insert(refresh_token).values(
                    token_hash=digest(token),
                    client_id=client_id,
                    grant=dumps(grant),
                    expires_at=now() + lifetime,
                    used=False,
                    revoked=False,
                    family=family,
                    access_jti=access_jti,
                    access_expires_at=access_expires_at,
                )
            )

    def find_refresh_token(self, token: str) -> sa.Row | None:
        with self.engine.connect() as db:
            return db.execute(sa.select(refresh_token).where(refresh_token.c.token_hash == digest(token))).one_or_none()

    def rotate_refresh_token(self, token: str) -> sa.Row | None:
        """The live row for ``token``, marked used in the same transaction; reuse of a rotated token revokes its family."""
        token_hash = digest(token)
        with self.engine.begin() as db:
            row = db.execute(sa.select(refresh_token).where(refresh_token.c.token_hash == token_hash)).one_or_none()
            if row is None or row.revoked or row.expires_at < now():
                return None
            if not self._claim_once(db, refresh_token.c.token_hash, token_hash, row.family):
                return None
        return row

    def revoke_refresh_token(self, token: str) -> sa.Row | None:
        row = self.find_refresh_token(token)
        if row is not None:
            with self.engine.begin() as db:
                self._revoke_family(db, row.family)
        return row

    def revoke_client_tokens(self, client_id: str, username: str | None = None) -> int:
        """Revoke every refresh token (and its latest access token) of a client, optionally for one user."""
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(refresh_token.c.family, refresh_token.c.grant).where(
                    refresh_token.c.client_id == client_id, refresh_token.c.revoked.is_(False)
                )
            ).all()
        families = {row.family for row in rows if username is None or loads(row.grant).get("username") == username}
        with self.engine.begin() as db:
            for family in families:
                self._revoke_family(db, family)
        return len(families)

    def _claim_once(self, db: sa.Connection, key: sa.Column, value: str, family: str) -> bool:
        """Mark a single-use row (code or refresh token) used. A second use is a replay: the
        whole family of tokens issued from that grant is revoked and the claim fails."""
        table = key.table
        claimed = db.execute(sa.update(table).where(key == value, table.c.used.is_(False)).values(used=True)).rowcount
        if not claimed:
            self._revoke_family(db, family)
        return bool(claimed)

    def _revoke_family(self, db: sa.Connection, family: str) -> None:
        live = db.execute(
            sa.select(refresh_token.c.access_jti, refresh_token.c.access_expires_at).where(
                refresh_token.c.family == family, refresh_token.c.access_expires_at >= now()
            )
        ).all()
        db.execute(sa.update(refresh_token).where(refresh_token.c.family == family).values(revoked=True))
        for jti, expires_at in live:
            self._revoke_jti(db, jti, expires_at)

    # revoked access tokens
    def revoke_access_token(self, jti: str, expires_at: int) -> None:
        with self.engine.begin() as db:
            self._revoke_jti(db, jti, expires_at)

    def is_revoked(self, jti: str) -> bool:
        with self.engine.connect() as db:
            return db.scalar(sa.select(revoked_token.c.jti).where(revoked_token.c.jti == jti)) is not None

    @staticmethod
    def _revoke_jti(db: sa.Connection, jti: str, expires_at: int) -> None:
        exists = db.scalar(sa.select(revoked_token.c.jti).where(revoked_token.c.jti == jti))
        if exists is None:
            db.execute(sa.insert(revoked_token).values(jti=jti, expires_at=int(expires_at)))

    # EHR launch contexts
    def save_launch(self, launch: str, context: dict, lifetime: int) -> None:
        with self.engine.begin() as db:
            db.execute(sa.delete(launch_context).where(launch_context.c.expires_at < now()))
            db.execute(sa.insert(launch_context).values(launch_hash=digest(launch), context=dumps(context), expires_at=now() + lifetime))

    def get_launch(self, launch: str) -> dict | None:
        with self.engine.connect() as db:
            text = db.scalar(
                sa.select(launch_context.c.context).where(
                    launch_context.c.launch_hash == digest(launch), launch_context.c.expires_at >= now()
                )
            )
        return loads(text) if text else None

    # client-assertion replay cache
    def first_use_of_jti(self, client_id: str, jti: str, expires_at: int) -> bool:
        """True the first time (client, jti) is seen while the assertion can still be valid."""
        try:
            with self.engine.begin() as db:
                db.execute(sa.delete(assertion_jti).where(assertion_jti.c.expires_at < now() - 600))
                db.execute(sa.insert(assertion_jti).values(client_id=client_id, jti=jti, expires_at=expires_at))
        except sa.exc.IntegrityError:
            return False
        return True
