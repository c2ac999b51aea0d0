"""People who sign in at the authorization server: a TOML file of users with hashed passwords.

The façade does not own identities in production (use ``auth_mode = "external"``
with the hospital's identity provider); this directory serves the embedded demo
and small deployments. Passwords are stored as scrypt hashes
(``fhir-facade users hash-password``), compared in constant time, and an unknown
user name costs the same work as a wrong password.

    [[users]]
    username = "maria"
    name = "Maria Young"
    fhir_user = "Patient/d12f8fe1-bb0b-4600-89db-e3f0fa191edb"
    password_hash = "scrypt$16384$8$1$<salt>$<hash>"
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEMO_USERS = Path(__file__).resolve().parent / "demo_users.toml"
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    username: str
    name: str
    fhir_user: str  # "Patient/<id>" or "Practitioner/<id>": who this person is in FHIR
    password_hash: str

    @property
    def patient(self) -> str | None:
        """The patient a patient user may act for: themself."""
        kind, _, ident = self.fhir_user.partition("/")
        return ident if kind == "Patient" else None


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(_unb64(expected)),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


class UserDirectory:
    def __init__(self, users: list[User]):
        self.users = {user.username: user for user in users}
        self._decoy = hash_password(os.urandom(8).hex())  # equalises timing for unknown names

    @classmethod
    def from_file(cls, path: str | Path) -> UserDirectory:
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read users file {path}: {exc}") from None
        users = []
        for entry in document.get("users", []):
            try:
                users.append(User(entry["username"], entry.get("name", entry["username"]), entry["fhir_user"], entry["password_hash"]))
            except KeyError as exc:
                raise ValueError(f"{path}: user entry lacks {exc}") from None
        return cls(users)

    def get(self, username: str) -> User | None:
        return self.users.get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        user = self.users.get(username)
        ok = verify_password(password, user.password_hash if user else self._decoy)
        return user if user and ok else None


def load_users(users_file: str | None, is_demo: bool) -> UserDirectory:
    if users_file:
        return UserDirectory.from_file(users_file)
    return UserDirectory.from_file(DEMO_USERS) if is_demo else UserDirectory([])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
