"""Docs that cannot rot: the CLI reference matches --help, and every doc is linked from the README."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def test_cli_reference_is_current():
    spec = importlib.util.spec_from_file_location("gen", REPO / "docs" / "gen_cli_reference.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (REPO / "docs" / "cli.md").read_text() == gen.render(), "run: python docs/gen_cli_reference.py"


def test_every_doc_is_reachable_from_the_readme():
    readme = (REPO / "README.md").read_text()
    for doc in sorted((REPO / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in readme, f"README does not link docs/{doc.name}"
