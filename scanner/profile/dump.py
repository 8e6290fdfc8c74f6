"""A dump's profile: who is in it, how it was packaged, how it was captured, and whether it looks
like a face-data bundle made for sale. Built from a stored scan; nothing is read again.

docs/profile.md explains every figure and how the bundle assessment was validated.
"""

from __future__ import annotations

import posixpath
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime

# The bundle assessment: each signal adds its weight; LIKELY_BUNDLE or more says "likely".
WEIGHTS = {
    "many_people": 0.2,
    "uniform_kits": 0.2,
    "one_person_per_unit": 0.2,
    "sidecars": 0.15,
    "uniform_capture": 0.15,
    "videos_per_person": 0.1,
}
LIKELY_BUNDLE = 0.6
ONE_PERSON_SHARE = 0.8
CAPTURE_MAX_DAYS = 7  # photos taken within a week by one camera suggest one capture session or rig
MIN_PEOPLE = 5  # fewer people than this is a photo collection, not a bundle
ID_CARD_RATIO = (1.50, 1.66)  # ID-1 cards are 85.6 x 54 mm (1.585)


def _engine_caveat(scan: dict) -> dict:
    """The people count's cut and gates were measured on dlib's encodings: say so for an operator's model."""
    from scanner.models import MODEL_PREFIX

    embedder = (scan.get("engine") or {}).get("embedder") or ""
    if not embedder.startswith(MODEL_PREFIX):
        return {}
    return {
        "caveat": f"counted from {embedder}'s encodings with a cut and gates measured on dlib's: not calibrated "
        "for this model (docs/engines.md)"
    }


def build_profile(store, scan_id: str | None = None) -> dict:
    """Return the profile of a stored scan (the latest when `scan_id` is None)."""
    from scanner.errors import UsageError

    scan = store.get_scan(scan_id)
    if scan is None:
        raise UsageError(f"no scan {scan_id!r} in this workspace" if scan_id else "this workspace has no scan yet")
    from scanner.profile.people import METHOD, assign_people, ensure_people, is_primary

    # the count's range (people counted with the density gates a little stricter and looser) is stored
    # with the scan; a scan made before it was (or never clustered) has its faces clustered for it
    clustered = ensure_people(store, scan["id"])
    people_range = (
        (clustered or {}).get("people_range")
        or (scan["counts"] or {}).get("people_range")
        or assign_people(list(store.iter_faces(scan["id"])))[1]["people_range"]
    )
    people: dict[int, dict] = defaultdict(
        lambda: {"photos": set(), "videos": set(), "units": set(), "prefixes": set(), "faces": 0}
    )
    unit_people: dict[str, Counter] = defaultdict(Counter)  # unit -> person -> primary faces
    prefix_people: dict[str, Counter] = defaultdict(Counter)
    patterns: Counter = Counter()
    sidecars: dict[str, list[str]] = defaultdict(list)
    cameras, software, days, resolutions = Counter(), Counter(), Counter(), Counter()
    images = with_exif = with_gps = background = 0
    firsts: dict[str, dict] = {}
    members = 0
    known: Counter = Counter()
    for m in store.iter_members(scan["id"]):
        members += 1
        if m.get("known_source"):
            known[(m["known_source"]["dataset"], m["known_source"]["match"])] += 1
        src = firsts.get(m["sha256"], m) if m["duplicate_of"] else m
        if m["duplicate_of"] is None and m["sha256"]:
            firsts[m["sha256"]] = {"faces": m["faces"], "image": m["image"], "video": m["video"]}
        if m["hint"]:
            sidecars[m["hint"]].append(m["logical_path"])
        if m["status"] not in ("ok", "duplicate") or not (src.get("image") or src.get("video")):
            continue
        unit, name = posixpath.split(m["relpath"])
        prefix = posixpath.join(unit, _stem_prefix(name))
        patterns[re.sub(r"\d+", "#", name)] += 1
        is_video = src.get("video") is not None
        if not is_video:
            images += 1
            img = src["image"]
            resolutions[f"{img['width']}x{img['height']}"] += 1
            cap = img.get("capture")
            if cap:
                with_exif += 1
                with_gps += bool(cap.get("gps"))
                if cap.get("make") or cap.get("model"):
                    cameras[" ".join(x for x in (cap.get("make"), cap.get("model")) if x)] += 1
                if cap.get("software"):
                    software[cap["software"]] += 1
                day = _day(cap.get("taken"))
                if day:
                    days[day] += 1
            if _id_card_like(img, src["faces"]):
                sidecars["id_card_like"].append(m["logical_path"])
        frames: dict = defaultdict(list)
        for f in src["faces"]:
            frames[f.get("frame_ms")].append(f)
        size = (src["image"]["width"], src["image"]["height"]) if src.get("image") else (0, 0)
        for f in src["faces"]:
            if f.get("person") is None:
                continue
            if f.get("background"):
                background += 1
                continue
            p = people[f["person"]]
            p["faces"] += 1
            (p["videos"] if is_video else p["photos"]).add(m["seq"])
            if is_primary(f, frames[f.get("frame_ms")], *size):  # a passer-by does not make a kit
                p["units"].add(unit)
                p["prefixes"].add(prefix)
                unit_people[unit][f["person"]] += 1
                prefix_people[prefix][f["person"]] += 1

    n_people = len(people)
    photos = [len(p["photos"]) for p in people.values()]
    videos = [len(p["videos"]) for p in people.values()]
    packaging = _packaging(people, unit_people, prefix_people, photos, videos, patterns)
    capture = _capture(images, with_exif, with_gps, cameras, software, days, resolutions)
    profile = {
        "scan_id": scan["id"],
        "members": members,
        "people": {
            "count": n_people,
            "count_range": list(people_range),
            "background_faces": background,
            "method": f"faces clustered by {METHOD} (docs/profile.md)",
            **_engine_caveat(scan),
            "photos_per_person": _spread(photos),
            "videos_per_person": _spread(videos),
        },
        "packaging": packaging,
        "sidecars": {k: {"count": len(v), "examples": v[:5]} for k, v in sorted(sidecars.items())},
        "capture": capture,
        "known_datasets": [{"dataset": d, "match": k, "members": n} for (d, k), n in sorted(known.items())],
    }
    profile["bundle"] = assess_bundle(profile)
    return profile


def _stem_prefix(name: str) -> str:
    """A file name's kit prefix: its stem without the trailing counter ("zhang_san_03.jpg" -> "zhang_san")."""
    stem = name.rsplit(".", 1)[0]
    return re.sub(r"[\s_\-.()]*\d+[\s_\-.()]*$", "", stem) or stem


def _day(taken: str | None) -> str | None:
    if not taken:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d"):
        try:
            return datetime.strptime(taken[:19], fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _id_card_like(img: dict, faces: list[dict]) -> bool:
    """A card-shaped picture with one small face on one side, as on an identity card."""
    w, h = img["width"], img["height"]
    if not w or not h or len(faces) != 1:
        return False
    ratio = max(w, h) / min(w, h)
    f = faces[0]
    centre = (f["left"] + f["right"]) / 2 / w
    small = (f["bottom"] - f["top"]) < 0.6 * h
    return ID_CARD_RATIO[0] <= ratio <= ID_CARD_RATIO[1] and w > h and small and (centre < 0.4 or centre > 0.6)


def _spread(values: list[int]) -> dict:
    if not values:
        return {"median": 0, "min": 0, "max": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _packaging(people, unit_people, prefix_people, photos, videos, patterns) -> dict:
    def purity(groups):
        # a unit holds one person when one person has at least ONE_PERSON_SHARE of its subjects' faces:
        # a face the clustering put apart (about 4% on LFW) does not make a kit of two people
        one = sum(1 for c in groups.values() if c.most_common(1)[0][1] >= ONE_PERSON_SHARE * sum(c.values()))
        return one / len(groups) if groups else 0.0

    by_folder = {
        "units": len(unit_people),
        "one_person_share": purity(unit_people),
        "people_in_one_unit_share": (
            sum(1 for p in people.values() if len(p["units"]) == 1) / len(people) if people else 0.0
        ),
    }
    by_prefix = {
        "units": len(prefix_people),
        "one_person_share": purity(prefix_people),
        "people_in_one_unit_share": (
            sum(1 for p in people.values() if len(p["prefixes"]) == 1) / len(people) if people else 0.0
        ),
    }
    folder_score = by_folder["one_person_share"] * by_folder["people_in_one_unit_share"]
    prefix_score = by_prefix["one_person_share"] * by_prefix["people_in_one_unit_share"]
    unit = (
        "folder" if folder_score >= prefix_score or len(unit_people) > 1 and folder_score > 0.9 else "file name prefix"
    )
    chosen = by_folder if unit == "folder" else by_prefix
    n = len(people)
    med_p, med_v = (statistics.median(photos) if photos else 0), (statistics.median(videos) if videos else 0)
    signature = (
        f"{n:,} people; median {med_p:g} photos and {med_v:g} videos per person; "
        f"{chosen['one_person_share']:.0%} of {unit}s hold exactly one person"
    )
    return {
        "unit": unit,
        "by_folder": by_folder,
        "by_prefix": by_prefix,
        "signature": signature,
        "naming_patterns": [{"pattern": p, "count": c} for p, c in patterns.most_common(5)],
    }


def _capture(images, with_exif, with_gps, cameras, software, days, resolutions) -> dict:
    out = {
        "images": images,
        "with_exif": with_exif,
        "with_gps": with_gps,
        "cameras": [{"camera": c, "photos": n} for c, n in cameras.most_common(5)],
        "software": [{"software": c, "photos": n} for c, n in software.most_common(5)],
        "resolutions": [{"resolution": r, "photos": n} for r, n in resolutions.most_common(5)],
        "days": len(days),
        "first_day": min(days) if days else None,
        "last_day": max(days) if days else None,
    }
    evidence = []
    if cameras and with_exif and cameras.most_common(1)[0][1] >= 0.8 * with_exif:
        cam, n = cameras.most_common(1)[0]
        evidence.append(f"{n} of {with_exif} photos with EXIF come from one camera ({cam})")
    span = (datetime.fromisoformat(max(days)) - datetime.fromisoformat(min(days))).days + 1 if days else None
    out["span_days"] = span
    if span is not None and span <= CAPTURE_MAX_DAYS and sum(days.values()) >= 0.8 * with_exif:
        evidence.append(f"taken within {span} day(s) ({min(days)} to {max(days)})")
    if resolutions and images >= 10 and resolutions.most_common(1)[0][1] >= 0.9 * images:
        res, n = resolutions.most_common(1)[0]
        evidence.append(f"{n} of {images} photos have the same resolution ({res})")
    out["uniform"] = len(evidence) >= 2
    out["evidence"] = evidence
    return out


def assess_bundle(profile: dict) -> dict:
    """Score how much a dump looks like a face-data bundle made for sale, with the reasons."""
    people = profile["people"]
    pack = profile["packaging"]
    n = people["count"]
    chosen = pack["by_folder"] if pack["unit"] == "folder" else pack["by_prefix"]
    reasons, score = [], 0.0

    def add(key, text):
        nonlocal score
        score += WEIGHTS[key]
        reasons.append({"signal": key, "weight": WEIGHTS[key], "why": text})

    if n >= MIN_PEOPLE:
        add("many_people", f"{n} distinct people")
    pp = people["photos_per_person"]
    if n >= MIN_PEOPLE and pp["median"] >= 3 and pp["max"] <= 2 * pp["median"] and pp["min"] >= 0.5 * pp["median"]:
        add("uniform_kits", f"every person has {pp['min']}-{pp['max']} photos (median {pp['median']:g})")
    if n >= MIN_PEOPLE and chosen["one_person_share"] >= 0.9 and chosen["people_in_one_unit_share"] >= 0.9:
        add(
            "one_person_per_unit",
            f"{chosen['one_person_share']:.0%} of {pack['unit']}s hold exactly one person, "
            f"and {chosen['people_in_one_unit_share']:.0%} of people are in one {pack['unit']}",
        )
    side = {k: v["count"] for k, v in profile["sidecars"].items()}
    if side:
        add("sidecars", "sidecar files: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in side.items()))
    if profile["capture"]["uniform"]:
        add("uniform_capture", "; ".join(profile["capture"]["evidence"]))
    if n >= MIN_PEOPLE and people["videos_per_person"]["median"] >= 1:
        add("videos_per_person", f"median {people['videos_per_person']['median']:g} videos per person")
    score = round(score, 3)
    out = {
        "score": score,
        "likely_bundle": score >= LIKELY_BUNDLE,
        "threshold": LIKELY_BUNDLE,
        "reasons": reasons,
        "not_a_verdict": "signals of how the dump was collected and packaged; not proof of a sale",
    }
    known = sum(k["members"] for k in profile.get("known_datasets", []))
    if known:
        out["caveat"] = (
            f"{known} of {profile['members']} members come from known public datasets "
            f"({', '.join(sorted({k['dataset'] for k in profile['known_datasets']}))})"
        )
    return out
