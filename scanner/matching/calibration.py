"""Build a reference cohort from a labelled folder of photos and measure false-match rates on it.

The operator supplies photos of people of the population the registry serves, one subfolder per
person (docs/calibration.md). `build` turns them into encodings with the scans' own engine;
`measure` runs the registry's protocol on the folder itself, so the margins of cohort
normalisation (docs/matching.md) can be read against the false-match rate measured on real people
of that population; `calibrate` does both, saves the cohort (encodings only, `cohort.save`) and
writes an audit entry.

Rows come out grouped by person and, within a person, in file-name order: `measure` enrolls each
person's first row. A person's folder is read recursively; names are handled as bytes, whatever
their encoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from scanner.errors import UsageError
from scanner.matching import policy

log = logging.getLogger(__name__)

MIN_PEOPLE = 10
K = policy.COHORT_K  # the policy's cohort size: mean of the 3 nearest other people
# Margins tabulated: those of the policy's built-in table, so a calibrated table can replace it row
# for row (policy.table_from_calibration; docs/calibration.md).
MARGINS = tuple(m for m, _rate in policy.FMR_TABLE)
# A pair farther apart than this is never a same-person decision, whatever its margin (policy v2's
# ceiling for one face).
MAX_DISTANCE = policy.GROUP_MEMBER_MAX
CONFIDENCE = 0.95  # one-sided Clopper-Pearson upper bound
CHUNK_VALUES = 1 << 21  # probe x template distances computed at once (16 MiB of float64 per array)

SKIP_REASONS = (
    "no_face",
    "several_faces",
    "unreadable",
    "duplicate",
    "too_large",
    "not_a_file",
    "outside_person_folder",
)


def build(
    folder: str | os.PathLike, progress: Callable[[int, int], None] | None = None, options=None, reference_options=None
):
    """Analyse every photo under `folder/<person>/`; return (encodings, person, people, stats).

    A photo contributes its face when it shows exactly one; photos with no face, several faces,
    that cannot be decoded, or that repeat an earlier file's bytes are counted and skipped, as are
    links, special files and files outside a person's folder (every file seen is either a face or
    a skipped file: `stats["files"]`). A person without one usable photo is left out. `encodings`
    is float32 (faces, 128), `person` the index into `people` (folder names, decoded as the file
    system does) of each row. `stats` also holds the skipped files with their reasons and the
    source digest (`source_sha256`, see `source_digest`). Raises UsageError below MIN_PEOPLE
    usable people. `options`: the engine (default the built-in one). With `reference_options`
    (an operator's model: `options`, and the built-in engine here), every usable photo is analysed
    by both and `stats["reference"]` holds the built-in engine's encodings, row for row; a photo
    only one of them finds exactly one face in is skipped.
    """
    from scanner import workers
    from scanner.models import ScanOptions

    options = options or ScanOptions()
    root = os.fsencode(os.fspath(folder))
    if not os.path.isdir(root):
        raise UsageError(f"{display(root)} is not a folder: give a folder with one subfolder per person")
    skipped: list[tuple[str, str]] = []
    people_files: list[tuple[bytes, list[bytes]]] = []
    for entry in _sorted_entries(root):
        if entry.is_dir(follow_symlinks=False):
            files: list[bytes] = []
            _walk(entry.path, files, skipped, root)
            people_files.append((entry.name, files))
        else:
            skipped.append(
                (
                    _rel(entry.path, root),
                    "not_a_file"
                    if entry.is_symlink() or not entry.is_file(follow_symlinks=False)
                    else "outside_person_folder",
                )
            )
    total = sum(len(files) for _, files in people_files)
    encodings: list[tuple] = []
    person: list[int] = []
    people: list[str] = []
    used: list[tuple[str, str]] = []
    seen: set[str] = set()
    reference: list[tuple] = []
    done = 0
    total *= 2 if reference_options is not None else 1
    found = []  # (person folder, path, rel, digest, face) of every usable photo, in order
    for name, files in people_files:
        for path in files:
            done += 1
            rel = _rel(path, root)
            reason, digest, face = _photo(path, options, seen, workers)
            if progress is not None:
                progress(done, total)
            if reason:
                skipped.append((rel, reason))
                continue
            found.append((name, path, rel, digest, face))
    if reference_options is not None:  # a second pass: switching engines per photo would reload both
        kept = []
        for item in found:
            done += 1
            reason, _digest, face = _photo(item[1], reference_options, set(), workers)
            if progress is not None:
                progress(done, total)
            if reason:
                skipped.append((item[2], reason))
                continue
            kept.append(item)
            reference.append(face)
        found = kept
    by_person: dict[bytes, list] = {}
    for name, _path, rel, digest, face in found:
        by_person.setdefault(name, []).append((rel, digest, face))
    for name, _files in people_files:
        rows = []
        for rel, digest, face in by_person.get(name, []):
            rows.append(face)
            used.append((os.fsdecode(rel), digest))
        if rows:
            encodings.extend(rows)
            person.extend([len(people)] * len(rows))
            people.append(os.fsdecode(name))
    counts = Counter(reason for _, reason in skipped)
    stats = {
        "files": len(used) + len(skipped),
        "faces": len(encodings),
        "people": len(people),
        "people_without_usable_photo": len(people_files) - len(people),
        "skipped": {r: counts.get(r, 0) for r in SKIP_REASONS},
        "skipped_photos": [(display(rel), reason) for rel, reason in skipped],
        "source_sha256": source_digest(used),
        "reference": reference if reference_options is not None else None,
    }
    if len(people) < MIN_PEOPLE:
        raise UsageError(
            f"{display(root)}: only {len(people)} person folder(s) with a usable photo (one face each); "
            f"a reference cohort needs at least {MIN_PEOPLE} people, ideally hundreds with 2 or more "
            "photos each, in one subfolder per person (docs/calibration.md)"
        )
    enc = np.asarray(encodings, dtype=np.float32).reshape(len(encodings), -1)
    return enc, np.asarray(person, dtype=np.int64), people, stats


def _sorted_entries(path: bytes) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def _walk(path: bytes, files: list[bytes], skipped: list, root: bytes) -> None:
    """Collect a person's regular files in file-name order; links and special files are skipped."""
    for entry in _sorted_entries(path):
        if entry.is_symlink():
            skipped.append((_rel(entry.path, root), "not_a_file"))
        elif entry.is_dir(follow_symlinks=False):
            _walk(entry.path, files, skipped, root)
        elif entry.is_file(follow_symlinks=False):
            files.append(entry.path)
        else:
            skipped.append((_rel(entry.path, root), "not_a_file"))


def _rel(path: bytes, root: bytes) -> bytes:
    return os.path.relpath(path, root).replace(os.sep.encode(), b"/")


def _photo(path: bytes, options, seen: set[str], workers) -> tuple[str | None, str, tuple | None]:
    """Return (skip reason or None, file SHA-256, the face's encoding) for one file."""
    try:
        if os.stat(path, follow_symlinks=False).st_size > options.max_member_bytes:
            return "too_large", "", None
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        log.info("cannot read %s: %s", display(path), exc)
        return "unreadable", "", None
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen:  # a second copy would pair a face with itself (distance 0)
        return "duplicate", digest, None
    seen.add(digest)
    try:
        analysis = workers.analyse_here(data, options, path=os.fsdecode(path))
    except Exception as exc:  # noqa: BLE001 - one photo's bug must not cost the cohort, as in a scan
        log.warning("%s: %s", display(path), workers.internal_error(exc).error)
        return "unreadable", digest, None
    if analysis.error or analysis.video is not None:  # an animation is not one photo of a person
        log.info("%s: %s", display(path), analysis.error or "animated image")
        return "unreadable", digest, None
    if len(analysis.faces) != 1:
        return ("no_face" if not analysis.faces else "several_faces"), digest, None
    return None, digest, analysis.faces[0].encoding


def display(name: bytes | str) -> str:
    """A file name as printable text, whatever bytes it holds (undecodable bytes as \\xNN)."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    return raw.decode("utf-8", "backslashreplace")


def source_digest(used: list[tuple[str, str]]) -> str:
    """SHA-256 of the photos a cohort was built from, without keeping them.

    The SHA-256 of the compact ASCII JSON of the sorted list of [relative path, file SHA-256]
    pairs, paths with "/" separators as the file system decodes them (undecodable bytes as lone
    surrogates, which JSON writes as \\udcNN). docs/calibration.md shows how to recompute it.
    """
    body = json.dumps(sorted([list(u) for u in used]), ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("ascii")).hexdigest()


# -- measurement ---------------------------------------------------------------------------------


def measure(
    encodings,
    person,
    k: int = K,
    *,
    margins=MARGINS,
    max_distance: float = MAX_DISTANCE,
    chunk_values: int = CHUNK_VALUES,
    to_scale=policy.identity,
) -> dict:
    """Run the registry protocol on a labelled set of faces; return false-match and genuine rates.

    Every person with two or more faces enrolls their first as a template (a subject); every other
    face is a probe. For each probe and each subject of another person, d is their distance and
    the normalised margin m = 0.5*(cq + ct) - d, where cq is the mean of the probe's k smallest
    distances to subjects other than this one and other than the probe's own person, and ct the
    mean of the template's k smallest distances to other templates. An impostor event at margin M
    is m >= M with d <= max_distance; its rate gets a one-sided 95% Clopper-Pearson upper bound.
    A genuine probe (own person enrolled) is found at M when its own subject is its nearest, within
    max_distance, with m >= M. Distances are taken on the policy's scale (`to_scale`: an operator's
    model's calibrated map, policy.DistanceScale).
    """
    enc = np.asarray(encodings, dtype=np.float64)
    person = np.asarray(person)
    if enc.ndim != 2 or len(enc) != len(person):
        raise ValueError("encodings must be (faces, dim) with one person per row")
    margins = np.asarray(margins, dtype=np.float64)
    _, first, counts = np.unique(person, return_index=True, return_counts=True)
    template_rows = np.sort(first[counts >= 2])
    if len(template_rows) < k + 2:
        raise UsageError(
            f"only {len(template_rows)} people have 2 or more usable photos: measuring needs at least "
            f"{k + 2} (a subject, its {k} nearest other subjects, and another person's probe); "
            "give more people with several photos each"
        )
    subject_col = {int(person[r]): c for c, r in enumerate(template_rows)}
    is_template = np.zeros(len(enc), dtype=bool)
    is_template[template_rows] = True
    probe_rows = np.flatnonzero(~is_template)
    own = np.array([subject_col.get(int(p), -1) for p in person[probe_rows]], dtype=np.int64)
    templates = enc[template_rows]
    t_sq = np.einsum("ij,ij->i", templates, templates)
    n_subjects = len(templates)
    rows_per_chunk = max(1, chunk_values // n_subjects)

    ct = np.empty(n_subjects)
    for start in range(0, n_subjects, rows_per_chunk):
        d = to_scale(_distances(templates[start : start + rows_per_chunk], templates, t_sq))
        d[np.arange(len(d)), np.arange(start, start + len(d))] = np.inf
        ct[start : start + len(d)] = np.partition(d, k - 1, axis=1)[:, :k].mean(axis=1)

    events = np.zeros(len(margins), dtype=np.int64)
    found = np.zeros(len(margins), dtype=np.int64)
    pairs = 0
    genuine = 0
    for start in range(0, len(probe_rows), rows_per_chunk):
        rows = probe_rows[start : start + rows_per_chunk]
        own_c = own[start : start + len(rows)]
        d = to_scale(_distances(enc[rows], templates, t_sq))
        has_own = np.flatnonzero(own_c >= 0)
        masked = d.copy()
        masked[has_own, own_c[has_own]] = np.inf  # the probe's own person is never its cohort
        smallest = np.sort(np.partition(masked, k, axis=1)[:, : k + 1], axis=1)
        sum_k = smallest[:, :k].sum(axis=1)
        # Leaving subject j out of the probe's cohort: when j is among the k smallest, the cohort
        # is the k+1 smallest less j; otherwise the k smallest (ties give the same sum either way).
        cq = np.where(d <= smallest[:, k - 1 : k], (smallest.sum(axis=1)[:, None] - d) / k, (sum_k / k)[:, None])
        m = 0.5 * (cq + ct[None, :]) - d
        impostor = np.isfinite(masked)
        pairs += int(impostor.sum())
        hits = m[impostor & (d <= max_distance)]
        events += (hits[:, None] >= margins[None, :]).sum(axis=0)
        if len(has_own):
            oc = own_c[has_own]
            d_own = d[has_own, oc]
            m_own = 0.5 * (sum_k[has_own] / k + ct[oc]) - d_own
            ok = (np.argmin(d[has_own], axis=1) == oc) & (d_own <= max_distance)
            genuine += len(has_own)
            found += (ok[:, None] & (m_own[:, None] >= margins[None, :])).sum(axis=0)

    return {
        "people": len(counts),
        "faces": len(enc),
        "subjects": int(n_subjects),
        "probes": len(probe_rows),
        "genuine_probes": int(genuine),
        "impostor_pairs": int(pairs),
        "max_distance": max_distance,
        "confidence": CONFIDENCE,
        "fmr_table": [
            [round(float(mg), 4), int(e), upper_bound(int(e), pairs)] for mg, e in zip(margins, events, strict=True)
        ],
        "genuine_rate": [
            [round(float(mg), 4), (float(f) / genuine) if genuine else None]
            for mg, f in zip(margins, found, strict=True)
        ],
        "k": int(k),
    }


# -- an operator's model: its distances on dlib's scale -------------------------------------------

SCALE_FACES = 3000  # faces whose pairs fit the map (a seeded sample above: 4.5 million pairs)
SCALE_LOW_ORDER = 200  # the smallest pair distances kept one by one: where same-person decisions are
SCALE_KNOTS = 400
POLICY_FILE = "policy.json"


def fit_scale(model_encodings, reference_encodings, *, seed: int = 2026) -> tuple[tuple, tuple, int]:
    """The monotone map from an operator's model's distances to dlib's, over the same pairs.

    Every pair of faces (of a seeded sample of SCALE_FACES faces when there are more) gets both
    models' distances; the two sorted lists are matched quantile for quantile at SCALE_KNOTS knots,
    the SCALE_LOW_ORDER smallest pairs one by one and then geometrically spaced ranks, since the
    decisions sit in the low tail. Returns (model knots, reference knots, pairs), both starting at
    (0, 0) and strictly increasing in the model's distances."""
    from scipy.spatial.distance import pdist

    a = np.asarray(model_encodings, dtype=np.float64)
    b = np.asarray(reference_encodings, dtype=np.float64)
    if len(a) != len(b) or len(a) < 3:
        raise UsageError("a distance scale needs the same 3 or more faces from both engines")
    if len(a) > SCALE_FACES:
        rows = np.sort(np.random.default_rng(seed).choice(len(a), SCALE_FACES, replace=False))
        a, b = a[rows], b[rows]
    da, db = np.sort(pdist(a)), np.sort(pdist(b))
    n = len(da)
    low = min(SCALE_LOW_ORDER, n)
    ranks = np.unique(np.concatenate([np.arange(low), np.geomspace(max(low, 1), n, SCALE_KNOTS).astype(np.int64) - 1]))
    x, y = [0.0], [0.0]
    for r in ranks:
        if da[r] > x[-1] and db[r] >= y[-1]:
            x.append(float(da[r]))
            y.append(float(db[r]))
    return tuple(x), tuple(y), int(n)


def _scale_version(spec, knots_model, knots_reference) -> str:
    body = json.dumps(
        {"model_sha256": spec.sha256, "model": knots_model, "reference": knots_reference},
        separators=(",", ":"),
        sort_keys=True,
    )
    return f"{policy.POLICY_VERSION}+{spec.embedder}+scale-{hashlib.sha256(body.encode()).hexdigest()[:12]}"


def model_policy(root, spec) -> policy.DistanceScale | None:
    """The distance scale calibrated for this model in this workspace, or None (none calibrated, or
    calibrated for another model file)."""
    from scanner.fingerprints.modelfile import manifest_path

    try:
        record = json.loads((manifest_path(root).parent / POLICY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if record.get("model_sha256") != spec.sha256:
        return None
    scale = record["distance_scale"]
    return policy.DistanceScale(tuple(scale["model"]), tuple(scale["reference"]), record["policy"])


def _save_policy(root, record: dict) -> Path:
    from scanner.fingerprints.modelfile import manifest_path

    folder = manifest_path(root).parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    where = folder / POLICY_FILE
    tmp = folder / (POLICY_FILE + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        fh.write(json.dumps(record, indent=2, sort_keys=True))
    tmp.replace(where)
    return where


def _distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def upper_bound(events: int, trials: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen `events` times in `trials`."""
    if trials <= 0 or events >= trials:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(confidence, events + 1, trials - events))


def supported_registry_size(upper: float, bound: float = 0.01) -> int:
    """The largest registry for which (size x per-subject FMR bound) stays within `bound`."""
    return int(bound / upper) if upper > 0 else 0


# -- the use case --------------------------------------------------------------------------------


def calibrate(
    registry, folder: str | os.PathLike, *, actor: str, progress: Callable[[int, int], None] | None = None
) -> tuple[dict, Path, list]:
    """Build the workspace's reference cohort from `folder`, measure it, save it and audit it.

    Returns (the manifest written, the cohort folder, the skipped photos as (name, reason)).
    The earlier cohort, if any, is replaced only once the new one has been built and measured.
    """
    from scanner.matching import cohort
    from scanner.models import ScanOptions

    spec = registry.options.model
    reference_options = ScanOptions() if spec is not None else None
    encodings, person, _people, stats = build(folder, progress, registry.options, reference_options)
    scale, policy_record = None, None
    if spec is not None:
        # an operator's model: its distances are put on dlib's scale, measured on these very faces,
        # before anything is measured in them
        knots_model, knots_reference, pairs = fit_scale(encodings, stats["reference"])
        version = _scale_version(spec, knots_model, knots_reference)
        scale = policy.DistanceScale(knots_model, knots_reference, version)
        policy_record = {
            "policy": version,
            "base_policy": policy.POLICY_VERSION,
            "embedder": spec.embedder,
            "model_sha256": spec.sha256,
            "reference_embedder": "face_recognition-dlib-resnet-v1",
            "distance_scale": {
                "model": list(knots_model),
                "reference": list(knots_reference),
                "pairs": pairs,
                "faces": len(encodings),
            },
            "source_sha256": stats["source_sha256"],
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    measured = measure(encodings, person, to_scale=scale or policy.identity)
    previous = _manifest(registry.root)
    manifest = {
        "embedder": registry.embedder,
        "embedder_version": registry.embedder_version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "people": stats["people"],
        "faces": stats["faces"],
        "files": stats["files"],
        "people_without_usable_photo": stats["people_without_usable_photo"],
        "skipped": stats["skipped"],
        "source_sha256": stats["source_sha256"],
        "measured": measured,
        **(
            {"policy": policy_record["policy"], "distance_scale": policy_record["distance_scale"]}
            if policy_record
            else {}
        ),
    }
    where = cohort.save(registry.root, encodings, person, manifest)
    if policy_record is not None:
        _save_policy(registry.root, policy_record)
    details = {
        k: manifest[k] for k in ("people", "faces", "files", "skipped", "source_sha256", "embedder", "embedder_version")
    }
    if policy_record is not None:
        details["policy"] = policy_record["policy"]
    if previous:
        details["replaced_source_sha256"] = previous.get("source_sha256")
    registry.store.audit("calibrate", actor, None, details)
    return manifest, where, stats["skipped_photos"]


def remove(registry, *, actor: str) -> dict | None:
    """Overwrite and delete the workspace's reference cohort; return its manifest (None: there was none)."""
    from scanner.matching import cohort

    previous = _manifest(registry.root)
    removed = cohort.remove(registry.root)
    registry.store.audit(
        "calibrate_remove",
        actor,
        None,
        {
            "removed": removed,
            "people": (previous or {}).get("people"),
            "faces": (previous or {}).get("faces"),
            "source_sha256": (previous or {}).get("source_sha256"),
        },
    )
    return (previous or {}) if removed else None


def _manifest(root) -> dict | None:
    from scanner.matching import cohort

    try:
        return json.loads((cohort.path(root) / cohort.MANIFEST).read_text())
    except (OSError, ValueError):
        return None
