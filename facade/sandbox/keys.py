"""The sandbox key, and everything derived from it.

One secret (32 random bytes; from configuration, or generated for the demo into the data
directory, never in the repository) gives, through HKDF, independent keys for:

- **ids**: a deterministic authenticated encryption of the legacy id, with the resource type
  bound in. The same id always gives the same pseudonym (so references,
  ``Observation?patient=…`` and paging work), a pseudonym cannot be turned back without the key,
  and one forged or copied onto another type is refused. Rotating the key changes every
  pseudonym. It is the SIV construction (RFC 5297's idea: the IV is a MAC of the plaintext) with
  HMAC-SHA256 cut to 96 bits as the synthetic IV and AES-256-CTR: RFC 5297's own 128-bit tag
  leaves too little of FHIR's 64 characters for ids such as ``<uuid>-head-circumference``.
- **dates**: HMAC of the patient's legacy id → that patient's date offset in days, the same on
  every resource and request.
- **cursors**: AES-SIV (RFC 5297) of a paging cursor, whose keyset values are legacy values.
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
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
TAG_BYTES = 12
MAX_ID_BYTES = 48 - TAG_BYTES  # 48 bytes are 64 base64 characters, FHIR's id limit
# FHIR ids are [A-Za-z0-9\-\.]{1,64}: base64 with '-' and '.' for its two symbols fits exactly.
_ALPHABET = b"-."
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."
_UUID_SYMBOL = len(_ID_CHARS)  # a canonical UUID inside an id: one symbol here, its 16 bytes apart
_BASE = len(_ID_CHARS) + 1
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class SandboxKeyError(RuntimeError):
    pass


class SandboxKey:
    def __init__(self, secret: bytes):
        if len(secret) < KEY_BYTES:
            raise SandboxKeyError(f"the sandbox key must be at least {KEY_BYTES} bytes")
        self._id_mac = _derive(secret, b"id-mac", 32)
        self._id_cipher = algorithms.AES(_derive(secret, b"id-enc", 32))
        self._cursors = AESSIV(_derive(secret, b"cursors", 64))
        self._dates = _derive(secret, b"dates", 32)
        # Names the key in audit records and the CapabilityStatement without revealing it.
        self.key_id = hashlib.sha256(_derive(secret, b"key-id", 32)).hexdigest()[:12]

    # -- ids ----------------------------------------------------------------------------

    def pseudonym(self, resource_type: str, legacy_id: str) -> str:
        packed = _pack(legacy_id)
        if packed is None or len(packed) > MAX_ID_BYTES:
            raise SandboxKeyError(f"a {resource_type} id is too long, or not a FHIR id, to be carried by a pseudonym")
        tag = self._tag(resource_type, packed)
        sealed = tag + self._ctr(tag).update(packed)
        return base64.b64encode(sealed, altchars=_ALPHABET).decode().rstrip("=")

    def reveal(self, resource_type: str, pseudonym: str) -> str | None:
        """The legacy id behind a pseudonym of ``resource_type``, or None (not one of ours)."""
        try:
            sealed = base64.b64decode(pseudonym + "=" * (-len(pseudonym) % 4), altchars=_ALPHABET, validate=True)
        except ValueError:
            return None
        tag, body = sealed[:TAG_BYTES], sealed[TAG_BYTES:]
        if len(tag) < TAG_BYTES or not body:
            return None
        packed = self._ctr(tag).update(body)
        if not hmac.compare_digest(tag, self._tag(resource_type, packed)):
            return None
        return _unpack(packed)

    def _tag(self, resource_type: str, packed: bytes) -> bytes:
        return hmac.new(self._id_mac, resource_type.encode() + b"\0" + packed, hashlib.sha256).digest()[:TAG_BYTES]

    def _ctr(self, tag: bytes) -> CipherContext:
        return Cipher(self._id_cipher, modes.CTR(tag + bytes(16 - TAG_BYTES))).encryptor()

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


def _pack(legacy_id: str) -> bytes | None:
    """An id in few bytes: the number of UUIDs in it, their 16 bytes each, then the rest as one
    number in bijective base 65 (the 64 FHIR id characters, and a UUID's place)."""
    uuids = [uuid.UUID(m.group()).bytes for m in _UUID.finditer(legacy_id)]
    symbols = []
    for part in _UUID.split(legacy_id):
        symbols += [_ID_CHARS.find(ch) for ch in part] + [_UUID_SYMBOL]
    symbols.pop()  # no UUID after the last part
    if -1 in symbols or len(uuids) > 255:
        return None
    number = 0
    for symbol in symbols:
        number = number * _BASE + symbol + 1
    return bytes([len(uuids)]) + b"".join(uuids) + number.to_bytes((number.bit_length() + 7) // 8, "big")


def _unpack(packed: bytes) -> str | None:
    count = packed[0]
    uuids = [str(uuid.UUID(bytes=packed[1 + 16 * i : 17 + 16 * i])) for i in range(count)]
    number = int.from_bytes(packed[1 + 16 * count :], "big")
    symbols = []
    while number:
        number, digit = divmod(number - 1, _BASE)
        symbols.append(digit)
    text, found = [], iter(uuids)
    for symbol in reversed(symbols):
        text.append(next(found, "") if symbol == _UUID_SYMBOL else _ID_CHARS[symbol])
    return "".join(text)


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
