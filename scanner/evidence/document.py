"""The evidence report: one typed, versioned document built from a stored scan.

JSON and HTML are pure functions of this document (docs/report-format.md). The workspace
keeps no photos: each finding's picture is cut from the dump at report time (scanner.evidence.
pictures), pixelated unless the report is unredacted, and signed with the rest.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from scanner import __version__
from scanner.errors import UsageError

REPORT_FORMAT = "facetrace-report"
REPORT_VERSION = 1

# Context only: the report counts what these texts are about; it decides nothing under them.
LEGAL_CONTEXT = [
    "PIPL (China) art. 28: biometric information is sensitive personal information; art. 26: image "
    "collection in public places only for public security, with notice; art. 5: lawful, fair, necessary.",
    "GDPR (EU) art. 9: processing of biometric data to uniquely identify a person is prohibited "
    "unless an exception applies (for example explicit consent).",
]


def build_report(
    store,
    scan_id: str | None = None,
    *,
    subject_id: str | None = None,
    unredacted: bool = False,
    actor: str = "",
    pictures: bool = True,
    dump_paths: list[str] | None = None,
) -> dict:
    """Return the report document of a scan (the latest when `scan_id` is None).

    With `pictures`, each finding gets a picture cut from the dump, read again from `dump_paths`
    (default: where the scan read it).
    """
    from scanner.acquire import provenance
    from scanner.matching import policy
    from scanner.registry import audit_log

    scan = store.get_scan(scan_id)
    if scan is None:
        raise UsageError(f"no scan {scan_id!r} in this workspace" if scan_id else "this workspace has no scan yet")
    registry = audit_log(store)
    findings = registry.findings(scan_id=scan["id"], subject_id=subject_id)
    members = list(store.iter_members(scan["id"]))
    if subject_id is not None:
        # a subject's report names only the files that concern them
        concerned = {f["member_seq"] for f in findings}
        members = [m for m in members if m["seq"] in concerned]
    web, acquisition_ids = provenance(store, scan["inputs"])
    entries = [
        e
        for e in registry.audit_entries()
        if e["details"].get("scan_id") == scan["id"]
        or (e["action"] == "acquire" and e["details"].get("acquisition_id") in acquisition_ids)
    ]
    matched = next((e["details"] for e in entries if e["action"] == "scan_against_registry"), {})
    registry_size = matched.get("registry_subjects")
    faces = sum(len(m["faces"]) for m in members if m["status"] == "ok")
    cut, notes = {}, []
    if pictures and findings:
        from scanner.evidence.pictures import pictures_for_findings

        cut, notes = pictures_for_findings(
            findings,
            members,
            dump_paths or [i["abspath"] for i in scan["inputs"]],
            unredacted=unredacted,
            max_pixels=int(scan["parameters"].get("max_image_pixels", 100_000_000)),
        )
    by_subject: dict[str, list] = {}
    for f in findings:
        by_subject.setdefault(f["subject_id"], []).append(
            {
                **{k: f[k] for k in ("kind", "band", "logical_path", "member_seq", "face_index", "evidence")},
                "picture": cut.get((f["member_seq"], f["face_index"])),
            }
        )
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "report_id": uuid.uuid4().hex,
        "generated_at": datetime.now(UTC).isoformat(),
        "generated_by": actor,
        "facetrace": __version__,
        "scope": {"subject_id": subject_id} if subject_id else {"subject_id": None},
        "redacted": not unredacted,
        "pictures": {
            "included": bool(pictures),
            "count": len(cut),
            "redaction": _redaction(unredacted),
            "notes": notes if pictures else ["pictures were not requested (--no-pictures)"],
        },
        "acquisition": {
            "scan_id": scan["id"],
            "started_at": scan["started_at"],
            "finished_at": scan["finished_at"],
            "status": scan["status"],
            "inputs": scan["inputs"],
            # the download behind each input fetched from a link: records with every hop, header, time,
            # server address and hash (docs/acquisition.md)
            "from_web": web,
            "counts": scan["counts"],
            "manifest": [
                {
                    "path": m["logical_path"],
                    "relpath": m["relpath"],
                    "size": m["size"],
                    "sha256": m["sha256"],
                    "type": m["mime"],
                    "kind": m["kind"],
                    "status": m["status"],
                    "reason": m["reason"],
                    "duplicate_of": m["duplicate_of"],
                }
                for m in members
            ],
            "unreadable": [
                {"path": m["logical_path"], "status": m["status"], "reason": m["reason"]}
                for m in members
                if m["status"] in ("unreadable", "skipped")
            ],
        },
        "method": {
            "engine": scan["engine"],
            "parameters": scan["parameters"],
            "policy": policy.thresholds(),
            "registry_subjects_at_scan": registry_size,
            # the policy, the registry's size, the false-match table and the reference cohort the
            # scan's findings were decided under (docs/matching.md, docs/calibration.md)
            "matching": {k: matched.get(k) for k in ("policy", "decided_under", "reference_cohort")},
            "host": scan["host"],
        },
        "findings": [
            {
                "subject_id": s,
                "items": items,
                "items_by_band": _count(items, "band"),
                "items_by_kind": _count(items, "kind"),
            }
            for s, items in sorted(by_subject.items())
        ],
        "counts_under_law": {
            "individuals_found": len(by_subject),
            "items_of_biometric_data": faces,
            "note": "faces found in the scanned members (each a biometric template once encoded)",
            "context": LEGAL_CONTEXT,
        },
        "custody": entries,
        # the audit log's newest entry as the report is signed: anyone holding the report can later
        # ask that the log still hold it (`registry audit --verify --head SEQ:HASH`, docs/registry.md)
        "audit_head": registry.head(),
        "lineage": [r for r in store.lineage() if scan["id"] in (r["scan_id"], r["earlier_scan_id"])]
        if subject_id is None
        else [],
        "profile": _profile(store, scan["id"]) if subject_id is None else None,
    }


def _profile(store, scan_id: str) -> dict:
    """The dump's profile (docs/profile.md), without example paths: people, packaging, capture, bundle."""
    from scanner.profile.dump import build_profile

    p = build_profile(store, scan_id)
    return {
        "people": p["people"],
        "packaging": {k: v for k, v in p["packaging"].items()},
        "sidecars": {k: v["count"] for k, v in p["sidecars"].items()},
        "capture": {
            k: p["capture"][k] for k in ("images", "with_exif", "with_gps", "cameras", "days", "uniform", "evidence")
        },
        "known_datasets": p["known_datasets"],
        "bundle": p["bundle"],
    }


def _redaction(unredacted: bool) -> str:
    from scanner.evidence.pictures import redaction_method

    return redaction_method(unredacted)


def _count(items, key) -> dict:
    out: dict[str, int] = {}
    for i in items:
        out[i[key]] = out.get(i[key], 0) + 1
    return out
