"""Verify a written report: its signature, and (given the dump) every member's bytes."""

from __future__ import annotations

import json
from pathlib import Path

from scanner.evidence.signing import verify_document


def verify_report(report_path: str | Path, dump_paths: list[str] | None = None,
                  passwords: tuple[str, ...] = ()) -> list[str]:
    """Return every problem found (empty: the report and the dump are as signed)."""
    raw = Path(report_path).read_bytes()
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"the report is not valid JSON any more ({exc}): it was altered"]
    problems = verify_document(doc)
    if dump_paths:
        problems += verify_dump(doc, dump_paths, passwords)
    return problems


def verify_dump(doc: dict, dump_paths: list[str], passwords: tuple[str, ...] = ()) -> list[str]:
    """Re-read the dump and compare every member's SHA-256 with the report's manifest."""
    from scanner.ingest import MemberReader
    from scanner.models import ScanOptions

    entries = doc.get("acquisition", {}).get("manifest", [])
    manifest = {e["relpath"]: e for e in entries if e.get("sha256")}
    listed = {e["relpath"] for e in entries}  # unreadable members too: listed, without a hash
    whole = doc.get("scope", {}).get("subject_id") is None
    seen = {}
    for read in MemberReader(ScanOptions(passwords=tuple(passwords))).read(list(dump_paths)):
        m = read.member
        if m.sha256 is not None:
            seen[m.relpath] = m.sha256
    problems = []
    for rel, entry in sorted(manifest.items()):
        if rel not in seen:
            problems.append(f"dump member {entry['path']} is missing")
        elif seen[rel] != entry["sha256"]:
            problems.append(f"dump member {entry['path']} changed: SHA-256 {seen[rel]} instead of {entry['sha256']}")
    if whole:
        for rel in sorted(set(seen) - listed):
            problems.append(f"dump member {rel} is not in the report's manifest (added)")
    return problems
