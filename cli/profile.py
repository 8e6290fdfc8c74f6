"""`facetrace profile`: who is in a dump, how it was packaged and captured, and whether it looks sold."""

from __future__ import annotations

import json

import click

from cli.common import EXIT_CODES, echo_lines, translate_errors, workspace_options


@click.command("profile", epilog=EXIT_CODES)
@click.argument("scan_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the profile as one JSON object.")
@workspace_options
@translate_errors
def profile_command(scan_id, as_json, workspace, db_url):
    """Profile a scanned dump (default: the latest scan): people, packaging, sidecars, capture, bundle score.

    Works without a registry: faces are clustered into people, and the dump's structure and EXIF
    data tell how it was put together (docs/profile.md).

    \b
    Examples:
      facetrace profile
      facetrace profile 3fd0381502f54c92a080cbf046a073de --json > profile.json
    """
    from scanner.pipeline import open_store
    from scanner.profile.dump import build_profile

    store, _root = open_store(workspace, db_url)
    profile = build_profile(store, scan_id)
    if as_json:
        echo_lines(json.dumps(profile, ensure_ascii=False, indent=2).split("\n"))
        return
    echo_lines(format_profile(profile))


def _range(people: dict) -> str:
    """The count's range with the density gates 3% stricter and looser (docs/profile.md)."""
    low_high = people.get("count_range")
    if not low_high or low_high[0] == low_high[1] == people["count"]:
        return ""
    return f"range {low_high[0]}-{low_high[1]}; "


def format_profile(p: dict) -> list[str]:
    people, pack, cap, bundle = p["people"], p["packaging"], p["capture"], p["bundle"]
    lines = [
        f"Profile of scan {p['scan_id']} ({p['members']} members)",
        f"  people      {people['count']}  ({_range(people)}{people['background_faces']} background faces not counted)",
        *([f"              {people['caveat']}"] if people.get("caveat") else []),
        f"  packaging   {pack['signature']}",
    ]
    if pack["naming_patterns"]:
        lines.append(
            "  names       " + ", ".join(f"{x['pattern']} ({x['count']})" for x in pack["naming_patterns"][:3])
        )
    for kind, s in p["sidecars"].items():
        lines.append(f"  sidecars    {s['count']} {kind.replace('_', ' ')}, e.g. {s['examples'][0]}")
    if cap["with_exif"]:
        cams = ", ".join(f"{c['camera']} ({c['photos']})" for c in cap["cameras"][:2]) or "no camera named"
        lines.append(
            f"  capture     {cap['with_exif']} of {cap['images']} photos with EXIF; {cams}; "
            f"{cap['days']} day(s); GPS in {cap['with_gps']}"
        )
    else:
        lines.append(f"  capture     no EXIF capture data in {cap['images']} photos")
    for e in cap["evidence"]:
        lines.append(f"              {e}")
    for k in p.get("known_datasets", []):
        lines.append(
            f"  known       {k['members']} members are {k['match'].replace('_', ' ')}s of items of the known "
            f"dataset {k['dataset']}"
        )
    verdict = "LIKELY a face-data bundle" if bundle["likely_bundle"] else "not assessed as a bundle"
    lines.append(f"  bundle      score {bundle['score']:.2f} (threshold {bundle['threshold']}): {verdict}")
    for r in bundle["reasons"]:
        lines.append(f"              +{r['weight']:.2f} {r['why']}")
    return lines
