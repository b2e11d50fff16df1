"""Statistics of `analysis` checked against scipy, statsmodels and pingouin on known inputs, and by hand;
every registered test (`analysis.stats.TESTS`) on ordinary and degenerate inputs of its role."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import cochrans_q, mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from analysis import stats as st
from analysis.bootstrap import bootstrap_means, bootstrap_means_numpy, percentile_interval

RNG = np.random.default_rng(7)


def paired_binary(n=120, p=0.4, flip=0.15, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < p
    x = np.where(rng.random(n) < flip, ~y, y)
    x[:5] = True  # a few more successes for x so the table is not symmetric
    return x.astype(int), y.astype(int)


def test_wilson_matches_statsmodels_and_handles_edges():
    counts, nobs = np.array([7, 0, 30, 3]), np.array([20, 30, 30, 1000])
    low, high = st.wilson_interval(counts, nobs)
    ref_low, ref_high = proportion_confint(counts, nobs, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, atol=1e-12)
    assert (low[1], round(high[1], 3)) == (0.0, 0.114)  # 0/30 -> [0, 0.114], as in the reference notes
    empty_low, empty_high = st.wilson_interval([0], [0])
    assert math.isnan(empty_low[0]) and math.isnan(empty_high[0])


@pytest.mark.parametrize("method", ["exact", "midp"])
def test_mcnemar_matches_statsmodels_binomial(method):
    x, y = paired_binary()
    result = st.mcnemar(x, y, method)
    b = int(np.sum((x == 1) & (y == 0)))
    c = int(np.sum((x == 0) & (y == 1)))
    table = [[np.sum((x == 1) & (y == 1)), b], [c, np.sum((x == 0) & (y == 0))]]
    exact = sm_mcnemar(table, exact=True).pvalue
    assert result.extra["b"] == b and result.extra["c"] == c and result.statistic == b
    if method == "exact":
        assert result.p_raw == pytest.approx(exact, rel=1e-12)
        assert result.p_raw == pytest.approx(sps.binomtest(b, b + c).pvalue, rel=1e-12)
        frame = pd.DataFrame({"x": x, "y": y})
        assert result.p_raw == pytest.approx(pg.chi2_mcnemar(frame, "x", "y")[1]["p_exact"].iloc[0], rel=1e-9)
    else:  # mid-p: exact p minus the point probability of the observed min(b, c)
        expected = exact - sps.binom.pmf(min(b, c), b + c, 0.5)
        assert result.p_raw == pytest.approx(expected, rel=1e-12) and result.p_raw < exact
    assert result.effect == pytest.approx((b - c) / x.size)
    assert result.effect == pytest.approx(x.mean() - y.mean())
    assert result.effect_low < result.effect < result.effect_high
    assert result.extra["odds_ratio"] == pytest.approx(b / c)
    assert result.extra["odds_low"] < b / c < result.extra["odds_high"]
    assert result.extra["cohen_g"] == pytest.approx(abs(b / (b + c) - 0.5))
    h = proportion_effectsize(x.mean(), y.mean())
    assert result.extra["cohen_h"] == pytest.approx(h, rel=1e-12)
    assert result.magnitude == st.magnitude(h, st.COHEN_H_THRESHOLDS)


def test_mcnemar_magnitude_sizes_the_difference_in_rates_not_the_discordant_split():
    y = np.zeros(150, dtype=int)
    y[:39] = 1  # original: 26 % attack success
    x = y.copy()
    x[39:41] = 1  # variant: 2 more successes, none fewer (g = 0.5)
    result = st.mcnemar(x, y)
    assert result.extra["cohen_g"] == 0.5
    assert result.magnitude == "negligible"  # h = 0.03 for 27.3 % vs 26.0 %
    y2 = np.r_[np.ones(39), np.zeros(111)]
    x2 = np.r_[np.ones(66), np.zeros(84)]  # 44 % vs 26 %
    assert st.mcnemar(x2, y2).magnitude == "small"
    x3 = np.r_[np.ones(120), np.zeros(30)]  # 80 % vs 26 %
    assert st.mcnemar(x3, y2).magnitude == "large"


def test_mcnemar_degenerate_inputs_are_labelled():
    same = np.array([1, 0, 1, 1])
    tied = st.mcnemar(same, same)
    assert tied.p_raw == 1.0 and tied.note == "no discordant pairs" and tied.effect == 0.0
    empty = st.mcnemar([], [])
    assert empty.n == 0 and empty.p_raw is None and empty.note == "no paired examples"
    one_sided = st.mcnemar([1, 1, 1], [0, 0, 0], "exact")
    assert one_sided.p_raw == pytest.approx(0.25) and math.isinf(one_sided.extra["odds_ratio"])


def test_newcombe_interval_covers_the_true_difference():
    """Coverage of the paired-difference interval is close to nominal on simulated tables."""
    rng = np.random.default_rng(3)
    probs = np.array([0.3, 0.15, 0.05, 0.5])  # a, b, c, d cells: true difference 0.10
    covered = 0
    trials = 1500
    for _ in range(trials):
        a, b, c, d = rng.multinomial(60, probs)
        low, high = st.newcombe_paired_interval(a, b, c, d)
        covered += low <= 0.10 <= high
    assert 0.92 <= covered / trials <= 0.98
    low, high = st.newcombe_paired_interval(10, 0, 0, 10)  # no discordant pairs: still a real interval
    assert low == pytest.approx(-high) and 0.05 < high < 0.3
    low, high = st.newcombe_paired_interval(0, 12, 0, 8)  # x always 1 where y is 0
    assert 0.3 < low < 0.6 < high <= 1.0


def test_cochran_q_matches_statsmodels_and_pingouin():
    matrix = (RNG.random((60, 4)) < np.array([0.3, 0.4, 0.5, 0.6])).astype(int)
    result = st.cochran_q(matrix)
    reference = cochrans_q(matrix)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_raw == pytest.approx(reference.pvalue, rel=1e-10)
    long = pd.DataFrame([(i, j, v) for (i, j), v in np.ndenumerate(matrix)], columns=["s", "w", "v"])
    assert result.statistic == pytest.approx(pg.cochran(long, dv="v", within="w", subject="s")["Q"].iloc[0])
    # Cochran's Q is the tie-corrected Friedman statistic on 0/1 data.
    assert result.statistic == pytest.approx(st.friedman(matrix).statistic)


def test_cochran_q_degenerate_inputs_are_labelled():
    assert "no variation" in st.cochran_q(np.ones((5, 3))).note
    assert st.cochran_q(np.zeros((0, 3))).note == "no examples common to all variants"
    assert st.cochran_q(np.ones((5, 1))).note == "fewer than 2 variants"


def test_wilcoxon_matches_scipy_and_pingouin():
    x = RNG.normal(10, 3, 40).round(1)
    y = x - RNG.normal(0.8, 2, 40).round(1)
    y[:4] = x[:4]  # some zero differences
    result = st.wilcoxon(x, y)
    # Differences are rounded first (1.1 - 0.8 and 0.3 must tie), as analysis.stats does.
    reference = sps.wilcoxon(np.round(x - y, 10), zero_method="wilcox")
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_raw == pytest.approx(reference.pvalue, rel=1e-10)
    # Kerby's matched-pairs rank-biserial over the non-zero (rounded) differences, by hand
    d = np.round(x - y, 10)
    d = d[d != 0]
    ranks = sps.rankdata(np.abs(d))
    assert result.effect == pytest.approx((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum(), rel=1e-12)
    assert result.extra["nonzero_pairs"] == np.count_nonzero(np.round(x - y, 10)) < 37


def test_rank_biserial_by_hand():
    # Differences 1, -2, 3: ranks 1, 2, 3 -> (R+ - R-) / sum = (4 - 2) / 6.
    assert st.wilcoxon([2, 0, 3], [1, 2, 0]).effect == pytest.approx(1 / 3)


def test_wilcoxon_degenerate_inputs_are_labelled():
    same = st.wilcoxon([1, 2, 3], [1, 2, 3])
    assert same.p_raw is None and same.note == "all differences zero"
    assert st.wilcoxon([], []).note == "no paired examples"
    small = st.wilcoxon([1, 2, 3, 5], [0, 0, 0, 0])
    assert small.p_raw == pytest.approx(0.125) and small.note.startswith("under-powered")


def test_cliffs_delta_and_a12_match_brute_force_and_pingouin():
    x = RNG.integers(0, 8, 30).astype(float)
    y = RNG.integers(1, 9, 25).astype(float)
    greater = sum(a > b for a in x for b in y)
    less = sum(a < b for a in x for b in y)
    ties = x.size * y.size - greater - less
    assert st.cliffs_delta(x, y) == pytest.approx((greater - less) / (x.size * y.size))
    assert st.vargha_delaney_a12(x, y) == pytest.approx((greater + 0.5 * ties) / (x.size * y.size))
    mwu = pg.mwu(x, y)
    assert st.vargha_delaney_a12(x, y) == pytest.approx(mwu["CLES"].iloc[0])
    assert st.cliffs_delta(x, y) == pytest.approx(mwu["RBC"].iloc[0])  # pingouin's mwu RBC is delta
    assert st.cliffs_delta([], [1.0]) is None


def test_friedman_matches_scipy_and_pingouin_with_ties():
    matrix = RNG.integers(0, 5, (12, 4)).astype(float)
    result = st.friedman(matrix)
    reference = sps.friedmanchisquare(*matrix.T)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_raw == pytest.approx(reference.pvalue, rel=1e-10)
    wide = pd.DataFrame(matrix, columns=list("abcd"))
    assert result.effect == pytest.approx(pg.friedman(wide)["W"].iloc[0], rel=1e-10)
    assert result.effect == pytest.approx(result.statistic / (12 * 3))


def test_friedman_degenerate_inputs_are_labelled():
    assert "no variation" in st.friedman(np.ones((4, 3))).note
    assert st.friedman(np.ones((1, 3))).note == "too few blocks (1)"
    two = st.friedman(np.arange(6.0).reshape(2, 3))  # pingouin needs 3 blocks: a note, the mean ranks kept
    assert two.note == "too few blocks (2)" and two.p_raw is None and two.extra["mean_ranks"] == [1.0, 2.0, 3.0]
    assert st.friedman(np.ones((4, 1))).note == "fewer than 2 treatments"


@pytest.mark.parametrize("ours, theirs", [("holm", "holm"), ("bonferroni", "bonferroni"), ("bh", "fdr_bh")])
def test_corrections_match_statsmodels(ours, theirs):
    p = [0.01, 0.04, 0.03, 0.2, 0.001, 0.04]
    expected = multipletests(p, method=theirs)[1]
    np.testing.assert_allclose(st.adjust(p, ours), expected, rtol=1e-12)
    with_missing = st.adjust([None, *p, float("nan")], ours)
    assert with_missing[0] is None and with_missing[-1] is None
    np.testing.assert_allclose(with_missing[1:-1], expected, rtol=1e-12)
    with pytest.raises(ValueError):
        st.adjust(p, "sidak")


def test_magnitude_thresholds():
    assert [st.magnitude(v, st.CLIFF_THRESHOLDS) for v in (0.1, -0.2, 0.4, 0.474)] == ["negligible", "small", "medium", "large"]
    assert st.magnitude(0.559 - 0.5, st.A12_THRESHOLDS) == "negligible"
    assert st.magnitude(None, st.A12_THRESHOLDS) is None


def test_bootstrap_kernel_agrees_with_numpy_reference():
    values = RNG.normal(size=(301, 2))
    values[::5, 1] = np.nan
    starts = np.array([0, 1, 1, 100, 301])
    fast = bootstrap_means(values, starts, 64, seed=11)
    slow = bootstrap_means_numpy(values, starts, 64, seed=11)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, equal_nan=True)
    assert np.isnan(fast[1]).all()  # an empty group has no interval
    assert np.all(fast[0, 0] == values[0, 0])  # one value: every resample is that value


def test_bootstrap_interval_of_a_mean_is_close_to_the_normal_one():
    values = RNG.exponential(2.0, size=(4000, 1))
    means = bootstrap_means(values, np.array([0, 4000]), 2000, seed=5)
    low, high = percentile_interval(means)
    half = 1.96 * values.std(ddof=1) / math.sqrt(4000)
    assert low[0, 0] == pytest.approx(values.mean() - half, abs=0.2 * half)
    assert high[0, 0] == pytest.approx(values.mean() + half, abs=0.2 * half)


# --------------------------------------------------------------------------- the registry
_ROLES_RNG = np.random.default_rng(11)
ROLE_INPUTS = {  # role -> (ordinary arguments, degenerate arguments: a labelled row, never NaN)
    "paired-binary": (paired_binary(), ([], [])),
    "paired-continuous": ((_ROLES_RNG.normal(10, 3, 40), _ROLES_RNG.normal(9, 3, 40)), ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])),
    "omnibus-binary": (((_ROLES_RNG.random((60, 4)) < np.array([0.3, 0.4, 0.5, 0.6])).astype(int),), (np.ones((5, 3)),)),
    "omnibus-blocks": ((_ROLES_RNG.integers(0, 5, (12, 4)).astype(float),), (np.ones((4, 3)),)),
}


def test_every_role_has_inputs_and_a_registered_default():
    assert set(ROLE_INPUTS) == set(st.ROLES) == set(st.DEFAULTS)
    assert all(st.TESTS[name].role == role for role, name in st.DEFAULTS.items())


@pytest.mark.parametrize("name", sorted(st.TESTS))
def test_every_registered_test_gives_a_finite_row_or_a_labelled_one(name):
    test = st.TESTS[name]
    ordinary, degenerate = ROLE_INPUTS[test.role]
    row = test.run(*ordinary, 0.05)
    assert isinstance(row, st.Test) and row.n > 0
    assert 0.0 <= row.p_raw <= 1.0 and math.isfinite(row.statistic) and math.isfinite(row.effect)
    assert row.effect_name and row.test == test.title
    empty = test.run(*degenerate, 0.05)
    assert empty.note and (empty.p_raw is None or empty.p_raw == 1.0)
    assert all(value is None or not (isinstance(value, float) and math.isnan(value)) for value in empty.as_dict().values())


def test_a_test_is_chosen_only_for_its_own_role():
    assert st.chosen({"paired-binary": "mcnemar-exact"})["paired-binary"].name == "mcnemar-exact"
    with pytest.raises(ValueError, match="not a paired-continuous test"):
        st.chosen({"paired-continuous": "mcnemar-exact"})
    with pytest.raises(ValueError, match="unknown test role"):
        st.chosen({"paired": "wilcoxon"})
