"""`facetrace enroll`: add a consenting person to the registry."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from cli.common import EXIT_CODES, echo, echo_lines, open_registry, translate_errors, workspace_options


@click.command("enroll", epilog=EXIT_CODES)
@click.argument("photos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--consent",
    "consent_text",
    required=True,
    metavar="FILE|default",
    help="The consent text the person read and accepted: a text file, or 'default' for facetrace's "
    "own (see docs/registry.md). Its SHA-256 is stored with the enrollment.",
)
@click.option("--consent-version", help="Version name of the consent text (default: the file name).")
@click.option("--purpose", default="detect my face in traded face-data dumps", show_default=True)
@click.option("--scope", default="registry matching of scans and uploads in this workspace", show_default=True)
@click.option("--jurisdiction", default="unspecified", show_default=True, help="e.g. CN (PIPL), EU (GDPR).")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), help="Consent expiry date (YYYY-MM-DD).")
@click.option("--label", help="Optional free-text label (avoid names: the subject id is pseudonymous).")
@click.option("--keep-photos", is_flag=True, help="Also store the photos themselves (default: only templates).")
@click.option(
    "--allow-similar",
    is_flag=True,
    help="Enroll even though the photos match a person already enrolled (after checking that they are two "
    "people, e.g. twins; audited). Without it such an enrollment is refused: a person enrolls once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@workspace_options
@translate_errors
def enroll_command(
    photos,
    consent_text,
    consent_version,
    purpose,
    scope,
    jurisdiction,
    expires,
    label,
    keep_photos,
    allow_similar,
    as_json,
    workspace,
    db_url,
):
    """Enroll one consenting person from photos that each show exactly one face.

    All photos must be of the same person (the command names the photo that disagrees). Prints
    the pseudonymous subject id and a one-time deletion token, and writes a consent receipt.

    \b
    Example:
      facetrace enroll me1.jpg me2.jpg me3.jpg --consent default --jurisdiction CN
    """
    from pathlib import Path

    from scanner.consent import DEFAULT_TEXT, DEFAULT_VERSION, ConsentInput
    from scanner.registry import confirm_enrollment, enroll

    if consent_text == "default":
        text, version = DEFAULT_TEXT, consent_version or DEFAULT_VERSION
    else:
        path = Path(consent_text)
        if not path.is_file():
            raise click.BadParameter(f"{consent_text} is neither 'default' nor a readable file", param_hint="--consent")
        text, version = path.read_text(encoding="utf-8"), consent_version or path.name
    consent = ConsentInput(
        purpose=purpose,
        scope=scope,
        text=text,
        text_version=version,
        jurisdiction=jurisdiction,
        expires_at=expires.replace(tzinfo=UTC) if expires else None,
        granted_at=datetime.now(UTC),
    )
    registry = open_registry(workspace, db_url)
    result = enroll(
        registry,
        [(p, Path(p).read_bytes()) for p in photos],
        consent,
        label=label,
        keep_photos=keep_photos,
        confirm=False,
        allow_similar=allow_similar,
    )  # confirmed once the token is printed
    for w in result.warnings:
        echo(f"Warning: {w}", err=True)
    earlier = result.earlier or {"scans": 0, "findings": []}
    if as_json:
        echo_lines(
            json.dumps(
                {
                    "subject_id": result.subject_id,
                    "deletion_token": result.deletion_token,
                    "receipt": str(result.receipt_path),
                    "earlier_scans_searched": earlier["scans"],
                    "earlier_findings": earlier["findings"],
                }
            ).split("\n")
        )
        sys.stdout.flush()
        confirm_enrollment(result)
        return
    echo(f"Enrolled subject {result.subject_id} from {len(photos)} photo(s).")
    echo(f"Deletion token (shown once, keep it safe): {result.deletion_token}")
    echo(f"Consent receipt: {result.receipt_path}")
    if earlier["scans"]:
        echo(
            f"Searched {earlier['scans']} earlier scan(s) of this workspace: "
            f"{len(earlier['findings'])} finding(s) concerning this person."
        )
        from cli.match import format_finding

        for f in earlier["findings"][:20]:
            echo(format_finding(f))
    sys.stdout.flush()
    confirm_enrollment(result)  # the person has their token now
