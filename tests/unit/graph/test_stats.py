"""NPMI as users read it: 1 always together, 0 independent, negative when they avoid each other, none when rare."""

from __future__ import annotations

import math

import pytest

from corpusbridge.graph.stats import npmi


def test_always_together_is_1_and_independent_is_0() -> None:
    assert npmi(10, 10, 10, 100) == pytest.approx(1.0)
    assert npmi(100, 100, 100, 100) == 1.0  # both everywhere
    assert npmi(25, 50, 50, 100) == pytest.approx(0.0, abs=1e-12)


def test_a_known_value_and_avoidance() -> None:
    expected = math.log((5 / 100) / ((20 / 100) * (10 / 100))) / -math.log(5 / 100)
    assert npmi(5, 20, 10, 100) == pytest.approx(expected, abs=1e-15)
    assert npmi(1, 50, 50, 100) < 0


def test_rare_pairs_and_empty_universes_have_no_npmi() -> None:
    assert npmi(2, 10, 10, 100, min_count=3) is None
    assert npmi(3, 10, 10, 100, min_count=3) is not None
    assert npmi(0, 10, 10, 100) is None and npmi(1, 1, 1, 0) is None
