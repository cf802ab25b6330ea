"""Student-t quantiles and intervals against published table values."""

from __future__ import annotations

import math

import pytest

from airhockey.learn.protocol.stats import mean_ci, t_cdf_two_sided, t_quantile


@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (30, 2.042)]
)
def test_t_quantiles_match_the_table(df, expected):
    assert t_quantile(0.95, df) == pytest.approx(expected, abs=5e-4)


def test_t_cdf_is_the_cauchy_one_for_one_degree_and_tends_to_the_normal():
    assert t_cdf_two_sided(1.0, 1) == pytest.approx(0.5)  # P(|Cauchy| < 1)
    assert t_cdf_two_sided(1.959964, 100_000) == pytest.approx(0.95, abs=1e-5)
    with pytest.raises(ValueError, match="df"):
        t_cdf_two_sided(1.0, 0)


def test_mean_ci_on_a_hand_computed_case():
    mean, ci = mean_ci([0.8, 0.9, 1.0])  # sd 0.1, n 3: half-width 4.303 * 0.1 / sqrt(3)
    assert mean == pytest.approx(0.9)
    assert ci == pytest.approx([0.9 - 0.24843, 0.9 + 0.24843], abs=1e-4)
    assert mean_ci([0.7, math.nan, 0.7]) == (pytest.approx(0.7), pytest.approx([0.7, 0.7]))
    assert mean_ci([0.5]) == (0.5, None)
    assert math.isnan(mean_ci([math.nan])[0])
