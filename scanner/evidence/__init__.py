"""Evidence: the report document built from a scan, its renderers, and its signature."""

from __future__ import annotations

from pathlib import Path

REPORT_JSON = "report.json"
# the files beside report.json whose SHA-256 its signature covers, and the CASE/UCO export, which
# names report.json's SHA-256 and is checked by deriving it again from the signed report
COMPANIONS = {"html": "report.html", "manifest": "manifest.txt"}
CASE_UCO = "report.jsonld"


def write_report(
    store,
    root: str,
    out_dir: str,
    scan_id: str | None = None,
    *,
    subject_id: str | None = None,
    unredacted: bool = False,
    actor: str | None = None,
    pictures: bool = True,
    dump_paths: list[str] | None = None,
    case_uco: bool = False,
) -> dict:
    """Build, sign and write report.json, report.html and manifest.txt; return their paths and the id.

    With `case_uco`, also report.jsonld: the same report as a CASE/UCO JSON-LD graph.
    """
    from scanner.auditlog import open_audit_log
    from scanner.errors import UsageError
    from scanner.evidence.document import build_report
    from scanner.evidence.signing import signer_fingerprint, workspace_key
    from scanner.registry import default_actor

    actor = actor or default_actor()
    scan = store.get_scan(scan_id)
    if scan is None:
        raise UsageError(f"no scan {scan_id!r} in this workspace" if scan_id else "this workspace has no scan yet")
    # the report's own making is part of the chain of custody it prints; its head is signed into the
    # workspace's head log whatever the database (scanner/auditlog.py)
    open_audit_log(store, root).audit(
        "report",
        actor,
        subject_id,
        {"scan_id": scan["id"], "unredacted": unredacted, "pictures": pictures, "out": str(Path(out_dir).resolve())},
    )
    doc = build_report(
        store,
        scan["id"],
        subject_id=subject_id,
        unredacted=unredacted,
        actor=actor,
        pictures=pictures,
        dump_paths=dump_paths,
    )
    signed, paths = write_signed(doc, workspace_key(root), Path(out_dir), case_uco=case_uco)
    return {
        "report_id": signed["report_id"],
        "scan_id": scan["id"],
        **{k: str(v) for k, v in paths.items()},
        "findings": sum(len(s["items"]) for s in signed["findings"]),
        "pictures": signed["pictures"],
        "signer": signer_fingerprint(signed),
    }


def write_signed(doc: dict, key, out: Path, *, case_uco: bool = False) -> tuple[dict, dict[str, Path]]:
    """Sign `doc` together with its HTML and manifest, and write every file; return (signed doc, paths).

    The HTML and the manifest are rendered first, from the document and the signature block
    without its value (so the page can show the signer's key), and their SHA-256 is signed with
    the document: no file of the report can change without verification saying so.
    """
    import hashlib

    from scanner.evidence.render import render_html, render_json, render_manifest
    from scanner.evidence.signing import sign, signature_block

    shown = {**doc, "signature": signature_block(doc, key)}
    companions = {
        COMPANIONS["html"]: render_html(shown).encode("utf-8"),
        COMPANIONS["manifest"]: render_manifest(shown).encode("utf-8"),
    }
    signed = sign(doc, key, companions)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / REPORT_JSON, "html": out / COMPANIONS["html"], "manifest": out / COMPANIONS["manifest"]}
    report_bytes = render_json(signed).encode("utf-8")
    paths["json"].write_bytes(report_bytes)
    paths["html"].write_bytes(companions[COMPANIONS["html"]])
    paths["manifest"].write_bytes(companions[COMPANIONS["manifest"]])
    if case_uco:
        from scanner.evidence.caseuco import render_case_uco

        paths["case_uco"] = out / CASE_UCO
        paths["case_uco"].write_bytes(render_case_uco(signed, hashlib.sha256(report_bytes).hexdigest()).encode("utf-8"))
    else:
        # an export left by an earlier report in this folder is not this report's: verify would refuse it
        (out / CASE_UCO).unlink(missing_ok=True)
    return signed, paths
