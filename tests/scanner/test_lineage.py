"""Lineage across dumps, from real photos: a dump made of half of another, re-encoded, plus new
people, is a re-encoded partial subset of it; a byte copy is the same dump; a full re-encode is a
re-encoded copy."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import cli
from scanner.pipeline import open_store
from tests.conftest import facedata_path, run_scan

# slow: every test needs the module's dumps, scanned once (about 17 s in the suite)
pytestmark = [pytest.mark.facedata, pytest.mark.slow]


def _reencode(src, dst):
    Image.open(src).resize((200, 200)).save(dst, quality=70)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    base = tmp_path_factory.mktemp("lineage")
    people = [d for d in sorted(facedata_path("lfw_deepfunneled").iterdir()) if d.is_dir()]
    a, b, c, d = (base / n for n in "abcd")
    for i, person in enumerate(people[:10]):
        for p in sorted(person.iterdir())[:4]:
            (a / person.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, a / person.name / p.name)
            (d / person.name).mkdir(parents=True, exist_ok=True)
            _reencode(p, d / person.name / p.name)
            if i < 5:  # half of A, re-encoded
                (b / person.name).mkdir(parents=True, exist_ok=True)
                _reencode(p, b / person.name / p.name)
    for person in people[20:24]:  # and people A does not have
        (b / person.name).mkdir(parents=True)
        for p in sorted(person.iterdir())[:4]:
            shutil.copy(p, b / person.name / p.name)
    shutil.copytree(a, c)
    ws = base / "ws"
    summaries = {name: run_scan([path], ws)[0] for name, path in (("a", a), ("b", b), ("c", c), ("d", d))}
    return ws, summaries


def _relation(summary, earlier):
    (rel,) = [r for r in summary.lineage if r["earlier_scan_id"] == earlier.scan_id]
    return rel


def test_half_reencoded_plus_new_people_is_a_reencoded_partial_subset(dumps):
    _, s = dumps
    rel = _relation(s["b"], s["a"])
    assert rel["kind"] == "reencoded_partial_subset"
    ev = rel["evidence"]
    assert ev["a_items"] == 40 and ev["b_items"] == 36 and ev["exact"] == 0
    assert ev["near_copies"] >= 19 and 0.45 <= ev["share_of_a"] <= 0.5
    assert ev["people_shared"] == 5 and ev["people_in_new"] == 9
    assert ev["description"] == f"a re-encoded partial subset of scan {s['a'].scan_id}"


def test_a_byte_copy_is_the_same_dump_and_a_full_reencode_is_a_reencoded_copy(dumps):
    _, s = dumps
    assert _relation(s["c"], s["a"])["kind"] == "same"
    assert _relation(s["d"], s["a"])["kind"] == "reencoded_copy"
    assert s["a"].lineage == ()  # the first dump relates to nothing earlier


def test_lineage_command_prints_the_graph_with_first_seen_times(dumps):
    ws, s = dumps
    out = CliRunner().invoke(cli, ["lineage", "--workspace", str(ws)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert sum(1 for line in lines if line.startswith("[")) == 4
    store, _ = open_store(str(ws))
    first = store.get_scan(s["a"].scan_id)["started_at"]
    assert f"scan {s['a'].scan_id}  first seen {first}" in out.output
    assert f"-> a re-encoded partial subset of scan {s['a'].scan_id}" in out.output


def test_the_report_includes_the_lineage(dumps, tmp_path):
    import json

    from scanner.evidence import write_report

    ws, s = dumps
    store, root = open_store(str(ws))
    out = write_report(store, root, str(tmp_path / "r"), s["b"].scan_id, actor="tester", pictures=False)
    doc = json.loads(open(out["json"], encoding="utf-8").read())
    assert [r["kind"] for r in doc["lineage"] if r["earlier_scan_id"] == s["a"].scan_id] == ["reencoded_partial_subset"]
    assert "a re-encoded partial subset of scan" in open(out["html"], encoding="utf-8").read()
