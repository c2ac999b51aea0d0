"""The sandbox key, and everything derived from it.

One secret (32 random bytes; from configuration, or generated for the demo into the data
directory, never in the repository) gives, through HKDF, three independent keys:

- **ids**: AES-SIV (deterministic authenticated encryption, RFC 5297) of the legacy id, with
  the resource type as associated data. The same id always gives the same pseudonym (so
  references, ``Observation?patient=…`` and paging work), a pseudonym cannot be turned back
  without the key, and one forged or copied onto another type is refused. Rotating the key
  changes every pseudonym.
- **dates**: HMAC of the patient's legacy id → that patient's date offset in days, the same on
  every resource and request.
- **cursors**: AES-SIV of a paging cursor, whose keyset values are legacy values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
MAX_ID_BYTES = 32  # 16 bytes of SIV tag + 32 of id = 48 bytes = 64 characters, FHIR's id limit
# FHIR ids are [A-Za-z0-9\-\.]{1,64}: base64 with '-' and '.' for its two symbols fits exactly.
_ALPHABET = b"-."
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUID_MARK = b"\x00"  # a lower-case UUID inside an id is packed to 16 bytes (ids hold no NUL)


class SandboxKeyError(RuntimeError):
    pass


class SandboxKey:
    def __init__(self, secret: bytes):
        if len(secret) < KEY_BYTES:
            raise SandboxKeyError(f"the sandbox key must be at least {KEY_BYTES} bytes")
        self._ids = AESSIV(_derive(secret, b"ids", 64))
        self._cursors = AESSIV(_derive(secret, b"cursors", 64))
        self._dates = _derive(secret, b"dates", 32)
        # Names the key in audit records and the CapabilityStatement without revealing it.
        self.key_id = hashlib.sha256(_derive(secret, b"key-id", 32)).hexdigest()[:12]

    # -- ids ----------------------------------------------------------------------------

    def pseudonym(self, resource_type: str, legacy_id: str) -> str:
        packed = _pack(legacy_id)
        if len(packed) > MAX_ID_BYTES:
            raise SandboxKeyError(f"a {resource_type} id is longer than the {MAX_ID_BYTES} bytes a pseudonym can carry")
        sealed = self._ids.encrypt(packed, [resource_type.encode()])
        return base64.b64encode(sealed, altchars=_ALPHABET).decode().rstrip("=")

    def reveal(self, resource_type: str, pseudonym: str) -> str | None:
        """The legacy id behind a pseudonym of ``resource_type``, or None (not one of ours)."""
        try:
            sealed = base64.b64decode(pseudonym + "=" * (-len(pseudonym) % 4), altchars=_ALPHABET, validate=True)
            return _unpack(self._ids.decrypt(sealed, [resource_type.encode()]))
        except (ValueError, InvalidTag):
            return None

    # -- dates --------------------------------------------------------------------------

    def offset_days(self, subject: str, span: int) -> int:
        """A day offset in [-span, -1] ∪ [1, span] for ``subject`` ('Patient/<legacy id>'): never 0."""
        digest = hmac.new(self._dates, subject.encode(), hashlib.sha256).digest()
        value = int.from_bytes(digest[:8], "big") % (2 * span)
        return value - span if value < span else value - span + 1

    # -- cursors ------------------------------------------------------------------------

    def seal(self, text: str) -> str:
        return base64.urlsafe_b64encode(self._cursors.encrypt(text.encode(), [b"cursor"])).decode().rstrip("=")

    def unseal(self, token: str) -> str | None:
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            return self._cursors.decrypt(sealed, [b"cursor"]).decode()
        except (ValueError, InvalidTag, UnicodeDecodeError):
            return None


def _derive(secret: bytes, purpose: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=b"fhir-facade sandbox " + purpose).derive(secret)


def _pack(legacy_id: str) -> bytes:
    out, last = bytearray(), 0
    for match in _UUID.finditer(legacy_id):
        out += legacy_id[last : match.start()].encode() + _UUID_MARK + uuid.UUID(match.group()).bytes
        last = match.end()
    return bytes(out + legacy_id[last:].encode())


def _unpack(packed: bytes) -> str:
    out, i = [], 0
    while i < len(packed):
        mark = packed.find(_UUID_MARK, i)
        if mark < 0:
            out.append(packed[i:].decode())
            break
        out.append(packed[i:mark].decode() + str(uuid.UUID(bytes=packed[mark + 1 : mark + 17])))
        i = mark + 17
    return "".join(out)


def load_sandbox_key(*, secret_hex: str | None, path: str | None, generate: bool) -> SandboxKey:
    """From ``secret_hex`` (e.g. FHIR_FACADE_SANDBOX_KEY), else the key file (hex), generated
    once when ``generate`` (the demo)."""
    if secret_hex:
        try:
            return SandboxKey(bytes.fromhex(secret_hex.strip()))
        except ValueError:
            raise SandboxKeyError("the sandbox key must be hex (64 characters for 32 bytes)") from None
    if not path:
        raise SandboxKeyError("no sandbox key: set [sandbox] key_path or FHIR_FACADE_SANDBOX_KEY")
    file = Path(path).expanduser()
    if not file.exists():
        if not generate:
            raise SandboxKeyError(f"sandbox key {file} does not exist")
        _create(file)
    try:
        return SandboxKey(bytes.fromhex(file.read_text(encoding="ascii").strip()))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SandboxKeyError(f"cannot read sandbox key {file}: {type(exc).__name__}") from None


def _create(file: Path) -> None:
    """Written whole to a private file, then linked into place: concurrent workers agree on one key."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=file.parent, prefix=".sandbox-key-")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(KEY_BYTES) + "\n")
        os.link(temporary, file)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
