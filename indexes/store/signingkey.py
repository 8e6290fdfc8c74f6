"""The workspace's Ed25519 key: it signs evidence reports and the audit log's heads.

One key per workspace folder, in `<workspace>/keys/` (0700, the file 0600). It is kept here, in
the storage layer, because the audit log (indexes/store/subjects.py) signs every new head with it; the
reports' signatures (scanner/evidence/signing.py) use the same key, so a recipient who pinned the
key of a report can also check the heads that report carries.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

KEY_DIR = "keys"
KEY_FILE = "report-signing-ed25519.pem"


def key_path(root: str | os.PathLike) -> Path:
    return Path(root) / KEY_DIR / KEY_FILE


def load_or_create(root: str | os.PathLike):
    """Return the workspace's Ed25519 private key, creating it (mode 0600) on first use.

    Two processes may make their first audit entry at the same moment: the key is written to a
    temporary file and linked into place, so the loser of that race reads the winner's complete
    key, never a half-written one.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = key_path(root)
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    Path(root).mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.mkdir(exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process linked its key first
        except FileExistsError:
            return serialization.load_pem_private_key(path.read_bytes(), password=None)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def load_public(root: str | os.PathLike):
    """Return the workspace's public key, or None when the workspace has no key (nothing created)."""
    from cryptography.hazmat.primitives import serialization

    path = key_path(root)
    if not path.exists():
        return None
    return serialization.load_pem_private_key(path.read_bytes(), password=None).public_key()


def raw_public(public) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public) -> str:
    """The key's fingerprint: SHA-256 of its 32 raw bytes, 64 hex digits (a report's key_id is the first 16)."""
    raw = public if isinstance(public, bytes) else raw_public(public)
    return hashlib.sha256(raw).hexdigest()
