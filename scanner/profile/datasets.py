"""Known public datasets (LFW and the like): fingerprint one once, then mark its items in every scan.

Public benchmark photos turn up in dumps, padded in to make a bundle look bigger or scraped with
everything else. They are not private leaked data, and saying so leaves the part of a dump that
needs explaining. A dataset is fingerprinted by SHA-256 and pHash per image (no faces: this is
about the pictures); a scanned member is marked when its bytes are identical to an item, or its
pHash is within the near-copy distance of one (re-encoded, resized).
"""

from __future__ import annotations


def fingerprint_dataset(path: str, options=None) -> tuple[list[dict], list[str]]:
    """Return ([{relpath, sha256, phash}], problems) for every member of a dataset's folder or archive."""
    from scanner.fingerprints.perceptual import perceptual_hashes
    from scanner.ingest import MemberReader
    from scanner.media.images import ImageDecodeError, decode_image
    from scanner.models import ScanOptions

    options = options or ScanOptions()
    items, problems = [], []
    for read in MemberReader(options).read([path]):
        m = read.member
        if m.sha256 is None or m.kind.value == "archive":
            continue
        phash = None
        if read.data is not None:
            try:
                phash = perceptual_hashes(decode_image(read.data, options.max_image_pixels).image)[0]
            except ImageDecodeError as exc:
                problems.append(f"{m.logical_path}: {exc}")
        items.append({"relpath": m.relpath, "sha256": m.sha256, "phash": phash})
    return items, problems


def add_dataset(store, name: str, path: str) -> dict:
    """Fingerprint `path` as the known dataset `name`, then mark its items in every scan."""
    from scanner.fingerprints.perceptual import NAME as HASHER

    items, problems = fingerprint_dataset(path)
    store.add_dataset(name, path, items, HASHER)
    marked = {s["id"]: mark_known(store, s["id"]) for s in store.list_scans()}
    return {
        "name": name,
        "items": len(items),
        "images": sum(1 for i in items if i["phash"]),
        "problems": problems,
        "marked": marked,
    }


def mark_known(store, scan_id: str) -> int:
    """Mark each member of a scan that comes from a known dataset; return how many do."""
    from indexes.search.hashes import BinaryHashIndex
    from scanner.matching.policy import NEAR_COPY_MAX_BITS

    items = store.dataset_items()
    if not items:
        return 0
    by_sha = {sha: (name, rel) for name, rel, sha, _ph in items}
    index = BinaryHashIndex()
    with_hash = [(name, rel, ph) for name, rel, _sha, ph in items if ph]
    index.add(range(len(with_hash)), [ph for _n, _r, ph in with_hash])
    marks = []
    rows = list(store.member_hashes(scan_id))
    near = index.range_search([ph for _id, _sha, ph in rows if ph], NEAR_COPY_MAX_BITS)
    hits = iter(near)
    for member_id, sha, ph in rows:
        hit = next(hits) if ph else []
        if sha in by_sha:
            name, rel = by_sha[sha]
            marks.append((member_id, {"dataset": name, "item": rel, "match": "exact"}))
        elif hit:
            item, bits = hit[0]
            name, rel, _ph = with_hash[item]
            marks.append(
                (
                    member_id,
                    {
                        "dataset": name,
                        "item": rel,
                        "match": "near_copy",
                        "phash_bits": bits,
                        "max_bits": NEAR_COPY_MAX_BITS,
                    },
                )
            )
        else:
            marks.append((member_id, None))
    # a duplicate carries no pHash of its own: it comes from where its first copy comes from
    by_bytes = {sha: k for (_m, k), (_id, sha, _ph) in zip(marks, rows, strict=False) if k}
    marks = [(m, k or by_bytes.get(sha)) for (m, k), (_id, sha, _ph) in zip(marks, rows, strict=False)]
    store.set_known_sources(marks)
    return sum(1 for _m, k in marks if k)
