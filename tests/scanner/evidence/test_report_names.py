"""Hostile file names in a report: control characters, newlines, CR and commas stay inert.

A seller names files `a\\nb.jpg` or `x\\x1b[2J.jpg`: the manifest must keep one line per member
(hashdeep's format has no quoting, so such characters are %-escaped, and `report verify` reads them
back), and the HTML and JSON must show such characters as escapes instead of passing them to a
browser or a terminal.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

HOSTILE = [
    "clear\x1b[2Jscreen.txt",
    "hidden\x1b[8mtext.txt",
    "carriage\rreturn.txt",
    "new\nline.txt",
    "comma,in,name.txt",
    "per%2Ccent.txt",
    "bidi\u202egpj.txt",
    "c1\x9bcontrol.txt",
    "del\x7f.txt",
    "sep\u2028arator.txt",
    "plain.txt",
]
# what must never reach a terminal or a browser raw (a newline only as a line end)
RAW_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _doc(names):
    manifest = [
        {
            "path": f"dump/{n}",
            "relpath": n,
            "size": i + 1,
            "sha256": f"{i:064x}",
            "type": "text/plain",
            "kind": "other",
            "status": "ok",
            "reason": None,
            "duplicate_of": None,
        }
        for i, n in enumerate(names)
    ]
    return {"report_id": "r" * 32, "acquisition": {"scan_id": "s" * 32, "from_web": [], "manifest": manifest}}


def test_hostile_names_keep_one_manifest_line_per_member():
    from scanner.evidence.render import render_manifest

    text = render_manifest(_doc(HOSTILE))
    lines = text.split("\n")
    assert lines[-1] == ""  # ends with a newline
    data = [line for line in lines[:-1] if not line.startswith(("%%%%", "#"))]
    assert len(data) == len(HOSTILE)
    assert "\r" not in text and not RAW_CONTROLS.search(text)
    for line in data:
        size, digest, name = line.split(",")  # exactly three fields, as hashdeep's reader splits them
        assert size.isdigit() and len(digest) == 64


def test_the_manifest_reads_back_exactly_what_was_written():
    from scanner.evidence.render import parse_manifest, render_manifest

    doc = _doc(HOSTILE)
    entries = parse_manifest(render_manifest(doc))
    assert [(e["size"], e["sha256"], e["path"]) for e in entries] == [
        (m["size"], m["sha256"], m["path"]) for m in doc["acquisition"]["manifest"]
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=5))
def test_any_name_round_trips_through_the_manifest(names):
    from scanner.evidence.render import parse_manifest, render_manifest

    text = render_manifest(_doc(names))
    assert not RAW_CONTROLS.search(text) and "\r" not in text
    assert [e["path"] for e in parse_manifest(text)] == [f"dump/{n}" for n in names]


def test_json_output_escapes_the_controls_json_allows_raw():
    from scanner.evidence.render import render_json

    doc = _doc(HOSTILE)
    text = render_json(doc)
    assert not RAW_CONTROLS.search(text)
    assert json.loads(text) == doc  # escapes only: the same document


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    """A real scan of a folder whose file names hold control characters, and its report."""
    from scanner.evidence import write_report
    from scanner.pipeline import open_store
    from tests.conftest import run_scan

    base = tmp_path_factory.mktemp("hostile")
    dump = base / "dump"
    dump.mkdir()
    for i, name in enumerate(HOSTILE):
        (dump / name).write_bytes(f"member {i}\n".encode())
    run_scan([dump], base / "ws", workers=1)
    store, root = open_store(str(base / "ws"))
    out = write_report(store, root, str(base / "out"), actor="tester", pictures=False)
    return dump, out


def test_a_scanned_dump_with_hostile_names_gives_a_manifest_that_verifies(hostile_report):
    from scanner.evidence.verify import verify_report

    dump, out = hostile_report
    text = open(out["manifest"], encoding="utf-8", newline="").read()
    assert text.count("\n") == 4 + len(HOSTILE) and "\r" not in text and not RAW_CONTROLS.search(text)
    assert verify_report(out["json"], [str(dump)]) == []


def test_html_and_json_show_control_characters_as_escapes(hostile_report):
    _, out = hostile_report
    page = open(out["html"], encoding="utf-8", newline="").read()
    assert not RAW_CONTROLS.search(page) and "\r" not in page
    # each escape is visible, and marked so that it cannot pass for the literal text "\x1b"
    assert "<span class='ctl' title='control character U+001B'>\\x1b</span>" in page
    assert "<span class='ctl' title='control character U+000A'>\\n</span>" in page
    assert "comma,in,name.txt" in page  # a comma is no danger in HTML: shown as it is
    raw = open(out["json"], encoding="utf-8", newline="").read()
    assert not RAW_CONTROLS.search(raw)
    names = {m["relpath"] for m in json.loads(raw)["acquisition"]["manifest"]}
    assert names == set(HOSTILE)
