"""The server's signing key: signs access tokens (RS384) and id_tokens (RS256).

One RSA key, published without its private half at ``.well-known/jwks.json``
with a ``kid`` (its RFC 7638 thumbprint) so a future key can sit beside it.
The embedded demo generates its key on first run (every worker then loads the
same file); any other deployment names a key file in ``[auth] signing_key_path``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import RSAKey

ACCESS_TOKEN_ALG = "RS384"  # noqa: S105 - an algorithm name
ID_TOKEN_ALG = "RS256"  # noqa: S105 - an algorithm name  # what OpenID Connect clients must support


class KeyConfigError(RuntimeError):
    pass


class SigningKey:
    def __init__(self, key: RSAKey):
        self.key = key
        self.kid = key.thumbprint()

    def sign(self, claims: dict, alg: str = ACCESS_TOKEN_ALG) -> str:
        header = {"alg": alg, "kid": self.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=[alg])

    def verify(self, token: str) -> dict:
        """Claims of an access token this server signed; raises joserfc errors otherwise (expiry not checked).

        Only the access-token algorithm is accepted, so an id_token can never pass for an access token.
        """
        return jwt.decode(token, self.key, algorithms=[ACCESS_TOKEN_ALG]).claims

    def jwks(self) -> dict:
        public = self.key.as_dict(private=False)
        public.update(kid=self.kid, use="sig")
        return {"keys": [public]}


def load_signing_key(path: str | None, *, generate: bool) -> SigningKey:
    if not path:
        raise KeyConfigError("no signing key: set [auth] signing_key_path to a PEM RSA private key")
    file = Path(path).expanduser()
    if not file.exists():
        if not generate:
            raise KeyConfigError(f"signing key {file} does not exist")
        _create_key_file(file)
    try:
        key = RSAKey.import_key(file.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyConfigError(f"cannot load signing key {file}: {exc}") from None
    if not key.is_private:
        raise KeyConfigError(f"signing key {file} holds no private key")
    return SigningKey(key)


def _create_key_file(file: Path) -> None:
    """Write a new key once, even when several workers start together.

    The key is written in full to a private temporary file, then hard-linked into
    place: the link either appears complete or fails because another worker won.
    """
    file.parent.mkdir(parents=True, exist_ok=True)
    pem = RSAKey.generate_key(2048, private=True).as_pem(private=True)
    fd, temporary = tempfile.mkstemp(dir=file.parent, prefix=".signing-key-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        os.link(temporary, file)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
