"""`facetrace registry ...`: list, inspect, withdraw, erase subjects; verify erasure and the audit log."""

from __future__ import annotations

import json

import click

from cli.common import EXIT_CODES, echo, echo_lines, open_registry, translate_errors, workspace_options
from scanner.disclosure import VERIFICATION_METHODS
from scanner.errors import VerificationFailed


@click.group("registry", epilog=EXIT_CODES)
def registry_group():
    """Inspect and manage the opt-in registry of enrolled people.

    \b
    Examples:
      facetrace registry list
      facetrace registry erase 3f9c0a1b2c3d4e5f --token TOKEN
      facetrace registry verify-erasure 3f9c0a1b2c3d4e5f
      facetrace registry verify 3f9c0a1b2c3d4e5f live.jpg --method in_person
      facetrace registry audit --verify
    """


@registry_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@workspace_options
@translate_errors
def list_command(as_json, workspace, db_url):
    """List enrolled subjects (id, status, templates, consent)."""
    reg = open_registry(workspace, db_url)
    subjects = reg.store.list_subjects()
    _audit(reg, "list", _actor(), None, {"subjects": len(subjects)})
    if as_json:
        echo_lines(json.dumps(subjects, indent=2).split("\n"))
        return
    if not subjects:
        echo("The registry is empty: `facetrace enroll --help` shows how to enroll a consenting person.")
    for s in subjects:
        consent = s["consents"][0] if s["consents"] else {}
        echo(
            f"{s['id']}  {s['status']:<9}  {s['templates']} template(s)  enrolled {s['created_at'][:19]}"
            f"  consent {consent.get('text_version', '-')}"
        )


@registry_group.command("show")
@click.argument("subject_id")
@workspace_options
@translate_errors
def show_command(subject_id, workspace, db_url):
    """Show one subject's record, consent and findings (JSON)."""
    from scanner.registry import get_subject

    reg = open_registry(workspace, db_url)
    subj = get_subject(reg, subject_id)
    subj["findings"] = reg.store.findings(subject_id=subject_id)
    _audit(reg, "show", _actor(), subject_id, {})
    echo_lines(json.dumps(subj, indent=2, default=str).split("\n"))


@registry_group.command("withdraw")
@click.argument("subject_id")
@workspace_options
@translate_errors
def withdraw_command(subject_id, workspace, db_url):
    """Record that a subject withdrew consent: their templates are deleted and never matched again."""
    from scanner.registry import withdraw

    out = withdraw(open_registry(workspace, db_url), subject_id)
    echo(f"Consent withdrawn for {subject_id}; {out['templates_deleted']} template(s) deleted.")


@registry_group.command("erase")
@click.argument("subject_id")
@click.option("--token", help="The subject's deletion token (when the person erases themselves).")
@workspace_options
@translate_errors
def erase_command(subject_id, token, workspace, db_url):
    """Erase a subject from the database, every index and the receipts; write an erasure receipt."""
    from scanner.registry import erase

    out = erase(open_registry(workspace, db_url), subject_id, token=token)
    d = out["deleted"]
    echo(
        f"Erased {subject_id}: {d['templates']} template(s), {d['photo_hashes']} photo hash(es), "
        f"{d['findings']} finding(s), {d['consent_records']} consent record(s)."
    )
    echo(f"Erasure receipt: {out['receipt_path']}")
    if out.get("pending"):
        echo(f"Pending: {out['pending']}.", err=True)


@registry_group.command("verify-erasure")
@click.argument("subject_id")
@workspace_options
@translate_errors
def verify_erasure_command(subject_id, workspace, db_url):
    """Check that no template, hash, finding or index entry of an erased subject remains (exit 1 if any)."""
    from scanner.registry import verify_erasure

    problems = verify_erasure(open_registry(workspace, db_url), subject_id)
    if problems:
        for p in problems:
            echo(f"NOT ERASED: {p}")
        raise VerificationFailed(f"the erasure of {subject_id} is not complete: {len(problems)} problem(s) above")
    echo(
        f"Erasure of {subject_id} verified: no template, hash, finding, consent detail, receipt or index entry remains."
    )


@registry_group.command("verify")
@click.argument("subject_id")
@click.argument("photos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--method",
    type=click.Choice(VERIFICATION_METHODS),
    required=True,
    help="How you met the person whose identity you checked.",
)
@workspace_options
@translate_errors
def verify_command(subject_id, photos, method, workspace, db_url):
    """Verify a subject: you checked the person's identity and took PHOTOS of them now, which must
    match their enrolled photos. A verified subject is told of each finding as it is made; an
    unverified one gets counts a day or more late (docs/security.md). Audited."""
    from pathlib import Path

    from scanner.registry import analyse_photos, verify_subject

    reg = open_registry(workspace, db_url)
    live = analyse_photos(reg, [(Path(p).name, Path(p).read_bytes()) for p in photos])
    actor = _actor()
    out = verify_subject(reg, subject_id, live, method=method, by=f"cli:{actor}", actor=actor)
    echo(f"Verified {subject_id} ({method}): the live photo(s) match the enrolled ones ({out['band']}).")


@registry_group.command("unverify")
@click.argument("subject_id")
@workspace_options
@translate_errors
def unverify_command(subject_id, workspace, db_url):
    """Take a subject's verification back: they get delayed counts again, no real-time notice. Audited."""
    from scanner.registry import unverify_subject

    unverify_subject(open_registry(workspace, db_url), subject_id)
    echo(f"{subject_id} is no longer verified.")


@registry_group.command("digest")
@workspace_options
@translate_errors
def digest_command(workspace, db_url):
    """Send each unverified subject with a webhook the delayed counts of their findings, where these
    changed (`facetrace serve` does it every hour; run this from cron in a deployment without it)."""
    from scanner.disclosure import send_digests
    from scanner.service import service_store

    reg = open_registry(workspace, db_url)
    sent = send_digests(reg.store, service_store(reg.case_store), actor=_actor())
    echo(f"{len(sent)} digest(s) delivered.")


@registry_group.command("audit")
@click.option(
    "--verify",
    is_flag=True,
    help="Check the hash chain and the signed heads; exit 1 if an entry was edited, added or removed.",
)
@click.option(
    "--head",
    "heads",
    multiple=True,
    metavar="SEQ:HASH",
    help="With --verify: a head published earlier (a signed report's audit_head) that the log must "
    "still hold (repeatable).",
)
@click.option("--json", "as_json", is_flag=True)
@workspace_options
@translate_errors
def audit_command(verify, heads, as_json, workspace, db_url):
    """Print the registry's audit log (every enroll, search, scan, withdrawal and erasure).

    \b
    Examples:
      facetrace registry audit --verify
      facetrace registry audit --verify --head 42:5f0c...e1   (a report's audit_head: seq and hash)
    """
    from scanner.auditlog import open_audit_log, parse_head
    from scanner.pipeline import open_store

    anchors = [parse_head(h) for h in heads]
    if anchors and not verify:
        raise click.UsageError("--head is checked by --verify: give both")
    store, root = open_store(workspace, db_url)
    reg = open_audit_log(store, root)
    if verify:
        check = reg.check_audit(anchors)
        for p in check["problems"]:
            echo(f"TAMPERED: {p}")
        for note in check["notes"]:
            echo(f"note: {note}")
        if check["problems"]:
            raise VerificationFailed(f"the audit log was tampered with: {len(check['problems'])} problem(s) above")
        signed = check["signed_head"]
        covered = (
            "no signed head"
            if signed is None
            else f"signed head: entry {signed['seq']} ({signed['at'][:19]}, {check['head_log']})"
        )
        if signed is not None and check["uncovered"]:
            covered += f"; the {check['uncovered']} newest entries are not covered by a signed head yet"
        published = f"; {len(anchors)} published head(s) found" if anchors else ""
        echo(f"Audit log intact: {check['entries']} entries, hash chain and head verified; {covered}{published}.")
        return
    entries = reg.audit_entries()
    if as_json:
        echo_lines(json.dumps(entries, indent=2).split("\n"))
        return
    for e in entries:
        echo(f"{e['seq']:>5}  {e['at'][:19]}  {e['action']:<22} {e['subject_id'] or '-':<16}  {e['actor']}")


def _audit(reg, action, actor, subject_id, details):
    """Audit through the log opened with the workspace folder: its head is signed whatever the database."""
    from scanner.auditlog import open_audit_log

    open_audit_log(reg.case_store, reg.root).audit(action, actor, subject_id, details)


def _actor():
    from scanner.registry import default_actor

    return default_actor()
