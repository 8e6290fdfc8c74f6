"""CASE/UCO JSON-LD export of a report document (the exchange format of Autopsy and other tools).

A pure function of the signed report document, like the JSON and HTML renderers. The graph has:

- the scan as a `case-investigation:InvestigativeAction` (times, performer, facetrace as a
  `uco-tool:ConfiguredTool` whose configuration holds the engine, model-file hashes and thresholds),
  with the inputs as its objects and a `case-investigation:ProvenanceRecord` of every member as its
  result;
- every input and member as a `uco-observable:File` with a `FileFacet` (name, path, size) and a
  `ContentDataFacet` (size, MIME type, SHA-256), members linked to the archive or input holding
  them by a `Contained_Within` `ObservableRelationship`;
- every finding and every unreadable member as a `uco-core:Annotation` on its file, with the
  finding's evidence in its statement;
- every chain-of-custody audit entry as a `uco-action:Action`;
- report.json itself as a file with its SHA-256, when given, binding this export to the signed report.

Faces are not exported: pictures stay in the signed report. The export is validated against the
shapes of CASE/UCO 1.5.0 (docs/report-format.md).
"""

from __future__ import annotations

import json
import uuid

KB = "urn:facetrace:kb:"

CONTEXT = {
    "kb": KB,
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-configuration": "https://ontology.unifiedcyberontology.org/uco/configuration/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def render_case_uco(doc: dict, report_json_sha256: str | None = None) -> str:
    """Return the JSON-LD text of the report document `doc` (unsafe characters of names escaped,
    as in report.json: render.json_text)."""
    from scanner.evidence.render import json_text

    return json_text(case_uco_graph(doc, report_json_sha256), indent=1) + "\n"


def bound_report_sha256(graph: dict, report_id: str) -> str | None:
    """The SHA-256 of report.json that an export names (lower case), or None when it names none."""
    want = f"kb:File-{uuid.uuid5(_Graph(report_id).namespace, 'File:report.json')}"
    for node in graph.get("@graph", []) if isinstance(graph, dict) else []:
        if isinstance(node, dict) and node.get("@id") == want:
            for facet in node.get("uco-core:hasFacet", []):
                for h in facet.get("uco-observable:hash", []) if isinstance(facet, dict) else []:
                    value = h.get("uco-types:hashValue", {}).get("@value") if isinstance(h, dict) else None
                    if isinstance(value, str):
                        return value.lower()
    return None


def case_uco_graph(doc: dict, report_json_sha256: str | None = None) -> dict:
    graph = _Graph(doc["report_id"])
    acq, method = doc["acquisition"], doc["method"]

    config_entries = []
    settings = {
        **{f"version:{k}": v for k, v in method["engine"].get("versions", {}).items()},
        **{f"model-sha256:{k}": v for k, v in method["engine"].get("model_files", {}).items()},
        **{f"scan:{k}": v for k, v in method["parameters"].items()},
        **{f"policy:{k}": v for k, v in method["policy"].items()},
        "registry_subjects_at_scan": method["registry_subjects_at_scan"],
    }
    for name, value in settings.items():
        config_entries.append(
            graph.node(
                "ConfigurationEntry",
                "uco-configuration:ConfigurationEntry",
                name,
                {
                    "uco-configuration:itemName": name,
                    "uco-configuration:itemValue": value
                    if isinstance(value, str)
                    else json.dumps(value, sort_keys=True),
                },
            )
        )
    config = graph.node(
        "Configuration",
        "uco-configuration:Configuration",
        "scan",
        {"uco-configuration:configurationEntry": [_ref(e) for e in config_entries]},
    )
    tool = graph.node(
        "Tool",
        "uco-tool:ConfiguredTool",
        "facetrace",
        {
            "uco-core:name": "facetrace",
            "uco-tool:version": doc["facetrace"],
            "uco-tool:toolType": "face-data leak detector and dataset provenance scanner",
            "uco-configuration:usesConfiguration": _ref(config),
        },
    )
    performer = graph.node(
        "Identity",
        "uco-identity:Identity",
        doc["generated_by"] or "unknown",
        {"uco-core:name": doc["generated_by"] or "unknown"},
    )

    members: dict[str, dict] = {}
    for m in acq["manifest"]:
        members[m["relpath"]] = graph.file(
            f"member:{m['relpath']}",
            name=m["relpath"].rsplit("/", 1)[-1],
            path=m["path"],
            size=m["size"],
            sha256=m["sha256"],
            mime=m["type"] or None,
        )
    by_path = {m["path"]: members[m["relpath"]] for m in acq["manifest"]}
    inputs = []
    for i in acq["inputs"]:  # a file given as input is also a member: one node for both
        inputs.append(
            by_path.get(i["path"])
            or graph.file(
                f"input:{i['abspath']}",
                name=i["path"].rstrip("/").rsplit("/", 1)[-1] or i["path"],
                path=i["abspath"],
                size=i["size"],
                sha256=i["sha256"],
                mime=None,
                directory=i["kind"] == "folder",
            )
        )
    for m in acq["manifest"]:
        parent = None
        if "!/" in m["relpath"]:
            parent = members.get(m["relpath"].rsplit("!/", 1)[0])
        if parent is None:
            parent = next(
                (
                    n
                    for n, i in zip(inputs, acq["inputs"], strict=False)
                    if m["path"] == i["path"]
                    or m["path"].startswith(i["path"].rstrip("/") + "/")
                    or m["path"].startswith(i["path"] + "!/")
                ),
                None,
            )
        if parent is not None and parent is not members[m["relpath"]]:
            graph.node(
                "Relationship",
                "uco-observable:ObservableRelationship",
                f"contained:{m['relpath']}",
                {
                    "uco-core:source": _ref(members[m["relpath"]]),
                    "uco-core:target": _ref(parent),
                    "uco-core:kindOfRelationship": "Contained_Within",
                    "uco-core:isDirectional": True,
                },
            )

    annotations = []
    for s in doc["findings"]:
        for item in s["items"]:
            target = by_path.get(item["logical_path"])
            if target is None:
                continue
            face = "" if item["face_index"] is None else f", face {item['face_index']}"
            annotations.append(
                graph.node(
                    "Annotation",
                    "uco-core:Annotation",
                    f"finding:{s['subject_id']}:{item['member_seq']}:{item['face_index']}",
                    {
                        "uco-core:object": [_ref(target)],
                        "uco-core:tag": ["facetrace-finding", item["kind"], f"band:{item['band']}"],
                        "uco-core:statement": (
                            f"{item['kind']} of enrolled subject {s['subject_id']} ({item['band']}) in "
                            f"{item['logical_path']}{face}; evidence: "
                            + json.dumps(item["evidence"], sort_keys=True, ensure_ascii=False)
                        ),
                    },
                )
            )
    for u in acq["unreadable"]:
        target = by_path.get(u["path"])
        if target is not None:
            annotations.append(
                graph.node(
                    "Annotation",
                    "uco-core:Annotation",
                    f"unreadable:{u['path']}",
                    {
                        "uco-core:object": [_ref(target)],
                        "uco-core:tag": ["facetrace-member-status", u["status"]],
                        "uco-core:statement": f"{u['status']}: {u['reason']}",
                    },
                )
            )

    record = graph.node(
        "ProvenanceRecord",
        "case-investigation:ProvenanceRecord",
        "members",
        {
            "case-investigation:exhibitNumber": acq["scan_id"],
            "uco-core:description": f"every member of scan {acq['scan_id']}, as listed in report {doc['report_id']}",
            "uco-core:object": [_ref(n) for n in members.values()],
        },
    )
    scan = {
        "uco-core:name": "facetrace scan",
        "uco-core:description": f"scan {acq['scan_id']} ({acq['status']})",
        "uco-action:instrument": _ref(tool),
        "uco-action:performer": _ref(performer),
        "uco-action:object": [_ref(n) for n in inputs],
        "uco-action:result": [_ref(record)] + [_ref(a) for a in annotations],
    }
    if acq["started_at"]:
        scan["uco-action:startTime"] = _time(acq["started_at"])
    if acq["finished_at"]:
        scan["uco-action:endTime"] = _time(acq["finished_at"])
    graph.node("InvestigativeAction", "case-investigation:InvestigativeAction", "scan", scan)

    identities = {doc["generated_by"] or "unknown": performer}
    for w in acq.get("from_web") or []:  # each input downloaded from a link: the download as an action
        r = w["record"]
        urls = [
            graph.node(
                "URL",
                "uco-observable:URL",
                f"url:{u}",
                {
                    "uco-core:hasFacet": [
                        {
                            "@id": f"kb:URLFacet-{uuid.uuid5(graph.namespace, 'URLFacet:' + u)}",
                            "@type": "uco-observable:URLFacet",
                            "uco-observable:fullValue": u,
                        }
                    ]
                },
            )
            for u in dict.fromkeys(x for x in (r["requested_url"], r["final_url"]) if x)
        ]
        hops = "; ".join(f"{h['status']} {h['from']} -> {h['to']}" for h in r["redirects"]) or "none"
        action = {
            "uco-core:name": "web acquisition",
            "uco-action:instrument": _ref(tool),
            "uco-action:performer": _ref(
                identities.get(r["actor"])
                or identities.setdefault(
                    r["actor"],
                    graph.node("Identity", "uco-identity:Identity", r["actor"], {"uco-core:name": r["actor"]}),
                )
            ),
            "uco-action:startTime": _time(r["started_at"]),
            "uco-action:endTime": _time(r["finished_at"]),
            "uco-action:object": [_ref(u) for u in urls],
            "uco-action:result": [_ref(inputs[w["input"]])],
            "uco-core:description": (
                f"acquisition {r['id']}: {r['requested_url']} served HTTP {r['http_status']} from "
                f"{r['server']}; redirects: {hops}; {r['bytes']} bytes, SHA-256 {r['sha256']}, MD5 {r['md5']}; "
                f"{len(r['requests'])} request(s); record SHA-256 {w['record_sha256']} (report.json "
                f"acquisition.from_web has every request and header)"
            ),
        }
        graph.node("Action", "uco-action:Action", f"web:{r['id']}", action)
    for c in doc["custody"]:
        graph.node(
            "Action",
            "uco-action:Action",
            f"audit:{c['seq']}",
            {
                "uco-core:name": c["action"],
                "uco-action:startTime": _time(c["at"]),
                "uco-core:description": (
                    f"audit entry {c['seq']} by {c['actor']}, hash {c['hash']}, "
                    f"details {json.dumps(c['details'], sort_keys=True, ensure_ascii=False)}"
                ),
            },
        )
    if report_json_sha256:
        graph.file(
            "report.json",
            name="report.json",
            path="report.json",
            size=None,
            sha256=report_json_sha256,
            mime="application/json",
        )
    return {"@context": CONTEXT, "@graph": graph.nodes}


class _Graph:
    """Nodes with stable ids: uuid5 of the report id and a key, so one report always exports alike."""

    def __init__(self, report_id: str):
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:facetrace:report:{report_id}")
        self.nodes: list[dict] = []

    def node(self, prefix: str, rdf_type: str, key: str, props: dict) -> dict:
        node = {"@id": f"kb:{prefix}-{uuid.uuid5(self.namespace, f'{prefix}:{key}')}", "@type": rdf_type, **props}
        self.nodes.append(node)
        return node

    def file(
        self,
        key: str,
        *,
        name: str,
        path: str,
        size: int | None,
        sha256: str | None,
        mime: str | None,
        directory: bool = False,
    ) -> dict:
        facet = {
            "@id": f"kb:FileFacet-{uuid.uuid5(self.namespace, 'FileFacet:' + key)}",
            "@type": "uco-observable:FileFacet",
            "uco-observable:fileName": name,
            "uco-observable:filePath": path,
            "uco-observable:isDirectory": directory,
        }
        facets = [facet]
        if size is not None:
            facet["uco-observable:sizeInBytes"] = size
        if sha256 or mime:
            content = {
                "@id": f"kb:ContentDataFacet-{uuid.uuid5(self.namespace, 'ContentDataFacet:' + key)}",
                "@type": "uco-observable:ContentDataFacet",
            }
            if mime:
                content["uco-observable:mimeType"] = mime
            if size is not None:
                content["uco-observable:sizeInBytes"] = size
            if sha256:
                content["uco-observable:hash"] = [
                    {
                        "@id": f"kb:Hash-{uuid.uuid5(self.namespace, 'Hash:' + key)}",
                        "@type": "uco-types:Hash",
                        "uco-types:hashMethod": "SHA256",
                        "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": sha256.upper()},
                    }
                ]
            facets.append(content)
        return self.node("File", "uco-observable:File", key, {"uco-core:hasFacet": facets})


def _ref(node: dict) -> dict:
    return {"@id": node["@id"]}


def _time(value: str) -> dict:
    return {"@type": "xsd:dateTime", "@value": value}
