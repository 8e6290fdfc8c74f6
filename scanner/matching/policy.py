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

Version 2 (issue 18): the absolute distances above were chosen on LFW and mean something else for
East Asian faces, which dlib's model packs much closer together (different people within 0.6: LFW
0.65% of pairs, Chinese celebrities 34%, JAFFE 99%). Every band above `possible` now also needs a
*normalised margin*: the face must be closer to the subject than to the other people around it
(the registry's other subjects and the reference cohort, scanner/matching/cohort.py), by a margin
whose per-subject false-match rate was measured on LFW and on East Asian faces and is the same on
both. The margin tightens with the registry's size so that each band's bound holds at the current
size, and a band is capped where the measured rates cannot bound it. Where no cohort is available
(fewer than COHORT_K other people), only faces closer than any two different people measured in
any population (CROWDED_ABS_MAX) count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLICY_VERSION = "facetrace-policy-2026-12-v2"

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

# Normalised margin m = (mean of the COHORT_K nearest other people's distances to the face and to the
# matched template) / 2 - distance. Measured by benchmarks/registry_accuracy.py (docs/matching.md,
# "Cohort normalisation"): the per-subject false-match rate of m is the same on LFW and on East Asian
# faces, where the raw distance's is 10 to 150 times higher.
COHORT_K = 3
# The crowd is only known when there are enough other people to draw it from: the rates below were
# measured with 68 and 231 other people; with 7 (a registry of 8 East Asian people, no reference
# cohort) 8 of 40 East Asian strangers were confirmed. Fewer other people than this (registry's
# other subjects plus the reference cohort): the absolute fallback below.
COHORT_MIN_PEOPLE = 60
# No cohort (fewer than COHORT_K other people: a registry of one or two, no reference cohort): the
# neighbourhood's crowding is unknown, so only a face closer than every pair of different people
# measured in any population counts (closest different people: 0.280 asianfaces_tfp, 0.295 JAFFE,
# 0.343 NUAA, 0.370 LFW).
CROWDED_ABS_MAX = 0.25
MARGIN_FLOOR = 0.08  # no band above possible below this margin, however small the registry
LINK_MARGIN = 0.05  # two faces of one group: closer to each other than to their cohorts by this much
# A group needs one photo at the group margin; its other photos may stand out by this much less (a
# person's second photo is often harder: East Asian celebrities found 27 -> 31 of 40, no stranger more)
GROUP_MEMBER_SLACK = 0.04
# Per-subject false-match rate of a stranger's face at normalised margin >= M (with distance <= 0.5):
# the higher of the LFW and East Asian one-sided 95% upper bounds (Clopper-Pearson), from 326,675 LFW
# and 68,458 East Asian (face, subject) pairs of different people. Beyond 0.12 the East Asian bound
# is limited by the number of pairs (no event at all), not by the model.
FMR_TABLE = (
    (0.04, 2.0e-3),
    (0.06, 5.4e-4),
    (0.08, 1.1e-4),
    (0.10, 7.1e-5),
    (0.12, 4.8e-5),
    (0.14, 4.4e-5),
    (0.16, 4.4e-5),
    (0.18, 4.4e-5),
    (0.20, 4.4e-5),
)
FMR_TABLE_PAIRS = 68_458  # the smaller population's pairs: what a calibrated table must beat to replace it
# Bounds per stranger face on the expected number of enrolled subjects it is wrongly matched to:
PROBABLE_BOUND = 0.01  # a single photo at probable
# a face admitted to a group; the group then needs 2+ photos that agree with each other, which
# measured no stranger group at this bound (docs/matching.md)
GROUP_MEMBER_BOUND = 0.1

BANDS = ("confident", "probable", "possible")


@dataclass(frozen=True)
class DistanceScale:
    """Puts an operator's model's distances on dlib's scale, where every threshold here was measured.

    A monotone piecewise-linear map, measured by `facetrace calibrate` on the operator's labelled
    folder (scanner/matching/calibration.py: the two models' distances over the same pairs of
    faces, matched quantile for quantile), through (0, 0): the same face pixels are at distance 0
    for any model. Beyond the last knot it goes on with the last segment's slope. Monotone, so it
    keeps every ranking: nearest neighbours found in the model's own space stay the nearest.
    `version` names it in every decision (policy.thresholds)."""

    model: tuple  # knots, the model's distances (ascending, first 0)
    reference: tuple  # dlib's distances at the same quantiles (ascending, first 0)
    version: str = ""

    def __call__(self, d):
        x, y = np.asarray(self.model), np.asarray(self.reference)
        d = np.asarray(d, dtype=np.float64)
        out = np.interp(d, x, y)
        slope = max((y[-1] - y[-2]) / max(x[-1] - x[-2], 1e-12), 1e-9)
        with np.errstate(invalid="ignore"):
            beyond = y[-1] + (d - x[-1]) * slope
        return np.where(np.isinf(d), d, np.where(d > x[-1], beyond, out))


def identity(d):
    return np.asarray(d, dtype=np.float64)


def fmr_at(margin: float | None, table=FMR_TABLE) -> float | None:
    """Upper bound of the per-subject false-match rate at this normalised margin (None: not bounded)."""
    if margin is None:
        return None
    rate = None
    for m, fmr in table:
        if margin >= m:
            rate = fmr
    return rate


def margin_for(registry_size: int, bound: float, table=FMR_TABLE) -> float | None:
    """The least tabled margin whose false-match rate keeps registry_size x rate within `bound`
    (never below MARGIN_FLOOR); None when no measured margin does: the band is capped."""
    n = max(1, registry_size)
    for m, fmr in table:
        if m >= MARGIN_FLOOR and n * fmr <= bound:
            return m
    return None


@dataclass(frozen=True)
class Context:
    """What a decision depends on besides the face: the registry's size and the rates measured."""

    registry_size: int
    table: tuple = FMR_TABLE
    table_source: str = "built-in"
    reference_people: int = 0  # people of the reference cohort (facetrace calibrate)
    # an operator's model (facetrace engine set): its distances put on dlib's scale by the policy
    # calibrated for it; None with the built-in engine (dlib's distances are the scale)
    scale: DistanceScale | None = None
    # False: an operator's model with no calibrated policy yet, whose distances mean nothing here
    faces_decided: bool = True
    policy_version: str = POLICY_VERSION

    def to_scale(self, d):
        """Distances of the workspace's engine on the scale this policy's thresholds are in."""
        return identity(d) if self.scale is None else self.scale(d)

    @property
    def cohort_people(self) -> int:
        """Other people a face's crowd is drawn from: the registry's other subjects and the reference."""
        return max(0, self.registry_size - 1) + self.reference_people

    @property
    def normalises(self) -> bool:
        return self.cohort_people >= COHORT_MIN_PEOPLE

    @property
    def probable_margin(self) -> float | None:
        return margin_for(self.registry_size, PROBABLE_BOUND, self.table)

    @property
    def group_margin(self) -> float | None:
        return margin_for(self.registry_size, GROUP_MEMBER_BOUND, self.table)

    def record(self) -> dict:
        return {
            "policy": self.policy_version,
            "registry_size": self.registry_size,
            "reference_people": self.reference_people,
            "cohort_people": self.cohort_people,
            "normalised": self.normalises,
            "probable_margin": self.probable_margin,
            "group_margin": self.group_margin,
            "probable_bound": PROBABLE_BOUND,
            "group_member_bound": GROUP_MEMBER_BOUND,
            "fmr_table": self.table_source,
            "faces_decided": self.faces_decided,
        }


def table_from_calibration(measured: dict | None) -> tuple[tuple, str]:
    """The rates to decide with: a calibrated cohort's own (facetrace calibrate) when it was measured
    on more pairs than the built-in table, else the built-in one."""
    if measured and measured.get("impostor_pairs", 0) > FMR_TABLE_PAIRS and measured.get("fmr_table"):
        rows = tuple((float(m), float(up)) for m, _events, up in measured["fmr_table"])
        return rows, f"calibrated ({measured['impostor_pairs']} pairs)"
    return FMR_TABLE, "built-in"


def thresholds(ctx: Context | None = None) -> dict:
    """Return every threshold of this policy, to be recorded with each decision (with the
    calibrated distance scale of an operator's model, when `ctx` has one)."""
    extra = (
        {}
        if ctx is None or ctx.scale is None
        else {
            "base_policy": POLICY_VERSION,
            "distance_scale": ctx.scale.version,
            "distance_scale_knots": {"model": list(ctx.scale.model), "reference": list(ctx.scale.reference)},
        }
    )
    return {
        "policy": POLICY_VERSION if ctx is None else ctx.policy_version,
        **extra,
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
        "cohort_k": COHORT_K,
        "cohort_min_people": COHORT_MIN_PEOPLE,
        "crowded_abs_max": CROWDED_ABS_MAX,
        "margin_floor": MARGIN_FLOOR,
        "link_margin": LINK_MARGIN,
        "group_member_slack": GROUP_MEMBER_SLACK,
        "probable_bound": PROBABLE_BOUND,
        "group_member_bound": GROUP_MEMBER_BOUND,
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
    # mean distance of the COHORT_K nearest other people (registry subjects other than this one, and
    # the reference cohort) to the face, and to the matched template; None when fewer are known
    cohort_face: float | None = None
    cohort_template: float | None = None
    people_nearby: int = 0  # other people among the face's nearest templates and reference faces fetched

    @property
    def margin(self) -> float:
        return float("inf") if self.second_distance is None else self.second_distance - self.distance

    @property
    def normalised_margin(self) -> float | None:
        if self.cohort_face is None or self.cohort_template is None:
            return None
        return 0.5 * (self.cohort_face + self.cohort_template) - self.distance

    def stands_out(self, margin: float | None) -> bool:
        """Whether the face is closer to the subject than the crowd around it by `margin` (or, with
        no cohort, closer than any two different people measured); False when the band is capped."""
        m = self.normalised_margin
        if m is None:
            return self.distance <= CROWDED_ABS_MAX
        return margin is not None and m >= margin

    def normalised(self, ctx: Context) -> dict:
        """The evidence of the normalisation, recorded with every same-person finding."""
        m = self.normalised_margin
        fmr = fmr_at(m, ctx.table)
        return {
            "margin": None if m is None else round(m, 6),
            "cohort_face_mean": None if self.cohort_face is None else round(self.cohort_face, 6),
            "cohort_template_mean": None if self.cohort_template is None else round(self.cohort_template, 6),
            "people_nearby": self.people_nearby,
            "fallback": None
            if m is not None
            else f"fewer than {COHORT_MIN_PEOPLE} other people to compare "
            f"with: only distances <= {CROWDED_ABS_MAX} count",
            "false_match_rate_per_subject": fmr,
            "expected_false_matches": None if fmr is None else round(min(1.0, ctx.registry_size * fmr), 6),
        }


def face_band(hit: FaceHit, ctx: Context) -> str | None:
    """Return the band one face earns on its own (never 'confident')."""
    if hit.distance <= FACE_PROBABLE_MAX and hit.margin >= FACE_PROBABLE_MARGIN and hit.stands_out(ctx.probable_margin):
        return "probable"
    if hit.distance <= FACE_POSSIBLE_MAX:
        return "possible"
    return None


def cap_reason(hit: FaceHit, ctx: Context, band: str | None) -> str | None:
    """Why a face that is close by distance alone was not given more than `band`, when the reason
    is the population or the registry's size rather than the face (said in the report)."""
    if band != "possible" or hit.distance > FACE_PROBABLE_MAX or hit.margin < FACE_PROBABLE_MARGIN:
        return None
    m = hit.normalised_margin
    if m is None:
        return (
            f"too few people to compare with ({ctx.cohort_people} in the registry and the reference cohort, "
            f"{COHORT_MIN_PEOPLE} needed; facetrace calibrate builds a reference cohort): a single face "
            f"counts only within {CROWDED_ABS_MAX}"
        )
    if ctx.probable_margin is None:
        return (
            f"the registry's {ctx.registry_size} people exceed what the measured false-match rates "
            f"can bound for a single photo (at most {PROBABLE_BOUND / ctx.table[-1][1]:.0f})"
        )
    if m < ctx.probable_margin:
        return (
            f"this face's neighbourhood is crowded: it is only {m:.3f} closer to the subject than to "
            f"the {COHORT_K} nearest other people, where {ctx.probable_margin} is needed at a registry "
            f"of {ctx.registry_size}"
        )
    return None


def _link_distances(members: list[FaceHit], to_scale=identity) -> np.ndarray:
    """Condensed distances for complete linkage, cut at 0: two faces link when they are within
    GROUP_LINK_MAX of each other and, where both have a cohort, closer to each other than to the
    people around them by LINK_MARGIN."""
    from scipy.spatial.distance import pdist, squareform

    enc = np.asarray([h.encoding for h in members], dtype=np.float64)
    d = squareform(to_scale(pdist(enc)))
    linked = d - GROUP_LINK_MAX
    cohort = np.asarray([np.nan if h.cohort_face is None else h.cohort_face for h in members])
    crowd = d - 0.5 * (cohort[:, None] + cohort[None, :]) + LINK_MARGIN
    linked = np.where(np.isnan(crowd), linked, np.maximum(linked, crowd))
    np.fill_diagonal(linked, 0.0)
    return squareform(linked - linked.min() + 1e-12, checks=False), -linked.min() + 1e-12


def group_decisions(hits: list[FaceHit], subject_centroid, ctx: Context) -> dict[tuple, dict]:
    """Decide for groups: return {face key: group evidence} for faces in a confident group.

    A face can join a group for its nearest subject only if it stands out from the crowd around it
    by the group margin (at this registry size) less GROUP_MEMBER_SLACK and is within
    GROUP_MEMBER_MAX; one photo of the group must stand out by the full margin. The candidates are
    split (complete linkage: within GROUP_LINK_MAX of each other and closer to each other than to
    their cohorts) so that a group holds faces that all look like one another, not just like the
    subject; each consistent group of 2+ photos is judged as a whole against the subject's mean
    template.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    member_margin = None if ctx.group_margin is None else ctx.group_margin - GROUP_MEMBER_SLACK
    by_subject: dict[str, list[FaceHit]] = {}
    for h in hits:
        # a face far from the subject, or not standing out of its crowd, must not ride on the others'
        # strength (look-alikes' background faces and a crowded population's strangers did)
        if h.distance <= GROUP_MEMBER_MAX and h.stands_out(member_margin):
            by_subject.setdefault(h.subject_id, []).append(h)
    out: dict[tuple, dict] = {}
    for subject, members in by_subject.items():
        if len({h.photo for h in members}) < GROUP_MIN_PHOTOS:
            continue
        if len(members) > 1:
            condensed, cut = _link_distances(members, ctx.to_scale)
            labels = fcluster(linkage(condensed, method="complete"), cut, criterion="distance")
        else:
            labels = np.ones(1, dtype=int)
        # every consistent group is judged, not only the largest: a subject's nearest faces can
        # also include a cluster of look-alikes (or background faces) next to the person's own
        for label in sorted(set(labels.tolist())):
            group = [h for h, x in zip(members, labels, strict=False) if x == label]
            photos = len({h.photo for h in group})
            if photos < GROUP_MIN_PHOTOS:
                continue
            centroid = np.mean([h.encoding for h in group], axis=0)
            d_centroid = float(ctx.to_scale(np.linalg.norm(centroid - subject_centroid(subject))))
            d_mean = float(np.mean([h.distance for h in group]))
            margins = [h.normalised_margin for h in group]
            evidence = {
                "group_photos": photos,
                "group_faces": len(group),
                "group_centroid_distance": round(d_centroid, 6),
                "group_mean_distance": round(d_mean, 6),
                "group_least_margin": None if None in margins else round(min(margins), 6),
                "group_best_margin": None if None in margins else round(max(margins), 6),
                "group_margin_needed": ctx.group_margin,
                "member_margin_needed": member_margin,
            }
            strong = any(h.stands_out(ctx.group_margin) for h in group)
            if d_centroid <= GROUP_CENTROID_MAX and d_mean <= GROUP_MEAN_MAX and strong:
                for h in group:
                    out[h.key] = evidence
    return out
