"""A video's fingerprint: sampled frames' pHashes, faces per frame, per-person tracks, animation check.

Faces of all sampled frames are grouped into people by their encodings (average linkage, the
same-person threshold below); each person's appearances are joined into time ranges. A
"photo animation" (one still shifted, zoomed and re-encoded into a clip, sold to defeat liveness
checks) is recognised by what a real recording never shows: every sampled frame is a near copy of
one frame, and the face in them never changes.
"""

from __future__ import annotations

from scanner.models import Face, VideoFingerprint, VideoTrack

TRACK_SAME_PERSON = 0.55  # average-linkage distance within which faces of one video are one person (measured on the Hamilton clip: one person's faces average 0.46-0.50 apart)
RANGE_GAP_FACTOR = 2.5  # appearances further apart than this many sampling intervals start a new range
# Animation: measured in docs/accuracy.md ("Videos") on generated animations and real clips.
ANIMATION_MIN_FRAMES = 3
ANIMATION_PHASH_BITS = 18  # a frame within this many pHash bits of the medoid frame is "the same still"
ANIMATION_FACE_MAX = 0.15  # ... and its face within this distance of the medoid face
ANIMATION_SHARE = 0.9  # share of sampled frames that must be the same still


def analyse_video_frames(frames, engine) -> tuple[list[tuple[int, str]], list[Face]]:
    """Hash and find faces in each sampled frame; return ([(ms, pHash)], faces with frame_ms set).

    With an engine that batches (the ONNX one), the faces of consecutive frames go through the
    network together, up to NET_BATCH chips a call: the same encodings, in the same order."""
    from dataclasses import replace

    from scanner.fingerprints.faces import NET_BATCH
    from scanner.fingerprints.perceptual import perceptual_hashes

    samples, faces = [], []
    located = []  # (ms, boxes, chips) of frames whose faces wait for the network
    waiting = 0  # their faces

    def describe():
        for (ms, _, _), found in zip(located, engine.faces_of([(b, c) for _, b, c in located]), strict=True):
            faces.extend(replace(face, frame_ms=ms) for face in found)
        located.clear()

    for frame in frames:
        phash, _ = perceptual_hashes(frame.image)
        samples.append((frame.ms, phash))
        if not engine.batches:
            faces.extend(replace(face, frame_ms=frame.ms) for face in engine.faces(frame.image))
            continue
        boxes, chips = engine.located(frame.image)
        if boxes:
            located.append((frame.ms, boxes, chips))
            waiting += len(boxes)
            if waiting >= NET_BATCH:
                describe()
                waiting = 0
    if located:
        describe()
    return samples, faces


def group_tracks(faces: list[Face], every_ms: int) -> tuple[list[Face], tuple[VideoTrack, ...]]:
    """Give each face its person (track) number; return the faces and each track's time ranges."""
    from dataclasses import replace

    import numpy as np

    if not faces:
        return [], ()
    if len(faces) == 1:
        labels = np.array([1])
    else:
        from scipy.cluster.hierarchy import fcluster, linkage

        encodings = np.asarray([f.encoding for f in faces])
        labels = fcluster(
            linkage(encodings, method="average", metric="euclidean"), TRACK_SAME_PERSON, criterion="distance"
        )
    # number tracks by first appearance
    order: dict[int, int] = {}
    for face, label in sorted(zip(faces, labels, strict=True), key=lambda p: p[0].frame_ms):
        order.setdefault(int(label), len(order))
    out = [replace(f, track=order[int(label)]) for f, label in zip(faces, labels, strict=True)]
    tracks = []
    gap = RANGE_GAP_FACTOR * every_ms
    for track in range(len(order)):
        times = sorted({f.frame_ms for f in out if f.track == track})
        ranges = [[times[0], times[0]]]
        for t in times[1:]:
            if t - ranges[-1][1] <= gap:
                ranges[-1][1] = t
            else:
                ranges.append([t, t])
        tracks.append(VideoTrack(track, tuple((a, b) for a, b in ranges), sum(1 for f in out if f.track == track)))
    return out, tuple(tracks)


def animation_reason(samples: list[tuple[int, str]], faces: list[Face]) -> str | None:
    """Return why the clip looks made from one still, or None when it looks like a recording."""
    import numpy as np

    if len(samples) < ANIMATION_MIN_FRAMES:
        return None
    values = [int(h, 16) for _, h in samples]
    bits = np.array([[(a ^ b).bit_count() for b in values] for a in values])
    medoid = int(np.argmin(bits.sum(axis=1)))
    same_still = bits[medoid] <= ANIMATION_PHASH_BITS
    if same_still.mean() < ANIMATION_SHARE:
        return None
    by_frame: dict[int, list[Face]] = {}
    for f in faces:
        by_frame.setdefault(f.frame_ms, []).append(f)
    if len(by_frame) < ANIMATION_SHARE * len(samples):
        return None  # a still without a face in most frames is not what liveness attacks use
    track_counts = np.bincount([f.track for f in faces])
    main = int(np.argmax(track_counts))
    encs = np.asarray([f.encoding for f in faces if f.track == main])
    centre = encs[np.argmin(((encs[:, None, :] - encs[None, :, :]) ** 2).sum(-1).sum(1))]
    spread = np.linalg.norm(encs - centre, axis=1)
    if (spread <= ANIMATION_FACE_MAX).mean() < ANIMATION_SHARE:
        return None
    return (
        f"{int(same_still.sum())} of {len(samples)} sampled frames are within {ANIMATION_PHASH_BITS} pHash bits "
        f"of one frame, and the face in them stays within {float(spread.max()):.3f} of one face: "
        "frames made from a single still photo"
    )


def video_fingerprint(info, state, samples, tracks, animation) -> VideoFingerprint:
    return VideoFingerprint(
        container=info.container,
        codec=info.codec,
        width=info.width,
        height=info.height,
        fps=info.fps,
        duration_ms=info.duration_ms if info.duration_ms is not None else state.last_ms,
        frames_decoded=state.frames_decoded,
        samples=tuple(samples),
        tracks=tracks,
        animation=animation,
        note=state.stopped,
    )


def copy_share(
    a: tuple[tuple[int, str], ...], b: tuple[tuple[int, str], ...], *, max_bits: int = 10, max_shift_ms: int = 1000
) -> float:
    """Share of `a`'s sampled frames that have a frame of `b` at about the same time with a close pHash."""
    import bisect

    if not a or not b:
        return 0.0
    times = [ms for ms, _ in b]
    hashes = [int(h, 16) for _, h in b]
    hits = 0
    for ms, h in a:
        x = int(h, 16)
        lo, hi = bisect.bisect_left(times, ms - max_shift_ms), bisect.bisect_right(times, ms + max_shift_ms)
        if any((x ^ hashes[i]).bit_count() <= max_bits for i in range(lo, hi)):
            hits += 1
    return hits / len(a)


COPY_MAX_BITS = 10  # a sampled frame within this many pHash bits of another video's frame is "the same frame"
COPY_SHARE = 0.8  # share of both videos' sampled frames that must be shared for a copy


def find_video_copies(videos: list[tuple[object, tuple[tuple[int, str], ...], int]]) -> list[dict]:
    """Return the pairs of videos that are copies of each other, from their sampled frames.

    `videos` is [(key, samples, pixels per frame)] in scan order. Of a pair, the video with more
    pixels per frame is called the original (a re-encode rarely adds resolution); on a tie, the
    earlier one. A pair is a copy when at least COPY_SHARE of each
    one's sampled frames have a frame of the other within COPY_MAX_BITS; it is a `reencoded_copy`
    when those frames are also at the same times (within a second), else a `reedited_copy`
    (trimmed, reordered or re-timed). Candidates come from one FAISS range search over all frames.
    """
    from indexes.search.hashes import BinaryHashIndex

    if len(videos) < 2:
        return []
    index = BinaryHashIndex()
    owner: list[int] = []
    for v, (_key, samples, _pixels) in enumerate(videos):
        index.add(range(len(owner), len(owner) + len(samples)), [h for _, h in samples])
        owner += [v] * len(samples)
    out = []
    for v, (key, samples, pixels) in enumerate(videos):
        if not samples:
            continue
        shared: dict[int, int] = {}
        for hits in index.range_search([h for _, h in samples], COPY_MAX_BITS):
            for w in {owner[i] for i, _ in hits if owner[i] > v}:  # each pair once, from its earlier video
                shared[w] = shared.get(w, 0) + 1
        for w, n in sorted(shared.items()):
            other_key, other, other_pixels = videos[w]
            if n / len(samples) < COPY_SHARE or not other:
                continue
            back = copy_share(other, samples, max_bits=COPY_MAX_BITS, max_shift_ms=10**12)
            if back < COPY_SHARE:
                continue
            aligned = min(
                copy_share(samples, other, max_bits=COPY_MAX_BITS), copy_share(other, samples, max_bits=COPY_MAX_BITS)
            )
            original, copy = (other_key, key) if other_pixels > pixels else (key, other_key)
            out.append(
                {
                    "original": original,
                    "copy": copy,
                    "relation": "reencoded_copy" if aligned >= COPY_SHARE else "reedited_copy",
                    "shared_frames": round(min(n / len(samples), back), 3),
                    "aligned_frames": round(aligned, 3),
                    "max_bits": COPY_MAX_BITS,
                }
            )
    return out
