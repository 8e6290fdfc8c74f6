"""Verify a written report: its signature and signer, every file beside it, and (given the dump)
every member's bytes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from scanner.evidence.signing import signer_fingerprint, verify_document


@dataclass
class ReportCheck:
    """What `check_report` found."""

    problems: list[str] = field(default_factory=list)  # empty: the report is as signed
    signer: str | None = None  # fingerprint of the key that signed it
    trusted: bool | None = None  # whether that key is one of the trusted ones; None: none was given
    covered: list[str] = field(default_factory=list)  # the files whose every byte the signature vouches for
    refused: list[str] = field(default_factory=list)  # files beside it that the signature does not cover
    notes: list[str] = field(default_factory=list)
    audit_head: dict | None = None  # the audit log's head when the report was signed


def verify_report(
    report_path: str | Path,
    dump_paths: list[str] | None = None,
    passwords: tuple[str, ...] = (),
    trusted: set[str] | None = None,
) -> list[str]:
    """Return every problem found (empty: the report, its files and the dump are as signed)."""
    return check_report(report_path, dump_paths, passwords, trusted).problems


def check_report(
    report_path: str | Path,
    dump_paths: list[str] | None = None,
    passwords: tuple[str, ...] = (),
    trusted: set[str] | None = None,
) -> ReportCheck:
    """Check a report's signature, its signer against `trusted` (key fingerprints; None: not
    checked), each file beside it, and with `dump_paths` every member of the dump.

    A valid signature shows only that the holder of the key it names signed: `trusted` is how a
    recipient requires the investigator's key. Beside report.json, the HTML and the manifest are
    covered by the SHA-256 the signature holds, and the manifest is also read back entry by entry;
    report.jsonld is derived again from the signed report and compared. Any other file is refused:
    nothing vouches for it.
    """
    from scanner.evidence import CASE_UCO, COMPANIONS

    path = Path(report_path)
    out = ReportCheck()
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        out.problems.append(f"the report is not valid JSON any more ({exc}): it was altered")
        return out
    if not isinstance(doc, dict):
        out.problems.append("the report is not a report document any more: it was altered")
        return out
    out.problems += verify_document(doc)
    out.signer = signer_fingerprint(doc)
    out.audit_head = doc.get("audit_head")
    if trusted is not None:
        out.trusted = out.signer in trusted
        if not out.trusted:
            out.problems.append(
                f"signed by key {out.signer}, which is not a trusted key (the report was signed "
                "by someone else, or the key given is not the investigator's)"
            )
    out.covered.append(path.name)
    folder = path.parent
    block = doc.get("signature") if isinstance(doc.get("signature"), dict) else {}
    signed_files = block.get("files") if isinstance(block.get("files"), dict) else {}
    for name, digest in signed_files.items():
        if not _plain_name(name):
            out.problems.append(f"the signature names a companion file {name!r} that is not a file name")
            continue
        companion = folder / name
        if not companion.is_file():
            out.notes.append(f"{name} is not beside the report: not checked")
        elif hashlib.sha256(companion.read_bytes()).hexdigest() != digest:
            out.problems.append(f"{name} was changed: its SHA-256 is not the one signed in {path.name}")
        else:
            out.covered.append(name)
    manifest = folder / COMPANIONS["manifest"]
    if manifest.is_file():
        found = _manifest_problems(doc, manifest)
        out.problems += found
        if COMPANIONS["manifest"] not in signed_files and not found:
            out.covered.append(manifest.name)
            out.notes.append(
                f"{manifest.name}: signed before companion files were, so only its entries were "
                "checked (against the signed manifest), not its comment lines"
            )
    export = folder / CASE_UCO
    if export.is_file():
        _check_export(doc, raw, export, out)
    known = {path.name, *out.covered}
    for other in sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in known):
        out.refused.append(other)
    if dump_paths:
        out.problems += verify_dump(doc, dump_paths, passwords)
    return out


def _plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def _manifest_problems(doc: dict, manifest: Path) -> list[str]:
    """Read manifest.txt back and compare each entry with the signed manifest."""
    from scanner.evidence.render import ManifestError, manifest_report_id, parse_manifest

    name = manifest.name
    try:
        text = manifest.read_bytes().decode("utf-8")
        entries = parse_manifest(text)
    except (UnicodeDecodeError, ManifestError) as exc:
        return [f"{name} is not the manifest this report wrote ({exc})"]
    problems = []
    if manifest_report_id(text) != doc.get("report_id"):
        problems.append(
            f"{name} is the manifest of another report ({manifest_report_id(text)}), not of {doc.get('report_id')}"
        )
    signed = [
        e for e in (doc.get("acquisition") or {}).get("manifest") or [] if isinstance(e, dict) and e.get("sha256")
    ]
    for got, want in zip(entries, signed, strict=False):
        if (got["size"], got["sha256"], got["path"]) != (want.get("size"), want.get("sha256"), want.get("path")):
            problems.append(
                f"{name} line {got['line']} does not match the signed manifest entry of {want.get('path')!r}"
            )
    if len(entries) != len(signed):
        problems.append(
            f"{name} lists {len(entries)} members, the signed manifest {len(signed)}: entries were added or removed"
        )
    return problems


def _check_export(doc: dict, raw: bytes, export: Path, out: ReportCheck) -> None:
    """report.jsonld must be what this facetrace derives from the signed report; written by another
    version, only the report.json SHA-256 it names can be checked."""
    from scanner import __version__
    from scanner.evidence.caseuco import bound_report_sha256, render_case_uco

    sha = hashlib.sha256(raw).hexdigest()
    data = export.read_bytes()
    if doc.get("facetrace") == __version__:
        if data == render_case_uco(doc, sha).encode("utf-8"):
            out.covered.append(export.name)
        else:
            out.problems.append(
                f"{export.name} is not the CASE/UCO export of this report: it was changed, or belongs to another report"
            )
        return
    try:
        named = bound_report_sha256(json.loads(data), doc.get("report_id", ""))
    except (ValueError, UnicodeDecodeError):
        named = None
    if named != sha:
        out.problems.append(
            f"{export.name} does not name this report.json (SHA-256 {sha}): it belongs to another report or was changed"
        )
    else:
        out.refused.append(export.name)
        out.notes.append(
            f"{export.name} was written by facetrace {doc.get('facetrace')}; this is {__version__}, "
            "which cannot derive it again: only the report.json SHA-256 it names was checked"
        )


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
