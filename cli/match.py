"""`facetrace match`: check one photo against the registry."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.common import EXIT_CODES, echo, echo_lines, open_registry, translate_errors, workspace_options


@click.command("match", epilog=EXIT_CODES)
@click.argument("photo", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@workspace_options
@translate_errors
def match_command(photo, as_json, workspace, db_url):
    """Check one photo against the registry: exact copy, near copy, or same person.

    One photo alone is at most 'probable' for a same-person finding; scanning several photos
    of a person together can make it 'confident' (docs/matching.md).

    \b
    Example:
      facetrace match suspicious.jpg
    """
    from scanner.matching.matcher import match_photo
    from scanner.registry import default_actor

    findings = match_photo(open_registry(workspace, db_url), photo, Path(photo).read_bytes(), default_actor())
    if as_json:
        echo_lines(json.dumps(findings, indent=2).split("\n"))
        return
    if not findings:
        echo("No enrolled person found in this photo.")
    for f in findings:
        echo(format_finding(f))


def format_finding(f: dict) -> str:
    ev = f["evidence"]
    if f["kind"] == "same_person":
        detail = f"distance {ev['distance']:.3f}"
        if "group" in ev:
            g = ev["group"]
            detail += f", group of {g['group_photos']} photos at {g['group_centroid_distance']:.3f}"
        margin = (ev.get("normalised") or {}).get("margin")
        if margin is not None:
            detail += f", {margin:.3f} closer than the crowd around it"
        if ev.get("capped"):
            detail += f"; held back: {ev['capped']}"
    elif f["kind"] == "near_copy" and ev.get("method") == "face":
        detail = f"same face pixels: distance {ev['face_distance']:.3f} to an enrolled photo's face"
    elif f["kind"] == "near_copy":
        detail = f"pHash {ev['hamming_bits']} bits from enrolled {ev['enrolled_variant']}"
    else:
        detail = "identical bytes"
    face = "" if f["face_index"] is None else f" face {f['face_index']}"
    if "video" in ev:
        v = ev["video"]
        face = f" at {', '.join(v['time_ranges'])} (person {v['track']})"
        detail += f"; {v['track_frames_within_possible']} of {v['track_frames']} sampled frames agree"
        if v.get("animation"):
            detail += "; made from a single still"
    return f"  {f['band']:<9} {f['kind']:<11} subject {f['subject_id']}  {f['logical_path']}{face}  ({detail})"
