"""`facetrace lineage`: the graph of the workspace's dumps and how they relate."""

from __future__ import annotations

import json

import click

from cli.common import EXIT_CODES, echo, echo_lines, translate_errors, workspace_options


@click.command("lineage", epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="Print the graph as one JSON object (scans and relations).")
@workspace_options
@translate_errors
def lineage_command(as_json, workspace, db_url):
    """Show every scanned dump with its first-seen time, and how each relates to earlier ones.

    Relations: same, re-encoded copy, subset, superset, partial subset, partial overlap, by
    shared items (identical or near copies) and shared people (docs/profile.md).
    """
    from scanner.pipeline import open_store
    from scanner.profile.lineage import lineage_graph

    store, _root = open_store(workspace, db_url)
    graph = lineage_graph(store)
    if as_json:
        echo_lines(json.dumps(graph, ensure_ascii=False, indent=2).split("\n"))
        return
    if not graph["scans"]:
        echo("No scan in this workspace yet.")
        return
    out_edges: dict[str, list[dict]] = {}
    for r in graph["relations"]:
        out_edges.setdefault(r["scan_id"], []).append(r)
    for i, s in enumerate(graph["scans"], 1):
        echo(
            f"[{i}] scan {s['scan_id']}  first seen {s['first_seen']}  "
            f"{s['files'] or 0} files, {s['people'] or 0} people  ({', '.join(s['inputs'])})"
        )
        for r in out_edges.get(s["scan_id"], []):
            ev = r["evidence"]
            echo(
                f"      -> {ev['description']}: {ev['share_of_a']:.0%} of its items here, "
                f"{ev['share_of_b']:.0%} of these from it ({ev['exact']} identical, "
                f"{ev['near_copies']} near copies), {ev['people_shared']} people shared"
            )
