"""The matching policy's arithmetic: margins that tighten with the registry's size, bands capped where
the measured rates cannot bound them, and a calibrated table used only when it rests on more pairs.
(Accuracy on real photos: tests/scanner/test_matching_populations.py and test_registry.py.)"""

from __future__ import annotations

import pytest

from scanner.matching import policy


def _hit(distance, cohort_face=None, cohort_template=None, second=None):
    return policy.FaceHit(
        key=(0, 0),
        logical_path="p",
        photo="p",
        encoding=(0.0,) * 128,
        subject_id="s",
        distance=distance,
        template_id=1,
        templates_within=1,
        second_subject=None,
        second_distance=second,
        cohort_face=cohort_face,
        cohort_template=cohort_template,
    )


def test_margins_tighten_with_the_registry_and_stop_where_the_rates_stop():
    sizes = (1, 50, 100, 150, 200, 227, 228, 1000, 2272, 2273, 10_000, 1_000_000)
    probable = [policy.margin_for(n, policy.PROBABLE_BOUND) for n in sizes]
    group = [policy.margin_for(n, policy.GROUP_MEMBER_BOUND) for n in sizes]
    assert probable[:6] == [0.08, 0.08, 0.10, 0.12, 0.12, 0.14] and probable[6:] == [None] * 6
    assert group[:9] == [0.08] * 7 + [0.10, 0.14] and group[9:] == [None] * 3
    for n, m in zip(sizes, probable, strict=False):  # the bound holds wherever a margin is given
        if m is not None:
            assert n * policy.fmr_at(m) <= policy.PROBABLE_BOUND


def test_a_band_held_back_by_the_registry_size_says_so():
    hit = _hit(0.35, cohort_face=0.55, cohort_template=0.55, second=0.6)  # margin 0.2: stands out
    small, large = policy.Context(registry_size=100), policy.Context(registry_size=5000)
    assert policy.face_band(hit, small) == "probable" and policy.cap_reason(hit, small, "probable") is None
    assert policy.face_band(hit, large) == "possible"
    assert "exceed" in policy.cap_reason(hit, large, "possible")
    assert hit.normalised(large)["expected_false_matches"] == pytest.approx(5000 * policy.fmr_at(0.2))


def test_without_a_cohort_only_faces_closer_than_any_two_people_count():
    ctx = policy.Context(registry_size=2)
    assert not ctx.normalises
    assert policy.face_band(_hit(0.24), ctx) == "probable"
    assert policy.face_band(_hit(0.30), ctx) == "possible"
    assert "facetrace calibrate" in policy.cap_reason(_hit(0.30), ctx, "possible")
    assert policy.Context(registry_size=2, reference_people=60).normalises


def test_a_crowded_neighbourhood_needs_a_closer_face():
    ctx = policy.Context(registry_size=50)
    sparse = _hit(0.40, cohort_face=0.80, cohort_template=0.80)  # LFW-like: others far away
    crowded = _hit(0.40, cohort_face=0.45, cohort_template=0.44)  # East-Asian-like: others close
    assert policy.face_band(sparse, ctx) == "probable"
    assert policy.face_band(crowded, ctx) == "possible"
    assert "crowded" in policy.cap_reason(crowded, ctx, "possible")


def test_a_calibrated_table_replaces_the_built_in_one_only_with_more_pairs():
    rows = [[m, 0, 1e-7] for m, _ in policy.FMR_TABLE]
    few = {"impostor_pairs": 10_000, "fmr_table": rows}
    many = {"impostor_pairs": 30_000_000, "fmr_table": rows}
    assert policy.table_from_calibration(few) == (policy.FMR_TABLE, "built-in")
    table, source = policy.table_from_calibration(many)
    assert source.startswith("calibrated") and policy.Context(100_000, table).probable_margin == 0.08
    assert policy.table_from_calibration(None)[1] == "built-in"
