"""Paired bootstrap confidence intervals (scipy.stats.bootstrap, BCa) and the few-sequences warning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpharefine_sdk.eval import metrics as M

pytest.importorskip("scipy")

scores = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=5, max_size=12)


@settings(max_examples=25, deadline=None)
@given(a=scores, shift=st.floats(-0.5, 0.5), noise_seed=st.integers(0, 2**16))
def test_interval_holds_the_mean_and_moves_with_a_shift(a, shift, noise_seed):
    a = np.array(a)
    b = a + np.random.default_rng(noise_seed).normal(0, 0.05, size=a.size)
    r = M.paired_bootstrap_ci(a, b, n=999, seed=0)
    assert r["warning"] is None and r["sequences"] == a.size
    assert r["low"] <= r["mean"] + 1e-12 and r["mean"] <= r["high"] + 1e-12
    moved = M.paired_bootstrap_ci(a, b + shift, n=999, seed=0)  # same resamples, every difference + shift
    tol = 0.05 * float(np.ptp(b - a)) + 1e-9  # rounding may swap two nearly tied resample means
    assert moved["mean"] == pytest.approx(r["mean"] + shift)
    assert moved["low"] == pytest.approx(r["low"] + shift, abs=tol)
    assert moved["high"] == pytest.approx(r["high"] + shift, abs=tol)


def test_bca_interval_covers_the_true_difference_about_95_percent():
    rng = np.random.default_rng(7)
    hits = 0
    trials = 120
    for _ in range(trials):
        a = rng.uniform(0.3, 0.8, size=15)
        b = a + 0.03 + rng.exponential(0.05, size=15) - 0.05  # skewed differences, true mean 0.03
        r = M.paired_bootstrap_ci(a, b, n=1999, seed=int(rng.integers(1 << 30)))
        hits += r["low"] <= 0.03 <= r["high"]
    assert 0.85 <= hits / trials <= 1.0


@pytest.mark.parametrize("n", [1, 2, 4])
def test_fewer_than_five_sequences_warn_instead_of_an_interval(n):
    a = np.linspace(0.4, 0.6, n)
    r = M.paired_bootstrap_ci(a, a + 0.152)
    assert r["mean"] == pytest.approx(0.152)
    assert r["low"] is None and r["high"] is None and r["p_le_0"] is None
    assert "too few for a confidence interval" in r["warning"] and r["sequences"] == n


def test_identical_differences_give_a_point_interval():
    a = np.linspace(0.2, 0.7, 6)
    r = M.paired_bootstrap_ci(a, a + 0.1)
    assert r["low"] == pytest.approx(0.1) and r["high"] == pytest.approx(0.1) and r["p_le_0"] == 0.0


def test_report_prints_the_warning_not_a_one_point_interval():
    from alpharefine_sdk.eval.report import EvalResults

    c = M.paired_bootstrap_ci([0.5], [0.652])
    res = EvalResults.__new__(EvalResults)
    res.comparisons = {"csrt -> csrt+AR": {"sequences": 1, "auc": c, "miou": c}}
    lines = res.comparison_lines()
    assert lines[0] == "csrt -> csrt+AR: AUC +15.2, mIoU +15.2 over 1 sequences"
    assert lines[1].startswith("warning: 1 sequence(s): too few for a confidence interval")
    assert "CI" not in lines[0]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="equal-length"):
        M.paired_bootstrap_ci([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="finite"):
        M.paired_bootstrap_ci([0.1] * 5, [0.1, 0.2, np.nan, 0.3, 0.4])
