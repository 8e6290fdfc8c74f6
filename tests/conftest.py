"""Shared fixtures: the real photos in ../shared/facedata, and scans computed once per session."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FACEDATA = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata"))


def facedata_path(*parts: str) -> Path:
    """Return a path under the shared face photos, skipping the test when they are absent."""
    path = FACEDATA.joinpath(*parts)
    if not FACEDATA.is_dir():
        pytest.skip(f"real face photos not found at {FACEDATA} (set FACETRACE_FACEDATA to their folder)")
    if not path.exists():
        pytest.skip(f"{path} is missing from the shared face photos")
    return path


@pytest.fixture(scope="session")
def facedata() -> Path:
    return facedata_path()


def run_scan(paths, workspace, **options):
    """Scan `paths` into `workspace`; return (summary, results in emission order)."""
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan

    store, root = open_store(str(workspace))
    results = []
    try:
        summary = scan([str(p) for p in paths], store, ScanOptions(**options), on_result=results.append,
                       workspace=root)
    finally:
        store.close()
    return summary, results


def by_relpath(results):
    return {r.member.relpath: r for r in results}


def jpeg_bytes(img, quality=90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
