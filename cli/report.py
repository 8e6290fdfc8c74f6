"""`facetrace report`: write a signed evidence report of a scan, and verify one."""

from __future__ import annotations

import click

from cli.common import EXIT_CODES, echo, echo_lines, translate_errors, workspace_options
from scanner.errors import VerificationFailed


class _DefaultToWrite(click.Group):
    """`facetrace report [SCAN_ID] --out DIR` writes; `facetrace report verify ...` verifies."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help") or not args:
            args.insert(0, "write")
        return super().parse_args(ctx, args)


@click.group("report", cls=_DefaultToWrite, epilog=EXIT_CODES)
def report_group():
    """Write a signed evidence report of a scan (default: the latest), or verify one.

    \b
    Examples:
      facetrace report --out case-42-report
      facetrace report 3fd0381502f54c92a080cbf046a073de --out r --subject 3f9c0a1b2c3d4e5f
      facetrace report --out r --case-uco --dump /mnt/evidence/dump
      facetrace report verify case-42-report/report.json --key investigator.pem --dump ./dump
      facetrace report key --out investigator.pem
    """


@report_group.command("write")
@click.argument("scan_id", required=False)
@click.option(
    "--out", "out_dir", required=True, metavar="DIR", help="Folder for report.json, report.html, manifest.txt."
)
@click.option("--subject", "subject_id", help="Only this enrolled subject's findings (for the person concerned).")
@click.option(
    "--unredacted",
    is_flag=True,
    help="Show faces sharp instead of pixelated; the report is marked so and the audit log records it.",
)
@click.option(
    "--no-pictures", is_flag=True, help="Cut no pictures from the dump (findings cite hashes and distances only)."
)
@click.option(
    "--dump",
    "dump_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Where the dump is now, if it moved since the scan (repeatable); pictures are cut from it.",
)
@click.option(
    "--case-uco",
    is_flag=True,
    help="Also write report.jsonld: the report as CASE/UCO JSON-LD (for Autopsy and other forensic tools).",
)
@workspace_options
@translate_errors
def write_command(scan_id, out_dir, subject_id, unredacted, no_pictures, dump_paths, case_uco, workspace, db_url):
    """Write report.json (signed, Ed25519), report.html (self-contained) and manifest.txt (hashdeep).

    Each finding's picture is cut from the dump, whose bytes are checked against the scan first.
    Pictures are pixelated unless --unredacted.
    """
    from scanner.evidence import write_report
    from scanner.pipeline import open_store

    store, root = open_store(workspace, db_url)
    out = write_report(
        store,
        root,
        out_dir,
        scan_id,
        subject_id=subject_id,
        unredacted=unredacted,
        pictures=not no_pictures,
        dump_paths=list(dump_paths) or None,
        case_uco=case_uco,
    )
    pics = out["pictures"]
    echo(
        f"Report {out['report_id']} of scan {out['scan_id']}: {out['findings']} finding(s), "
        f"{pics['count']} {'UNREDACTED' if unredacted else 'pixelated'} picture(s)"
    )
    for note in pics["notes"]:
        echo(f"  note: {note}", err=True)
    echo(f"  {out['json']}  (signed, with the two files below; key {out['signer']})")
    echo(f"  {out['html']}  (open in a browser; makes no network request)")
    echo(f"  {out['manifest']}  (hashdeep format)")
    if case_uco:
        echo(f"  {out['case_uco']}  (CASE/UCO JSON-LD)")


@report_group.command("verify")
@click.argument("report", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--dump",
    "dump_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Re-hash this dump (file, folder or archive; repeatable) against the report's manifest.",
)
@click.option(
    "--password",
    "passwords",
    multiple=True,
    metavar="PASSWORD",
    help="Password for encrypted members of the dump, as given to the scan (repeatable).",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help="The investigator's public key (a file from `facetrace report key --out`, or its 64-digit "
    "fingerprint): a report signed by any other key fails (repeatable).",
)
@click.option(
    "--trusted-keys",
    "key_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="A file of trusted keys: fingerprints, one a line (# comments), and/or PEM public keys (repeatable).",
)
@translate_errors
def verify_command(report, dump_paths, passwords, keys, key_files):
    """Check a report's signature and signer, every file beside it and, with --dump, every member's
    SHA-256 (exit 1 on any difference).

    The signer's key fingerprint is always printed; without --key or --trusted-keys it is not
    compared with anything, and anyone's key would do. The files the signature covers are named;
    any other file beside the report is refused.

    \b
    Examples:
      facetrace report verify r/report.json --key investigator.pem --dump ./dump
      facetrace report verify r/report.json --trusted-keys keys.txt
    """
    from scanner.evidence.signing import trusted_fingerprints
    from scanner.evidence.verify import check_report

    trusted = trusted_fingerprints(keys, key_files) if keys or key_files else None
    check = check_report(report, list(dump_paths), tuple(passwords), trusted)
    if check.signer is not None:
        pinned = (
            ("a trusted key" if check.trusted else "NOT a trusted key")
            if trusted is not None
            else "not checked against a trusted key: give --key or --trusted-keys"
        )
        echo(f"Signed by Ed25519 key {check.signer} (key id {check.signer[:16]}): {pinned}")
    if check.audit_head:
        echo(f"Audit log head when signed: entry {check.audit_head.get('seq')}, {check.audit_head.get('hash')}")
    echo(f"Covered by the signature: {', '.join(check.covered)}")
    if check.refused:
        more = f" and {len(check.refused) - 20} more" if len(check.refused) > 20 else ""
        echo(f"Refused, not covered by the signature: {', '.join(check.refused[:20])}{more}")
    for note in check.notes:
        echo(f"  note: {note}")
    if check.problems:
        for p in check.problems:
            echo(f"FAILED: {p}")
        raise VerificationFailed(f"the report does not verify: {len(check.problems)} problem(s) above")
    what = " and every dump member matches its manifest entry" if dump_paths else ""
    echo(f"Verified: the signature is valid{what}.")


@report_group.command("key")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also write the public key there (PEM), to publish or hand to a report's recipients.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the fingerprint, key id and PEM as JSON.")
@click.option(
    "--workspace",
    "-w",
    metavar="DIR",
    envvar="FACETRACE_HOME",
    help="Workspace folder (default: $FACETRACE_HOME, else ./facetrace-workspace).",
)
@translate_errors
def key_command(out_file, as_json, workspace):
    """Print (and with --out, export) the workspace's public signing key and its fingerprint.

    Reports and the audit log's heads are signed with this key; it is created on first use.
    Recipients pin it: `facetrace report verify report.json --key FILE` fails on any other signer.

    \b
    Examples:
      facetrace report key
      facetrace report key --out investigator.pem
    """
    import json

    from scanner.evidence.signing import fingerprint, public_key_pem, workspace_key
    from scanner.pipeline import workspace_root

    key = workspace_key(workspace_root(workspace))
    fp, pem = fingerprint(key.public_key()), public_key_pem(key)
    if out_file:
        with open(out_file, "w", encoding="ascii") as f:
            f.write(pem)
    if as_json:
        echo_lines(
            json.dumps(
                {
                    "fingerprint": fp,
                    "key_id": fp[:16],
                    "algorithm": "Ed25519",
                    "pem": pem,
                    **({"out": out_file} if out_file else {}),
                },
                indent=2,
            ).split("\n")
        )
        return
    echo(f"Fingerprint (SHA-256 of the Ed25519 public key): {fp}")
    echo(f"Key id (in each report's signature): {fp[:16]}")
    if out_file:
        echo(f"Written to {out_file}")
    click.echo(pem, nl=False)  # our own PEM text: its newlines are the format
