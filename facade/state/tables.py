"""State tables shared between the authorization server and the resource server.

Tables private to one feature live in that feature's package; the ones here are
contracts between packages.
"""

from __future__ import annotations

import sqlalchemy as sa

from facade.state.store import metadata

# Access tokens revoked before they expire (RFC 7009). The authorization server
# inserts the token's `jti`; the resource server refuses any token listed here.
# Rows may be purged once `expires_at` (UTC) has passed: the token is dead anyway.
revoked_token = sa.Table(
    "revoked_token",
    metadata,
    sa.Column("jti", sa.String(255), primary_key=True),
    sa.Column("expires_at", sa.Integer, nullable=False),  # seconds since the epoch, as the token's exp
)
