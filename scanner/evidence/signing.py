"""Ed25519 signatures over the canonical JSON of a report, and verification that names what changed.

The signature block also signs a digest of every top-level section and of every manifest entry,
so a verifier can say *which* part of a report was altered, not only that something was, and the
SHA-256 of each companion file (report.html, manifest.txt). A valid signature only says that the
holder of *some* key signed: the signer's fingerprint is what a recipient compares with the
investigator's published key (`trusted_fingerprints`, docs/report-format.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

from indexes.store.signingkey import fingerprint, load_or_create
from scanner.errors import UsageError

FINGERPRINT = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _digest(obj) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def workspace_key(root: str | os.PathLike):
    """Return the workspace's Ed25519 private key, creating it (mode 0600) on first use."""
    return load_or_create(root)


def workspace_fingerprint(root: str | os.PathLike) -> str:
    """The fingerprint of the workspace's key (created on first use): what recipients pin."""
    return fingerprint(workspace_key(root).public_key())


def public_key_pem(key) -> str:
    """The public half of `key` as a PEM SubjectPublicKeyInfo block (what `report key --out` writes)."""
    from cryptography.hazmat.primitives import serialization

    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def signer_fingerprint(doc: dict) -> str | None:
    """The fingerprint of the key a report's signature block names (None: no readable key)."""
    block = doc.get("signature")
    try:
        raw = base64.b64decode(block["public_key"], validate=True)
    except (TypeError, KeyError, ValueError):
        return None
    return fingerprint(raw) if len(raw) == 32 else None


def trusted_fingerprints(keys: list[str] | tuple[str, ...] = (), files: list[str] | tuple[str, ...] = ()) -> set[str]:
    """The fingerprints a recipient trusts: each of `keys` is a public key file (PEM, as `report key
    --out` writes it) or a 64-digit fingerprint; each of `files` lists keys, one fingerprint per
    line (anything after it is a label, `#` starts a comment) and/or PEM public keys."""
    out = set()
    for k in keys:
        m = FINGERPRINT.match(k.strip().lower())
        if m:
            out.add(m.group(1))
        elif Path(k).is_file():
            out |= _fingerprints_in(Path(k), pem_only=True)
        else:
            raise UsageError(
                f"--key {k!r} is neither a public key file nor a 64-digit key fingerprint "
                "(`facetrace report key` prints both)"
            )
    for f in files:
        out |= _fingerprints_in(Path(f), pem_only=False)
    return out


def _fingerprints_in(path: Path, pem_only: bool) -> set[str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the keys in {path}: {exc}") from None
    out = set()
    blocks = re.findall(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", text, flags=re.S)
    for block in blocks:
        try:
            public = serialization.load_pem_public_key(block.encode())
        except ValueError:
            raise UsageError(f"{path} holds a PEM block that is not a public key") from None
        if not isinstance(public, Ed25519PublicKey):
            raise UsageError(f"{path} holds a public key that is not Ed25519 (reports are signed with Ed25519)")
        out.add(fingerprint(public))
    rest = re.sub(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", "", text, flags=re.S)
    for n, line in enumerate(rest.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = FINGERPRINT.match(line.split()[0].lower())
        if pem_only or m is None:
            raise UsageError(f"{path}, line {n}: expected a 64-digit key fingerprint or a PEM public key")
        out.add(m.group(1))
    if not out:
        raise UsageError(f"{path} holds no key")
    return out


def signature_block(doc: dict, key) -> dict:
    """The signature block of `doc` before its companion files and its value are added."""
    from cryptography.hazmat.primitives import serialization

    body = {k: v for k, v in doc.items() if k != "signature"}
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(public).decode(),
        "key_id": fingerprint(public)[:16],
        "sections": {k: _digest(v) for k, v in sorted(body.items())},
        "manifest_entries": [_digest(e)[:16] for e in body.get("acquisition", {}).get("manifest", [])],
    }


def sign(doc: dict, key, files: dict[str, bytes] | None = None) -> dict:
    """Return `doc` with a `signature` block added.

    `files`: the companion files written beside report.json (name -> bytes); their SHA-256 is
    signed with the document, so a changed report.html or manifest.txt fails verification.
    """
    body = {k: v for k, v in doc.items() if k != "signature"}
    block = signature_block(body, key)
    if files:
        block["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
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
    for i, (entry, want) in enumerate(zip(entries, block.get("manifest_entries", []), strict=False)):
        if _digest(entry)[:16] != want:
            problems.append(f"manifest entry {i} ({entry.get('path')}) was changed")
    if len(entries) != len(block.get("manifest_entries", [])):
        problems.append("manifest entries were added or removed")
    if not problems:
        problems.append("the signature block itself was altered (or the report was signed by another key)")
    return [f"signature invalid: {p}" for p in problems]
