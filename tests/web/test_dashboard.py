"""The seizure forecast: a least-squares line and its 95 % prediction interval."""

from __future__ import annotations

import pytest

from sciti.web.dashboard import linear_forecast


def test_a_perfect_line_is_continued_with_no_uncertainty():
    out = linear_forecast([2, 4, 6, 8, 10], 3)
    assert out["mean"] == [12, 14, 16]
    assert out["low"] == out["mean"] == out["high"]


def test_the_interval_holds_the_mean_and_widens_ahead():
    out = linear_forecast([10, 14, 9, 15, 11, 16, 12, 17], 4)
    widths = [h - lo for h, lo in zip(out["high"], out["low"], strict=True)]
    assert all(lo <= m <= h for lo, m, h in zip(out["low"], out["mean"], out["high"], strict=True))
    assert widths == sorted(widths) and widths[0] > 0


@pytest.mark.parametrize(("values", "expected"), [([], []), ([5, 6], [])])
def test_too_few_weeks_give_no_forecast(values, expected):
    assert linear_forecast(values, 4)["mean"] == expected


def test_counts_are_never_forecast_below_zero():
    out = linear_forecast([9, 7, 5, 3, 1], 3)
    assert min(out["low"] + out["mean"]) == 0
