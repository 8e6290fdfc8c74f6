"""Ed25519 signatures over the canonical JSON of a report, and verification that names what changed.

The signature block also signs a digest of every top-level section and of every manifest entry,
so a verifier can say *which* part of a report was altered, not only that something was.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

KEY_FILE = "report-signing-ed25519.pem"


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _digest(obj) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def workspace_key(root: str | os.PathLike):
    """Return the workspace's Ed25519 private key, creating it (mode 0600) on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = Path(root) / "keys"
    path = folder / KEY_FILE
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def sign(doc: dict, key) -> dict:
    """Return `doc` with a `signature` block added."""
    from cryptography.hazmat.primitives import serialization

    body = {k: v for k, v in doc.items() if k != "signature"}
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    block = {
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(public).decode(),
        "key_id": hashlib.sha256(public).hexdigest()[:16],
        "sections": {k: _digest(v) for k, v in sorted(body.items())},
        "manifest_entries": [_digest(e)[:16] for e in body.get("acquisition", {}).get("manifest", [])],
    }
    payload = canonical({"body": body, "block": block})
    block["value"] = base64.b64encode(key.sign(payload)).decode()
    return {**body, "signature": block}


def verify_document(doc: dict) -> list[str]:
    """Return what does not verify in a signed report (empty: signature valid)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    block = doc.get("signature")
    if not isinstance(block, dict) or "value" not in block:
        return ["the report carries no signature"]
    body = {k: v for k, v in doc.items() if k != "signature"}
    unsigned_block = {k: v for k, v in block.items() if k != "value"}
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(block["public_key"]))
        public.verify(base64.b64decode(block["value"]), canonical({"body": body, "block": unsigned_block}))
        return []
    except (InvalidSignature, ValueError, KeyError, TypeError):
        pass
    problems = []
    sections = block.get("sections", {})
    for key in sorted(set(sections) | set(body)):
        if key not in body:
            problems.append(f"section {key!r} was removed")
        elif key not in sections:
            problems.append(f"section {key!r} was added")
        elif _digest(body[key]) != sections[key]:
            problems.append(f"section {key!r} was changed")
    entries = body.get("acquisition", {}).get("manifest", [])
    for i, (entry, want) in enumerate(zip(entries, block.get("manifest_entries", []))):
        if _digest(entry)[:16] != want:
            problems.append(f"manifest entry {i} ({entry.get('path')}) was changed")
    if len(entries) != len(block.get("manifest_entries", [])):
        problems.append("manifest entries were added or removed")
    if not problems:
        problems.append("the signature block itself was altered (or the report was signed by another key)")
    return [f"signature invalid: {p}" for p in problems]
