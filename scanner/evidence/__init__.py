"""Evidence: the report document built from a scan, its renderers, and its signature."""

from __future__ import annotations

from pathlib import Path


def write_report(store, root: str, out_dir: str, scan_id: str | None = None, *, subject_id: str | None = None,
                 unredacted: bool = False, actor: str | None = None, pictures: bool = True,
                 dump_paths: list[str] | None = None, case_uco: bool = False) -> dict:
    """Build, sign and write report.json, report.html and manifest.txt; return their paths and the id.

    With `case_uco`, also report.jsonld: the same report as a CASE/UCO JSON-LD graph.
    """
    from scanner.errors import UsageError
    from scanner.evidence.document import build_report
    from scanner.evidence.render import render_html, render_json, render_manifest
    from scanner.evidence.signing import sign, workspace_key
    from scanner.registry import audit_log, default_actor

    actor = actor or default_actor()
    scan = store.get_scan(scan_id)
    if scan is None:
        raise UsageError(f"no scan {scan_id!r} in this workspace" if scan_id else "this workspace has no scan yet")
    # the report's own making is part of the chain of custody it prints
    audit_log(store).audit("report", actor, subject_id, {"scan_id": scan["id"], "unredacted": unredacted, "pictures": pictures,
                                                         "out": str(Path(out_dir).resolve())})
    doc = sign(build_report(store, scan["id"], subject_id=subject_id, unredacted=unredacted, actor=actor,
                            pictures=pictures, dump_paths=dump_paths),
               workspace_key(root))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "html": out / "report.html", "manifest": out / "manifest.txt"}
    paths["json"].write_text(render_json(doc), encoding="utf-8")
    paths["html"].write_text(render_html(doc), encoding="utf-8")
    paths["manifest"].write_text(render_manifest(doc), encoding="utf-8")
    if case_uco:
        import hashlib

        from scanner.evidence.caseuco import render_case_uco

        paths["case_uco"] = out / "report.jsonld"
        signed = hashlib.sha256(paths["json"].read_bytes()).hexdigest()
        paths["case_uco"].write_text(render_case_uco(doc, signed), encoding="utf-8")
    return {"report_id": doc["report_id"], "scan_id": scan["id"], **{k: str(v) for k, v in paths.items()},
            "findings": sum(len(s["items"]) for s in doc["findings"]), "pictures": doc["pictures"]}
