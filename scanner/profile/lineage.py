"""Lineage across dumps: how each scanned dump relates to every earlier one in the workspace.

The same photos reappear in one resold dump after another. Two dumps are compared on their
distinct images and videos (first copies): an item of the newer dump is *shared* with the older
one when its bytes are identical (exact) or its pHash is within NEAR_COPY_MAX_BITS of one of the
older dump's (near copy: re-encoded, resized; a video stands for its middle sampled frame). People
are compared too: two dumps share a person when the centroids of that person's faces are within
SHARED_PERSON of each other.

The relation of the newer dump B to the older dump A (docs/profile.md "Lineage"):

  same            all of A's items are in B and all of B's in A, byte for byte
  reencoded_copy  the same, but through near copies
  subset          all of B's items come from A, but not all of A's are in B
  superset        all of A's items are in B, and B has more
  partial_subset  B holds a large part of A (at least PART of A's items) and items of its own
  partial_overlap B and A share some items or people, less than that
  unrelated       nothing shared

"Reencoded" qualifies a relation when most shared items are near copies, not identical bytes.
"""

from __future__ import annotations

import numpy as np

ALL = 0.98  # "all" of a dump's items, allowing for the odd item a near copy search misses
PART = 0.2
SHARED_PERSON = 0.45  # centroid distance for "the same person in both dumps"


def compare(a_items: list[tuple[str, str | None]], b_items: list[tuple[str, str | None]]) -> dict:
    """Shared items between an older dump A and a newer dump B, each [(sha256, phash)]."""
    from indexes.search.hashes import BinaryHashIndex
    from scanner.matching.policy import NEAR_COPY_MAX_BITS

    a_shas = {sha for sha, _ in a_items}
    b_shas = {sha for sha, _ in b_items}
    index = BinaryHashIndex()
    a_hashed = [(sha, ph) for sha, ph in a_items if ph]
    index.add(range(len(a_hashed)), [ph for _sha, ph in a_hashed])
    exact_b, near_b, a_reached = 0, 0, set()
    queries = [(sha, ph) for sha, ph in b_items if sha not in a_shas and ph]
    hits = index.range_search([ph for _s, ph in queries], NEAR_COPY_MAX_BITS) if queries else []
    for sha in b_shas & a_shas:
        exact_b += 1
        a_reached.add(sha)
    for (_sha, _ph), hit in zip(queries, hits, strict=False):
        if hit:
            near_b += 1
            a_reached.update(a_hashed[i][0] for i, _bits in hit)
    shared_b = exact_b + near_b
    return {
        "a_items": len(a_shas),
        "b_items": len(b_shas),
        "exact": exact_b,
        "near_copies": near_b,
        "share_of_b": shared_b / len(b_shas) if b_shas else 0.0,
        "share_of_a": len(a_reached) / len(a_shas) if a_shas else 0.0,
    }


def shared_people(a: dict[int, list[float]], b: dict[int, list[float]]) -> int:
    """How many of B's people are also in A (centroids within SHARED_PERSON)."""
    if not a or not b:
        return 0
    ca, cb = np.asarray(list(a.values())), np.asarray(list(b.values()))
    d = np.linalg.norm(cb[:, None, :] - ca[None, :, :], axis=2)
    return int((d.min(axis=1) <= SHARED_PERSON).sum())


def classify(c: dict, people_shared: int) -> str:
    a_all, b_all = c["share_of_a"] >= ALL, c["share_of_b"] >= ALL
    shared = c["exact"] + c["near_copies"]
    reencoded = shared > 0 and c["near_copies"] >= shared / 2
    if a_all and b_all:
        kind = "reencoded_copy" if reencoded else "same"
        return kind
    if b_all:
        kind = "subset"
    elif a_all:
        kind = "superset"
    elif c["share_of_a"] >= PART:
        kind = "partial_subset"
    elif shared or people_shared:
        kind = "partial_overlap"
    else:
        return "unrelated"
    return f"reencoded_{kind}" if reencoded else kind


def describe(kind: str) -> str:
    words = kind.replace("reencoded_", "re-encoded ").replace("_", " ")
    return {"same": "the same dump as", "unrelated": "unrelated to"}.get(kind, f"a {words} of")


def relate_to_earlier(store, scan_id: str) -> list[dict]:
    """Compare a scan with every earlier finished scan; store and return the relations found."""
    scan = store.get_scan(scan_id)
    b_items = store.content_items(scan_id)
    b_people = store.person_centroids(scan_id)
    rows = []
    for earlier in store.list_scans():
        if earlier["id"] == scan_id or earlier["status"] != "finished" or earlier["started_at"] > scan["started_at"]:
            continue
        c = compare(store.content_items(earlier["id"]), b_items)
        a_people = store.person_centroids(earlier["id"])
        people = shared_people(a_people, b_people)
        kind = classify(c, people)
        if kind == "unrelated":
            continue
        rows.append(
            {
                "earlier_scan_id": earlier["id"],
                "kind": kind,
                "evidence": {
                    **{k: round(v, 4) if isinstance(v, float) else v for k, v in c.items()},
                    "people_shared": people,
                    "people_in_new": len(b_people),
                    "people_in_earlier": len(a_people),
                    "description": f"{describe(kind)} scan {earlier['id']}",
                },
            }
        )
    store.set_lineage(scan_id, rows)
    return rows


def lineage_graph(store) -> dict:
    """Every scan (a node with its first-seen time and inputs) and every relation (an edge)."""
    nodes = [
        {
            "scan_id": s["id"],
            "first_seen": s["started_at"],
            "status": s["status"],
            "inputs": [i["path"] for i in s["inputs"]],
            "files": (s["counts"] or {}).get("files"),
            "people": (s["counts"] or {}).get("people"),
        }
        for s in store.list_scans()
    ]
    return {"scans": nodes, "relations": store.lineage()}
