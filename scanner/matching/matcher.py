"""Search the registry for a scan's members and faces, and record the policy's findings."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np

from scanner.matching import policy

NEIGHBOURS = 32  # templates fetched per face: enough to see the nearest subjects and the crowd around


def _per_subject(registry, dist, tids) -> list[dict[str, list[tuple[float, int]]]]:
    """For each query row, {subject: [(distance, template id)]} of the templates fetched."""
    subject_of = registry.index.subjects_of(tids[tids >= 0].tolist())
    rows = []
    for drow, trow in zip(dist, tids, strict=False):
        per: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for d, t in zip(drow, trow, strict=False):
            if t < 0:
                continue
            subject = subject_of.get(int(t))
            if subject is not None:
                per[subject].append((float(d), int(t)))
        rows.append(per)
    return rows


def _crowd(per: dict, exclude: str, reference_row) -> tuple[float | None, int]:
    """Mean distance of the COHORT_K nearest other people (registry subjects but `exclude`, and the
    reference cohort's people), and how many other people were seen; None when fewer than K."""
    others = sorted(min(ds)[0] for s, ds in per.items() if s != exclude)
    if reference_row is not None:
        others = sorted(others + [float(x) for x in reference_row if np.isfinite(x)])
    k = policy.COHORT_K
    return (float(np.mean(others[:k])) if len(others) >= k else None), len(others)


def _face_hits(
    registry, faces: list[dict], reference=None, normalise: bool = True, to_scale=policy.identity
) -> list[policy.FaceHit]:
    """The nearest subject of each face, with the crowd around the face and around the matched
    template (None when `normalise` is false: too few other people to know the crowd). Distances
    are on the policy's scale (`to_scale`: the calibrated map of an operator's model)."""
    if not faces or len(registry.index) == 0:
        return []
    encodings = [f["encoding"] for f in faces]
    dist, tids = registry.index.search_faces(encodings, NEIGHBOURS)
    dist = to_scale(dist)
    ref = (
        to_scale(reference.nearest_people(encodings, policy.COHORT_K)) if reference is not None and normalise else None
    )
    hits, template_rows = [], {}
    for n, (face, per) in enumerate(zip(faces, _per_subject(registry, dist, tids), strict=False)):
        if not per:
            continue
        ranked = sorted(per.items(), key=lambda kv: min(kv[1]))
        subject, ds = ranked[0]
        nearest, template_id = min(ds)
        second = min(ranked[1][1])[0] if len(ranked) > 1 else None
        crowd, seen = _crowd(per, subject, None if ref is None else ref[n])
        hits.append(
            policy.FaceHit(
                key=face["key"],
                logical_path=face["logical_path"],
                photo=face["photo"],
                encoding=tuple(face["encoding"]),
                subject_id=subject,
                distance=nearest,
                template_id=template_id,
                templates_within=sum(d <= policy.FACE_POSSIBLE_MAX for d, _t in ds),
                second_subject=ranked[1][0] if len(ranked) > 1 else None,
                second_distance=second,
                cohort_face=crowd if normalise else None,
                people_nearby=seen,
            )
        )
        if normalise and nearest <= policy.FACE_POSSIBLE_MAX:
            template_rows[template_id] = subject
    if not template_rows:
        return hits
    # the other side of the comparison: how crowded the matched template's own neighbourhood is
    crowd_of = _template_crowds(registry, template_rows, reference, to_scale)
    return [replace(h, cohort_template=crowd_of[h.template_id]) if h.template_id in crowd_of else h for h in hits]


def _template_crowds(
    registry, template_subject: dict[int, str], reference, to_scale=policy.identity
) -> dict[int, float | None]:
    """{template id: mean distance of its COHORT_K nearest other people} for the templates given."""
    from indexes.store.subjects import template_encodings

    encs = template_encodings(registry.store.engine, sorted(template_subject))
    ids = [t for t in sorted(template_subject) if t in encs]
    if not ids:
        return {}
    dist, tids = registry.index.search_faces([encs[t] for t in ids], NEIGHBOURS)
    dist = to_scale(dist)
    ref = to_scale(reference.nearest_people([encs[t] for t in ids], policy.COHORT_K)) if reference is not None else None
    return {
        t: _crowd(per, template_subject[t], None if ref is None else ref[n])[0]
        for n, (t, per) in enumerate(zip(ids, _per_subject(registry, dist, tids), strict=False))
    }


def decision_context(registry):
    """The registry's size and rates to decide with, and the reference cohort (or None).

    With an operator's model (facetrace engine set), the distances are put on dlib's scale by the
    policy `facetrace calibrate` measured for that model; without one, faces decide nothing."""
    from scanner.matching import calibration, cohort

    reference = cohort.load(registry.root, registry.embedder, registry.embedder_version)
    table, source = policy.table_from_calibration(reference.manifest.get("measured") if reference else None)
    extra = {}
    if registry.options.model is not None:
        calibrated = calibration.model_policy(registry.root, registry.options.model)
        extra = (
            {
                "faces_decided": False,
                "policy_version": f"{policy.POLICY_VERSION} (no policy calibrated for {registry.embedder})",
            }
            if calibrated is None
            else {"scale": calibrated, "policy_version": calibrated.version}
        )
    ctx = policy.Context(
        registry.store.count_active_subjects(), table, source, reference.people if reference else 0, **extra
    )
    return ctx, reference


def match_items(registry, members: list[dict], scan_id: str | None, decided=None) -> list[dict]:
    """Return finding rows for members ({seq, logical_path, sha256, phash, faces: [encoding]}).

    `decided`: decision_context(registry) when the caller already has it (match_scan records it)."""
    registry.index.refresh()  # another process may have enrolled or erased someone since it was read
    findings: dict[tuple, dict] = {}  # (member seq, subject) -> finding; strongest kind wins
    model = f"{registry.embedder} {registry.embedder_version}"
    ctx, reference = decided or decision_context(registry)

    exact = registry.store.templates_by_photo_sha([m["sha256"] for m in members if m.get("sha256")])
    for m in members:
        for template_id, subject in exact.get(m.get("sha256"), []):
            findings[(m["seq"], subject)] = _row(
                scan_id,
                subject,
                "exact_copy",
                "confident",
                m,
                None,
                {
                    "sha256": m["sha256"],
                    "template_id": template_id,
                    "policy": ctx.policy_version,
                    "registry_size": ctx.registry_size,
                    "decided_under": ctx.record(),
                },
            )

    with_hash = [m for m in members if m.get("phash")]
    hash_hits = registry.index.search_hashes([m["phash"] for m in with_hash], policy.NEAR_COPY_MAX_BITS)
    details = registry.index.hash_details([h for hits in hash_hits for h, _bits in hits])
    for m, hits in zip(with_hash, hash_hits, strict=False):
        for hash_id, bits in hits:
            if hash_id not in details:  # erased since the index was read
                continue
            template_id, subject, variant = details[hash_id]
            if (m["seq"], subject) in findings:
                continue
            findings[(m["seq"], subject)] = _row(
                scan_id,
                subject,
                "near_copy",
                "confident",
                m,
                None,
                {
                    "method": "phash",
                    "phash": m["phash"],
                    "hamming_bits": bits,
                    "max_bits": policy.NEAR_COPY_MAX_BITS,
                    "enrolled_variant": variant,
                    "template_id": template_id,
                    "hasher": registry.hasher,
                    "policy": ctx.policy_version,
                    "registry_size": ctx.registry_size,
                    "decided_under": ctx.record(),
                },
            )

    faces = [
        {
            "key": (m["seq"], i),
            "logical_path": m["logical_path"],
            "photo": m.get("sha256") or m["logical_path"],
            "encoding": enc,
        }
        for m in members
        for i, enc in enumerate(m.get("faces", []))
    ]
    # an operator's model without a calibrated policy: its distances mean nothing, only copies count
    all_hits = _face_hits(registry, faces, reference, ctx.normalises, ctx.to_scale) if ctx.faces_decided else []
    by_seq = {m["seq"]: m for m in members}
    for h in all_hits:  # the same face pixels as an enrolled photo: a copy the hashes missed (crops)
        seq, face_index = h.key
        if h.distance <= policy.NEAR_COPY_FACE_MAX and (seq, h.subject_id) not in findings:
            findings[(seq, h.subject_id)] = _row(
                scan_id,
                h.subject_id,
                "near_copy",
                "confident",
                by_seq[seq],
                face_index,
                {
                    "method": "face",
                    "face_distance": round(h.distance, 6),
                    "max_distance": policy.NEAR_COPY_FACE_MAX,
                    "template_id": h.template_id,
                    "model": model,
                    "policy": ctx.policy_version,
                    "registry_size": ctx.registry_size,
                    "decided_under": ctx.record(),
                    **(
                        {"video": _video_evidence(by_seq[seq], face_index, h.subject_id, all_hits)}
                        if "video" in by_seq[seq]
                        else {}
                    ),
                },
            )
    # A copy of an enrolled photo is already a finding, and its face (distance ~0 to a template)
    # would flatter a group's statistics: only other photos corroborate.
    copied = {seq for seq, _subject in findings}
    hits = [h for h in all_hits if h.key[0] not in copied]
    centroids = _centroids(registry, {h.subject_id for h in hits if h.distance <= policy.FACE_POSSIBLE_MAX})
    groups = policy.group_decisions(hits, centroids.__getitem__, ctx)
    for h in hits:
        band = "confident" if h.key in groups else policy.face_band(h, ctx)
        if band is None:
            continue
        seq, face_index = h.key
        slot = (seq, h.subject_id)
        if slot in findings and findings[slot]["kind"] != "same_person":
            continue  # an exact or near copy already says more
        if slot in findings and policy.BANDS.index(findings[slot]["band"]) <= policy.BANDS.index(band):
            continue
        evidence = {
            "distance": round(h.distance, 6),
            "templates_within_possible": h.templates_within,
            "second_subject": h.second_subject,
            "second_distance": None if h.second_distance is None else round(h.second_distance, 6),
            "margin": None if h.second_distance is None else round(h.margin, 6),
            "model": model,
            "thresholds": policy.thresholds(ctx),
            "normalised": h.normalised(ctx),
            "decided_under": ctx.record(),
        }
        cap = policy.cap_reason(h, ctx, band)
        if cap:
            evidence["capped"] = cap
        if h.key in groups:
            evidence["group"] = groups[h.key]
        if "video" in by_seq[seq]:
            evidence["video"] = _video_evidence(by_seq[seq], face_index, h.subject_id, hits)
        findings[slot] = _row(scan_id, h.subject_id, "same_person", band, by_seq[seq], face_index, evidence)
    return sorted(
        findings.values(), key=lambda f: (f["member_seq"] if f["member_seq"] is not None else -1, f["subject_id"])
    )


def _centroids(registry, subjects: set[str]) -> dict[str, np.ndarray]:
    from indexes.store.subjects import subject_encodings

    encs = subject_encodings(registry.store.engine, sorted(subjects))
    return {s: np.mean(np.asarray(v), axis=0) for s, v in encs.items()}


def _row(scan_id, subject, kind, band, member, face_index, evidence) -> dict:
    return {
        "scan_id": scan_id,
        "subject_id": subject,
        "kind": kind,
        "band": band,
        "logical_path": member["logical_path"],
        "member_seq": member["seq"],
        "face_index": face_index,
        "evidence": evidence,
    }


def scan_members_for_matching(case_store, scan_id: str) -> list[dict]:
    """Read a stored scan's members as matching input (duplicates carry their first copy's faces)."""
    first: dict[str, dict] = {}
    out = []
    for m in case_store.iter_members(scan_id):
        if m["status"] not in ("ok", "duplicate") or m["kind"] not in ("image", "video"):
            continue
        if m["duplicate_of"] is None:
            first[m["sha256"]] = m
        src = first.get(m["sha256"], m)
        item = {
            "seq": m["seq"],
            "logical_path": m["logical_path"],
            "sha256": m["sha256"],
            "phash": src["image"]["phash"] if src.get("image") else None,
            "faces": [f["encoding"] for f in src["faces"]],
        }
        if src.get("video"):
            item["video"] = {
                "frames": [(f["frame_ms"], f["track"]) for f in src["faces"]],
                "tracks": {t["track"]: t["ranges"] for t in src["video"]["tracks"]},
                "animation": src["video"].get("animation"),
            }
        out.append(item)
    return out


def _video_evidence(member: dict, face_index: int, subject: str, hits) -> dict:
    """Where in a video the matched person appears: the frame, their track's time ranges, corroboration."""
    from scanner.media.video import fmt_ms

    video = member["video"]
    frame_ms, track = video["frames"][face_index]
    ranges = video["tracks"].get(track, [])
    in_track = [
        h
        for h in hits
        if h.key[0] == member["seq"]
        and h.subject_id == subject
        and video["frames"][h.key[1]][1] == track
        and h.distance <= policy.FACE_POSSIBLE_MAX
    ]
    return {
        "frame_ms": frame_ms,
        "track": track,
        "time_ranges_ms": ranges,
        "time_ranges": [fmt_ms(a) if fmt_ms(a) == fmt_ms(b) else f"{fmt_ms(a)}-{fmt_ms(b)}" for a, b in ranges],
        "track_frames": sum(1 for _ms, t in video["frames"] if t == track),
        "track_frames_within_possible": len(in_track),
        "animation": video["animation"],
    }


def match_scan(registry, case_store, scan_id: str, actor: str) -> list[dict]:
    """Match every member of a stored scan against the registry; store and return the findings."""
    members = scan_members_for_matching(case_store, scan_id)
    ctx, reference = decision_context(registry)  # recorded below as what the findings were decided under
    findings = match_items(registry, members, scan_id, (ctx, reference))
    registry.store.add_findings(findings)
    bands = defaultdict(int)
    for f in findings:
        bands[f"{f['kind']}:{f['band']}"] += 1
    registry.store.audit(
        "scan_against_registry",
        actor,
        None,
        {
            "scan_id": scan_id,
            "members": len(members),
            "registry_subjects": ctx.registry_size,
            "findings": dict(bands),
            "subjects_found": sorted({f["subject_id"] for f in findings}),
            "policy": ctx.policy_version,
            "decided_under": ctx.record(),
            "reference_cohort": None
            if reference is None
            else {
                "people": reference.people,
                "source_sha256": reference.manifest.get("source_sha256"),
                "created_at": reference.manifest.get("created_at"),
            },
        },
    )
    return findings


def match_photo(registry, name: str, data: bytes, actor: str) -> list[dict]:
    """Check one photo against the registry (one photo never earns more than 'probable')."""
    import hashlib

    from scanner import workers

    analysis = workers.analyse_here(data, registry.options)
    if analysis.error:
        from scanner.errors import UsageError

        raise UsageError(f"{name}: {analysis.error}")
    member = {
        "seq": 0,
        "logical_path": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "phash": analysis.image.phash,
        "faces": [f.encoding for f in analysis.faces],
    }
    findings = match_items(registry, [member], None)
    registry.store.audit(
        "search",
        actor,
        None,
        {
            "photo_sha256": member["sha256"],
            "faces": len(member["faces"]),
            "subjects_found": sorted({f["subject_id"] for f in findings}),
        },
    )
    return findings


def search_earlier_scans(registry, case_store, subject_id: str, actor: str) -> dict:
    """Search every earlier scan of the workspace for a newly enrolled subject; store the findings.

    No dump is read again: the stored faces, hashes and perceptual hashes are searched. Only the
    members that could concern the subject (a face within the "possible" distance of one of the
    subject's templates, the SHA-256 of an enrolled photo, or a pHash near one of its variants)
    are matched, against the whole registry, so bands and margins are those a new scan would give.
    """
    from indexes.search.hashes import hamming

    _ids, vectors, _subjects = registry.store.template_vectors(
        registry.embedder, registry.embedder_version, subject_id, dim=registry.index.dim
    )
    if not len(vectors):
        return {"scans": 0, "findings": []}
    templates = np.asarray(vectors)
    _h, phashes, _t, _s, _v = registry.store.hash_rows(subject_id)
    shas = set(registry.store.templates_by_photo_sha_of(subject_id))
    found, searched = [], 0
    decided = decision_context(registry)
    ctx = decided[0]
    for scan in case_store.list_scans():
        if scan["status"] != "finished":
            continue
        made_by = scan.get("engine") or {}
        if (made_by.get("embedder"), made_by.get("embedder_version")) != (registry.embedder, registry.embedder_version):
            continue  # encodings of another engine (before the workspace pinned its model) are not comparable
        searched += 1
        candidates = []
        for m in scan_members_for_matching(case_store, scan["id"]):
            near_face = (
                ctx.faces_decided
                and bool(m["faces"])
                and float(
                    ctx.to_scale(
                        np.min(np.linalg.norm(np.asarray(m["faces"])[:, None, :] - templates[None, :, :], axis=2))
                    )
                )
                <= policy.FACE_POSSIBLE_MAX
            )
            near_hash = m.get("phash") is not None and any(
                hamming(m["phash"], h) <= policy.NEAR_COPY_MAX_BITS for h in phashes
            )
            if near_face or near_hash or m.get("sha256") in shas:
                candidates.append(m)
        if not candidates:
            continue
        rows = [f for f in match_items(registry, candidates, scan["id"], decided) if f["subject_id"] == subject_id]
        registry.store.add_findings(rows)
        found += rows
    if searched:
        registry.store.audit(
            "retroactive_search",
            actor,
            subject_id,
            {
                "scans_searched": searched,
                "findings": len(found),
                "scans_with_findings": sorted({f["scan_id"] for f in found}),
            },
        )
    return {"scans": searched, "findings": found}
