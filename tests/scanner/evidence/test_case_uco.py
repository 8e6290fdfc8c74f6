"""CASE/UCO JSON-LD export: validated against the CASE ontology's SHACL shapes (case-utils)."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest

pytestmark = pytest.mark.facedata


def _validate(path):
    case_validate = pytest.importorskip(
        "case_utils.case_validate", reason="case-utils (the CASE validator) is not installed"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the validator warns about every unknown concept, then fails on it
        return case_validate.validate(str(path), case_version="case-1.5.0", allow_warnings=False)


@pytest.fixture(scope="module")
def exported(case, tmp_path_factory):
    from scanner.evidence import write_report
    from scanner.pipeline import open_store

    base = case[0]
    store, root = open_store(str(base / "ws"))
    out = write_report(store, root, str(tmp_path_factory.mktemp("case-uco")), actor="tester", case_uco=True)
    return out, json.loads(open(out["json"], encoding="utf-8").read()), json.loads(open(out["case_uco"]).read())


@pytest.mark.slow
def test_export_conforms_to_the_case_ontology_shapes(exported, tmp_path):
    out, _, graph = exported
    result = _validate(out["case_uco"])
    assert result.conforms, result.text
    # the validator can fail: a misspelled property and a non-hex hash are caught
    bad = json.loads(json.dumps(graph))
    (file_node,) = [n for n in bad["@graph"] if n["@type"] == "uco-observable:File"][:1]
    file_node["hasFacet"] = file_node.pop("uco-core:hasFacet")
    file_node["uco-core:hasFacett"] = []
    hash_node = next(
        n for n in bad["@graph"] if n["@type"] == "uco-observable:File" and len(n.get("uco-core:hasFacet", [])) == 2
    )["uco-core:hasFacet"][1]["uco-observable:hash"][0]
    hash_node["uco-types:hashValue"]["@value"] = "not hex"
    (tmp_path / "bad.jsonld").write_text(json.dumps(bad))
    assert not _validate(tmp_path / "bad.jsonld").conforms


def test_export_carries_every_member_hash_finding_and_the_signed_report(exported):
    out, doc, graph = exported
    nodes = graph["@graph"]
    hashes = {}
    for n in nodes:
        if n["@type"] != "uco-observable:File":
            continue
        facets = {f["@type"]: f for f in n["uco-core:hasFacet"]}
        content = facets.get("uco-observable:ContentDataFacet", {})
        for h in content.get("uco-observable:hash", []):
            hashes[facets["uco-observable:FileFacet"]["uco-observable:filePath"]] = h["uco-types:hashValue"]["@value"]
    for m in doc["acquisition"]["manifest"]:
        if m["sha256"]:
            assert hashes[m["path"]] == m["sha256"].upper()
    assert hashes["report.json"] == hashlib.sha256(open(out["json"], "rb").read()).hexdigest().upper()
    notes = [n for n in nodes if n["@type"] == "uco-core:Annotation" and "facetrace-finding" in n["uco-core:tag"]]
    assert len(notes) == sum(len(s["items"]) for s in doc["findings"]) > 0
    assert all("distance" in n["uco-core:statement"] or "hamming_bits" in n["uco-core:statement"] for n in notes)
    unreadable = [
        n for n in nodes if n["@type"] == "uco-core:Annotation" and "facetrace-member-status" in n["uco-core:tag"]
    ]
    assert len(unreadable) == len(doc["acquisition"]["unreadable"]) == 1
    (action,) = [n for n in nodes if n["@type"] == "case-investigation:InvestigativeAction"]
    assert action["uco-action:startTime"]["@value"] == doc["acquisition"]["started_at"]
    tool = next(n for n in nodes if n["@id"] == action["uco-action:instrument"]["@id"])
    assert tool["uco-tool:version"] == doc["facetrace"]
    custody = [n for n in nodes if n["@type"] == "uco-action:Action"]
    assert len(custody) == len(doc["custody"])
    contained = [n for n in nodes if n["@type"] == "uco-observable:ObservableRelationship"]
    assert len(contained) == len(doc["acquisition"]["manifest"])  # every member held by the dump folder
