"""The scan summary says what the same-person bands were decided under (docs/matching.md)."""

from __future__ import annotations

from cli.scan import decision_context_line
from scanner.matching import policy


def test_a_small_registry_says_it_cannot_normalise():
    line = decision_context_line(policy.Context(registry_size=1).record())
    assert "registry of 1" in line and "too few" in line and "facetrace calibrate" in line


def test_a_large_registry_names_its_margins_and_what_is_capped():
    line = decision_context_line(policy.Context(registry_size=1000, reference_people=200).record())
    assert "1199 other people" in line and "no probable at this size" in line and "group margin 0.1" in line
