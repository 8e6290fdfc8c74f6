"""Registry matching accuracy per population, with the real code paths (enroll, scan, match).

The protocol (issue 18), run on each population separately:
1. Enrolled people: every identity with 5 or more photos enrolls 3 photos (sorted by name) through
   `scanner.registry.enroll`; a refused photo (a second face, no face, too far from the others) is
   replaced by the person's next one, keeping at least 2 for the dump.
2. Strangers: every identity with fewer photos (the single-photo people, and people with 2 to 4
   photos whose photos can form a stranger's group). For LFW, as before, also 40 people held out
   of lfw_deepfunneled (seeded draw) and the 100 lfw_singletons.
3. One dump, scanned once and matched like any dump: the enrolled people's other photos and every
   stranger photo, one folder per identity (matching never sees folder names), as a kit is.
Printed per collection: enrolled people found (`confident`, correct subject), genuine photos given
a band above `possible` for another enrolled person, stranger photos with a `probable` or
`confident` finding, stranger identities with 2+ photos confirmed (`confident`), and every
wrong finding. Then the per-subject false-match rate of the normalised margin on every (face,
subject) pair of different people, with one-sided 95% upper bounds, and what it implies at
10k, 100k and 1M enrolled people.

Populations: `lfw` (lfw_deepfunneled + lfw_singletons), `east_asian` (../shared/facedata/east_asian:
asian_faces_nz, asianfaces_tfp, jaffe, nuaa_clientraw; see its SOURCES.md), `mixed` (both in one
registry and one dump, as a registry serving several populations is).

Usage: python benchmarks/registry_accuracy.py [--population lfw|east_asian|both|mixed] [--policy v1|v2]
(`--policy v1` decides with the previous policy's absolute thresholds only, for comparison;
about 4 minutes for both populations on 2 cores)

An operator's own model (docs/engines.md): `--model FILE.onnx` (with `--model-alignment`,
`--model-mean`, `--model-std`, `--model-channels`, `--model-no-l2` as `facetrace engine set`
takes them) pins it in each workspace and calibrates its distance scale with `facetrace
calibrate`'s code on `--calibrate-on FOLDER` (one subfolder per person; default: a temporary copy
of the population's own people with 2 or more photos, 2 photos each). The calibration's reference
cohort is removed again, so that the crowd is the registry alone, as in the built-in runs, and only
the distance scale differs. `facetrace engine export-dlib` writes the built-in network as such a
file: with `--model-alignment dlib-150 --model-mean 0 --model-std 1 --model-no-l2` it must
reproduce the built-in figures.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from cluster_people import EAST_ASIAN, same_people  # noqa: E402 - the collections, identities.csv's links

FACEDATA = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata"))
HELD_OUT_SEED = 2026
MIN_PHOTOS = 5  # 3 to enroll, 2 or more in the dump
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def identities(population: str) -> dict[tuple[str, str], list[Path]]:
    """{(collection, identity): sorted photos} of a population."""
    out: dict[tuple[str, str], list[Path]] = {}
    if population == "mixed":
        return {**identities("lfw"), **identities("east_asian")}
    if population == "lfw":
        for coll in ("lfw_deepfunneled", "lfw_singletons"):
            for person in sorted(p for p in (FACEDATA / coll).iterdir() if p.is_dir()):
                out[(coll, person.name)] = sorted(person.iterdir())
    else:
        for coll in EAST_ASIAN:
            for person in sorted(p for p in (FACEDATA / "east_asian" / coll).iterdir() if p.is_dir()):
                out[(coll, person.name)] = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return out


def use_policy_v1():
    """Decide as facetrace-policy-2026-11-v1 did: absolute thresholds, no normalisation."""
    from scanner.matching import policy

    policy.FaceHit.stands_out = lambda self, margin: True
    policy.LINK_MARGIN = -10.0


def pin_model(root: str, tmp: Path, population: str, args) -> None:
    """Pin args.model in the workspace and calibrate its distance scale (the cohort is removed again)."""
    from scanner.fingerprints import modelfile
    from scanner.matching import calibration
    from scanner.pipeline import open_store
    from scanner.registry import open_registry

    modelfile.pin(
        root,
        args.model,
        alignment=args.model_alignment,
        channels=args.model_channels,
        mean=tuple(float(v) for v in args.model_mean.split(",")),
        std=tuple(float(v) for v in args.model_std.split(",")),
        l2=not args.model_no_l2,
    )
    folder = Path(args.calibrate_on) if args.calibrate_on else tmp / f"calibrate-{population}"
    if not args.calibrate_on:
        for (coll, name), photos in identities(population).items():
            if len(photos) >= 2:
                (folder / f"{coll}-{name}").mkdir(parents=True, exist_ok=True)
                for p in photos[:2]:
                    shutil.copy(p, folder / f"{coll}-{name}" / p.name)
    store, _ = open_store(root)
    reg = open_registry(store, root)
    manifest, _where, _skipped = calibration.calibrate(reg, folder, actor="benchmark")
    calibration.remove(reg, actor="benchmark")
    print(
        f"\n{population}: model {reg.embedder} pinned; distance scale {manifest['policy']} calibrated on "
        f"{manifest['faces']} faces of {manifest['people']} people ({folder})"
    )


def run(population: str, tmp: Path, args=None) -> dict:
    two_dumps = bool(args is not None and args.two_dumps)
    from scanner.consent import ConsentInput
    from scanner.matching.matcher import match_items, scan_members_for_matching
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan
    from scanner.registry import EnrollmentRefused, enroll, open_registry

    ids = identities(population)
    canon = same_people(FACEDATA)

    def person(key):  # one person under two names (LFW and asianfaces_tfp, two East Asian collections)
        name = key[1] if key[0].startswith("lfw") else "/".join(key)
        return canon.get(name, name)

    held: set = set()
    if population in ("lfw", "mixed"):
        deep = sorted(k for k in ids if k[0] == "lfw_deepfunneled")
        held = set(random.Random(HELD_OUT_SEED).sample(deep, 40))
    store, root = open_store(str(tmp / f"ws-{population}"))
    if args is not None and args.model:
        pin_model(root, tmp, population, args)
    reg = open_registry(store, root)
    subject_of, enrolled_photos, refused, replaced = {}, {}, [], 0
    for key, photos in ids.items():
        if len(photos) < MIN_PHOTOS or key in held:
            continue
        chosen, spare = photos[:3], photos[3:]
        while True:
            try:
                # allow_similar: the protocol measures matching, so every person enrolls; the ones that the
                # enrollment check (a person enrolls once) would have held for review are counted below
                res = enroll(
                    reg,
                    [(p.name, p.read_bytes()) for p in chosen],
                    ConsentInput(),
                    label="/".join(key),
                    allow_similar=True,
                )
                subject_of[res.subject_id] = key
                enrolled_photos[key] = set(chosen)
                break
            except EnrollmentRefused as exc:
                bad = next((p for p in chosen if str(exc).startswith(p.name)), None)
                if bad is None or len(spare) <= 2:
                    refused.append(("/".join(key), str(exc)[:80]))
                    break
                chosen = [p for p in chosen if p != bad] + [spare.pop(0)]
                replaced += 1
    dump = tmp / f"dump-{population}"
    truth = {}
    for k, (key, photos) in enumerate(ids.items()):
        if key in enrolled_photos:
            rest = [p for p in photos if p not in enrolled_photos[key]]
        elif len(photos) >= MIN_PHOTOS and key not in held:
            continue  # refused at enrollment: neither enrolled nor a stranger
        else:
            rest = photos
        stranger = key not in enrolled_photos
        folder = (dump.with_name(dump.name + "-strangers") if stranger and two_dumps else dump) / f"id{k:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(rest):
            name = f"{i:02d}{p.suffix.lower()}"
            shutil.copy(p, folder / name)
            truth[f"id{k:04d}/{name}"] = key
    members, findings = [], []
    # one dump (a kit: strangers and enrolled people together), or the earlier protocol's two
    # (`--two-dumps`: the enrolled people's other photos, then the strangers' photos alone)
    for folder in [dump] + ([dump.with_name(dump.name + "-strangers")] if two_dumps else []):
        summary = scan([str(folder)], store, ScanOptions(), workspace=root)
        part = scan_members_for_matching(store, summary.scan_id)
        findings += match_items(reg, part, summary.scan_id)
        members += part
    key_of_path = {m["logical_path"]: truth["/".join(Path(m["logical_path"]).parts[-2:])] for m in members}
    faces_of_path = {m["logical_path"]: len(m["faces"]) for m in members}
    enrolled = set(enrolled_photos)
    n_photos = collections.Counter(key_of_path.values())
    stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    found: dict[str, set] = collections.defaultdict(set)
    stranger_groups: dict[str, set] = collections.defaultdict(set)
    wrong = []
    for path, key in key_of_path.items():
        stats[key[0]]["genuine photos" if key in enrolled else "stranger photos"] += 1
    flagged_strangers: dict[str, set] = collections.defaultdict(set)
    wrong_genuine: dict[str, set] = collections.defaultdict(set)
    for f in findings:
        key = key_of_path[f["logical_path"]]
        coll = key[0]
        right = person(subject_of[f["subject_id"]]) == person(key)
        if f["kind"] == "same_person" and f["band"] == "confident" and right:
            found[coll].add(key)
        if f["band"] in ("probable", "confident") and not right:
            if key in enrolled:
                wrong_genuine[coll].add(f["logical_path"])
            else:
                flagged_strangers[coll].add(f["logical_path"])
                if f["band"] == "confident" and n_photos[key] >= 2:
                    stranger_groups[coll].add(key)
            wrong.append((f, key))
    out = {}
    for coll in sorted(stats):
        people = {k for k in enrolled if k[0] == coll and n_photos[k] > 0}
        strangers_multi = {k for k in n_photos if k[0] == coll and k not in enrolled and n_photos[k] >= 2}
        out[coll] = {
            "enrolled": len(people),
            "found": len(found[coll]),
            "genuine_photos": stats[coll]["genuine photos"],
            "genuine_wrong": len(wrong_genuine[coll]),
            "stranger_photos": stats[coll]["stranger photos"],
            "stranger_flagged": len(flagged_strangers[coll]),
            "stranger_ids_multi": len(strangers_multi),
            "stranger_groups": len(stranger_groups[coll]),
        }
    print(
        f"\n== {population}: {len(subject_of)} people enrolled ({replaced} photos replaced, {len(refused)} refused); "
        f"one dump of {len(members)} photos ({sum(faces_of_path.values())} faces)"
    )
    for name, why in refused:
        print(f"  refused: {name}: {why}")
    label_of = {sid: "/".join(key) for sid, key in subject_of.items()}
    similar = None
    for e in reg.store.audit_entries():  # the subject enrolled right after such an entry is the one held
        if e["action"] == "enroll_similar_allowed":
            similar = e["details"]["similar_subjects"]
        elif e["action"] == "enroll" and similar is not None:
            print(
                f"  would be held for review (a person enrolls once): {label_of.get(e['subject_id'])} "
                f"is confident for {', '.join(label_of.get(s, s) for s in similar)}"
            )
            similar = None
    print(f"{'collection':<18} {'found':>13} {'genuine->other':>15} {'stranger photos':>16} {'stranger groups':>16}")
    tot = collections.Counter()
    for coll, r in out.items():
        tot.update(r)
        print(
            f"{coll:<18} {_frac(r['found'], r['enrolled']):>13} {_frac(r['genuine_wrong'], r['genuine_photos']):>15} "
            f"{_frac(r['stranger_flagged'], r['stranger_photos']):>16} {_frac(r['stranger_groups'], r['stranger_ids_multi']):>16}"
        )
    print(
        f"{'all':<18} {_frac(tot['found'], tot['enrolled']):>13} {_frac(tot['genuine_wrong'], tot['genuine_photos']):>15} "
        f"{_frac(tot['stranger_flagged'], tot['stranger_photos']):>16} {_frac(tot['stranger_groups'], tot['stranger_ids_multi']):>16}"
    )
    for f, key in wrong:
        ev = f["evidence"]
        norm = ev.get("normalised") or {}
        print(
            f"  wrong: {'/'.join(key)} ({faces_of_path[f['logical_path']]} faces) -> {'/'.join(subject_of[f['subject_id']])} "
            f"{f['kind']} {f['band']} d={ev.get('distance')} margin={norm.get('margin')} group={ev.get('group')}"
        )
    missed = sorted("/".join(k) for k in enrolled if n_photos[k] > 0 and k not in found[k[0]])
    print(f"  not found ({len(missed)}): {', '.join(missed[:30])}{' ...' if len(missed) > 30 else ''}")
    out["_fmr"] = false_match_rates(reg, members, key_of_path, subject_of, person)
    return out


def _frac(a: int, b: int) -> str:
    return f"{a}/{b} = {a / b:.1%}" if b else "-"


def false_match_rates(reg, members, key_of_path, subject_of, person) -> dict:
    """Per-subject false-match rate of the normalised margin, over every (face, subject) pair of
    different people, computed from the stored templates and the dump's faces exactly as the
    matcher does (cohort: the registry's other subjects, K nearest)."""
    from scanner.matching import policy
    from scanner.matching.calibration import MARGINS, upper_bound
    from scanner.matching.matcher import decision_context

    ids, vectors, subjects = reg.store.template_vectors(reg.embedder, reg.embedder_version, dim=reg.index.dim)
    templates = np.asarray(vectors, dtype=np.float64)
    to_scale = decision_context(reg)[0].to_scale  # an operator's model: its calibrated scale
    subjects = np.asarray(subjects)
    subs = sorted(set(subjects.tolist()))
    col = {s: i for i, s in enumerate(subs)}
    t_col = np.asarray([col[s] for s in subjects])
    k = policy.COHORT_K

    def per_subject_min(dist):
        out = np.full((len(dist), len(subs)), np.inf)
        for j in range(len(subs)):
            out[:, j] = dist[:, t_col == j].min(axis=1)
        return out

    tt = per_subject_min(to_scale(np.linalg.norm(templates[:, None] - templates[None], axis=2)))
    tt[np.arange(len(templates)), t_col] = np.inf
    t_crowd = np.sort(tt, axis=1)[:, :k].mean(axis=1)
    faces, owner = [], []
    subject_person = np.asarray([person(subject_of[s]) for s in subs])
    for m in members:
        for enc in m["faces"]:
            faces.append(enc)
            owner.append(person(key_of_path[m["logical_path"]]))
    faces = np.asarray(faces, dtype=np.float64)
    owner = np.asarray(owner)
    margins, dists = [], []
    for start in range(0, len(faces), 500):
        d = to_scale(np.linalg.norm(faces[start : start + 500, None] - templates[None], axis=2))
        ds = per_subject_min(d)
        nearest_t = np.stack(
            [np.flatnonzero(t_col == j)[np.argmin(d[:, t_col == j], axis=1)] for j in range(len(subs))], 1
        )
        for r in range(len(ds)):
            row = ds[r].copy()
            own = subject_person == owner[start + r]
            row[own] = np.inf  # the face's own person is not part of its crowd
            for j in range(len(subs)):
                if own[j]:
                    continue
                others = np.delete(row, j)
                crowd = np.sort(others)[:k].mean()
                margins.append(0.5 * (crowd + t_crowd[nearest_t[r, j]]) - ds[r, j])
                dists.append(ds[r, j])
    margins, dists = np.asarray(margins), np.asarray(dists)
    n = len(margins)
    rows = []
    for m in MARGINS:
        events = int(((margins >= m) & (dists <= policy.GROUP_MEMBER_MAX)).sum())
        rows.append((m, events, upper_bound(events, n)))
    print(
        f"  per-subject false-match rate of the normalised margin ({n:,} pairs of different people, distance <= "
        f"{policy.GROUP_MEMBER_MAX}): margin events upper95 | expected false matches per stranger face at 10k / 100k / 1M"
    )
    for m, events, up in rows:
        print(
            f"    {m:.2f} {events:>6} {up:9.2e} | {min(1, 1e4 * up):.3g} / {min(1, 1e5 * up):.3g} / {min(1, 1e6 * up):.3g}"
        )
    raw = []
    for t in (policy.CROWDED_ABS_MAX, 0.4, policy.FACE_PROBABLE_MAX, 0.5, policy.FACE_POSSIBLE_MAX):
        events = int((dists <= t).sum())
        raw.append((t, events, upper_bound(events, n)))
    print("  per-subject false-match rate of the raw distance: threshold events rate upper95")
    for t, events, up in raw:
        print(f"    {t:.2f} {events:>6} {events / n:9.2e} {up:9.2e}")
    return {"pairs": n, "margin": rows, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--population",
        choices=("lfw", "east_asian", "both", "mixed"),
        default="both",
        help="both: each population in its own registry and dump; mixed: one registry and one dump holding both",
    )
    ap.add_argument("--policy", choices=("v1", "v2"), default="v2")
    ap.add_argument("--model", help="an operator's ONNX face model to pin (facetrace engine set)")
    ap.add_argument("--model-alignment", choices=("arcface", "dlib-150"), default="arcface")
    ap.add_argument("--model-channels", choices=("rgb", "bgr"), default="rgb")
    ap.add_argument("--model-mean", default="127.5")
    ap.add_argument("--model-std", default="128")
    ap.add_argument("--model-no-l2", action="store_true")
    ap.add_argument(
        "--calibrate-on",
        metavar="FOLDER",
        help="labelled folder the model's distance scale is calibrated on (default: the population's own people)",
    )
    ap.add_argument(
        "--two-dumps",
        action="store_true",
        help="the earlier protocol: enrolled people's other photos and strangers' photos scanned as two "
        "dumps (the one-dump default is what a kit is)",
    )
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if not FACEDATA.is_dir():
        sys.exit(f"real face photos not found at {FACEDATA} (set FACETRACE_FACEDATA)")
    if args.policy == "v1":
        use_policy_v1()
    tmp = Path(tempfile.mkdtemp(prefix="facetrace-acc-"))
    try:
        results = {}
        for population in ("lfw", "east_asian") if args.population == "both" else (args.population,):
            results[population] = run(population, tmp, args)
        if len(results) == 2:
            print("\nworst-population table (the higher upper bound at each margin):")
            for rows in zip(*(r["_fmr"]["margin"] for r in results.values()), strict=False):
                print(f"    {rows[0][0]:.2f} {max(upper for _m, _events, upper in rows):9.2e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
