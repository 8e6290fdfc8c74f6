"""`facetrace datasets`: known public datasets whose photos a scan should not take for leaked data."""

from __future__ import annotations

import click

from cli.common import EXIT_CODES, echo, translate_errors, workspace_options


@click.group("datasets", epilog=EXIT_CODES)
def datasets_group():
    """Known public datasets (LFW, ...): fingerprinted once, marked in every scan.

    \b
    Examples:
      facetrace datasets add lfw ../shared/facedata/lfw_deepfunneled
      facetrace datasets list
    """


@datasets_group.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True))
@workspace_options
@translate_errors
def add_command(name, path, workspace, db_url):
    """Fingerprint PATH (folder or archive) as the known dataset NAME, and mark it in every scan so far."""
    from scanner.pipeline import open_store
    from scanner.profile.datasets import add_dataset

    store, _root = open_store(workspace, db_url)
    out = add_dataset(store, name, path)
    echo(f"Dataset {name}: {out['items']} items fingerprinted ({out['images']} images with a pHash).")
    for p in out["problems"][:10]:
        echo(f"  not an image: {p}", err=True)
    for scan_id, n in out["marked"].items():
        if n:
            echo(f"  scan {scan_id}: {n} member(s) come from a known dataset")


@datasets_group.command("list")
@workspace_options
@translate_errors
def list_command(workspace, db_url):
    """List the known datasets of the workspace."""
    from scanner.pipeline import open_store

    store, _root = open_store(workspace, db_url)
    rows = store.datasets()
    if not rows:
        echo("No known dataset. Add one with `facetrace datasets add NAME PATH`.")
    for d in rows:
        echo(f"{d['name']}: {d['items']} items from {d['source']} (added {d['added_at']})")
