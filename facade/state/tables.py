"""Tables of the state database shared by the authorization server and the resource server."""

from __future__ import annotations

import sqlalchemy as sa

from facade.state import metadata

# Access tokens revoked before they expire (RFC 7009). Rows may be purged once expired.
revoked_token = sa.Table(
    "revoked_token",
    metadata,
    sa.Column("jti", sa.String(255), primary_key=True),
    sa.Column("expires_at", sa.Integer, nullable=False),  # seconds since the epoch, as the token's exp
)
