"""The one place where distances become decisions. Every number here was measured; see
docs/matching.md for how, on which photos, and with which error rates.

Three kinds of finding, each with a band:
  exact_copy   the member's SHA-256 equals an enrolled photo's                   -> confident
  near_copy    pHash within NEAR_COPY_MAX_BITS of an enrolled photo or variant,
               or a face within NEAR_COPY_FACE_MAX of an enrolled template         -> confident
  same_person  a face near the subject's templates:
                 a group of >= GROUP_MIN_PHOTOS photos consistent with each other
                 and close to the subject as a whole                              -> confident
                 one face close enough, with a margin to the next subject        -> probable
                 one face within face_recognition's usual 0.6                    -> possible

Single photos stay modest on purpose: in 1:N search a stranger's one photo lands near somebody
often (60% within 0.6 of one of 279 people), while several photos agreeing on one subject do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

POLICY_VERSION = "facetrace-policy-2026-11-v1"

# pHash bits. Re-encoding (JPEG q30-95) and resizing (0.25x-2x) move an LFW photo's pHash by at
# most 2 bits; the closest two distinct LFW photos (1.8 M pairs) are 4 bits apart.
NEAR_COPY_MAX_BITS = 3
# Face distance below which two faces come from the same photo (re-encoded, resized or cropped:
# the face's pixels are the same). The closest faces of two distinct LFW photos are 0.127 apart
# (2,088 faces, 2.2 M pairs); an edited copy's face is typically within 0.05.
NEAR_COPY_FACE_MAX = 0.1

# Face distances (dlib 128-d, Euclidean). Measured with 239 LFW people enrolled (3 photos each),
# their 959 other faces, and 377 faces of 140 people not enrolled (docs/matching.md).
FACE_POSSIBLE_MAX = 0.6  # face_recognition's tolerance: 1:1 same-person decisions
FACE_PROBABLE_MAX = 0.44  # with the margin below: 0 of 377 stranger faces, 73% of enrolled faces
FACE_PROBABLE_MARGIN = 0.05  # next-nearest subject at least this much farther
GROUP_MEMBER_MAX = 0.5  # a face of a confident group is confident only this close to a template
GROUP_LINK_MAX = 0.6  # faces of one group are all within this of each other (complete linkage)
GROUP_CENTROID_MAX = 0.44  # group's mean encoding to the subject's mean template
GROUP_MEAN_MAX = 0.5  # mean over the group's faces of their distance to the subject's nearest template
GROUP_MIN_PHOTOS = 2

BANDS = ("confident", "probable", "possible")


def thresholds() -> dict:
    """Return every threshold of this policy, to be recorded with each decision."""
    return {
        "policy": POLICY_VERSION,
        "near_copy_max_bits": NEAR_COPY_MAX_BITS,
        "near_copy_face_max": NEAR_COPY_FACE_MAX,
        "face_possible_max": FACE_POSSIBLE_MAX,
        "face_probable_max": FACE_PROBABLE_MAX,
        "face_probable_margin": FACE_PROBABLE_MARGIN,
        "group_member_max": GROUP_MEMBER_MAX,
        "group_link_max": GROUP_LINK_MAX,
        "group_centroid_max": GROUP_CENTROID_MAX,
        "group_mean_max": GROUP_MEAN_MAX,
        "group_min_photos": GROUP_MIN_PHOTOS,
    }


@dataclass(frozen=True)
class FaceHit:
    """One face of a dump and its nearest enrolled subject."""

    key: tuple  # (member seq, face index)
    logical_path: str
    photo: str  # SHA-256 of the photo: photos, not faces, count towards a group
    encoding: tuple
    subject_id: str
    distance: float  # to the subject's nearest template
    template_id: int  # that nearest template
    templates_within: int  # how many of the subject's templates are within FACE_POSSIBLE_MAX
    second_subject: str | None
    second_distance: float | None

    @property
    def margin(self) -> float:
        return float("inf") if self.second_distance is None else self.second_distance - self.distance


@dataclass
class Decision:
    subject_id: str
    kind: str
    band: str
    hits: list = field(default_factory=list)
    evidence: dict = field(default_factory=dict)


def face_band(hit: FaceHit) -> str | None:
    """Return the band one face earns on its own (never 'confident')."""
    if hit.distance <= FACE_PROBABLE_MAX and hit.margin >= FACE_PROBABLE_MARGIN:
        return "probable"
    if hit.distance <= FACE_POSSIBLE_MAX:
        return "possible"
    return None


def group_decisions(hits: list[FaceHit], subject_centroid) -> dict[tuple, dict]:
    """Decide for groups: return {face key: group evidence} for faces in a confident group.

    Faces are grouped by their nearest subject, then split (complete linkage at GROUP_LINK_MAX) so
    that a group holds faces that all look like one another, not just like the subject; each
    consistent group of 2+ photos is judged as a whole against the subject's mean template.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    by_subject: dict[str, list[FaceHit]] = {}
    for h in hits:
        if h.distance <= FACE_POSSIBLE_MAX:
            by_subject.setdefault(h.subject_id, []).append(h)
    out: dict[tuple, dict] = {}
    for subject, members in by_subject.items():
        if len({h.photo for h in members}) < GROUP_MIN_PHOTOS:
            continue
        enc = np.asarray([h.encoding for h in members], dtype=np.float64)
        labels = fcluster(linkage(enc, method="complete"), GROUP_LINK_MAX, criterion="distance") \
            if len(members) > 1 else np.ones(1, dtype=int)
        # every consistent group is judged, not only the largest: a subject's nearest faces can
        # also include a cluster of look-alikes (or background faces) next to the person's own
        for label in sorted(set(labels.tolist())):
            group = [h for h, x in zip(members, labels) if x == label]
            photos = len({h.photo for h in group})
            if photos < GROUP_MIN_PHOTOS:
                continue
            centroid = np.mean([h.encoding for h in group], axis=0)
            d_centroid = float(np.linalg.norm(centroid - subject_centroid(subject)))
            d_mean = float(np.mean([h.distance for h in group]))
            evidence = {"group_photos": photos, "group_faces": len(group),
                        "group_centroid_distance": round(d_centroid, 6), "group_mean_distance": round(d_mean, 6)}
            if d_centroid <= GROUP_CENTROID_MAX and d_mean <= GROUP_MEAN_MAX:
                for h in group:
                    # a face far from the subject must not ride on the others' strength: it keeps
                    # the band it earns alone (look-alikes' background faces did, without this bound)
                    if h.distance <= GROUP_MEMBER_MAX:
                        out[h.key] = evidence
    return out
