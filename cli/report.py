"""`facetrace report`: write a signed evidence report of a scan, and verify one."""

from __future__ import annotations

import sys

import click

from cli.common import EXIT_CODES, translate_errors, workspace_options


class _DefaultToWrite(click.Group):
    """`facetrace report [SCAN_ID] --out DIR` writes; `facetrace report verify ...` verifies."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args.insert(0, "write")
        elif not args:
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
      facetrace report verify case-42-report/report.json --dump ./dump
    """


@report_group.command("write")
@click.argument("scan_id", required=False)
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Folder for report.json, report.html, manifest.txt.")
@click.option("--subject", "subject_id", help="Only this enrolled subject's findings (for the person concerned).")
@click.option("--unredacted", is_flag=True,
              help="Show faces sharp instead of pixelated; the report is marked so and the audit log records it.")
@click.option("--no-pictures", is_flag=True, help="Cut no pictures from the dump (findings cite hashes and distances only).")
@click.option("--dump", "dump_paths", multiple=True, type=click.Path(exists=True),
              help="Where the dump is now, if it moved since the scan (repeatable); pictures are cut from it.")
@click.option("--case-uco", is_flag=True,
              help="Also write report.jsonld: the report as CASE/UCO JSON-LD (for Autopsy and other forensic tools).")
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
    out = write_report(store, root, out_dir, scan_id, subject_id=subject_id, unredacted=unredacted,
                       pictures=not no_pictures, dump_paths=list(dump_paths) or None, case_uco=case_uco)
    pics = out["pictures"]
    click.echo(f"Report {out['report_id']} of scan {out['scan_id']}: {out['findings']} finding(s), "
               f"{pics['count']} {'UNREDACTED' if unredacted else 'pixelated'} picture(s)")
    for note in pics["notes"]:
        click.echo(f"  note: {note}", err=True)
    click.echo(f"  {out['json']}  (signed)")
    click.echo(f"  {out['html']}  (open in a browser; makes no network request)")
    click.echo(f"  {out['manifest']}  (hashdeep format)")
    if case_uco:
        click.echo(f"  {out['case_uco']}  (CASE/UCO JSON-LD)")


@report_group.command("verify")
@click.argument("report", type=click.Path(exists=True, dir_okay=False))
@click.option("--dump", "dump_paths", multiple=True, type=click.Path(exists=True),
              help="Re-hash this dump (file, folder or archive; repeatable) against the report's manifest.")
@click.option("--password", "passwords", multiple=True, metavar="PASSWORD",
              help="Password for encrypted members of the dump, as given to the scan (repeatable).")
@translate_errors
def verify_command(report, dump_paths, passwords):
    """Check a report's signature and, with --dump, every member's SHA-256 (exit 1 on any difference)."""
    from scanner.evidence.verify import verify_report

    problems = verify_report(report, list(dump_paths), tuple(passwords))
    if problems:
        for p in problems:
            click.echo(f"FAILED: {p}")
        sys.exit(1)
    what = " and every dump member matches its manifest entry" if dump_paths else ""
    click.echo(f"Verified: the signature is valid{what}.")
