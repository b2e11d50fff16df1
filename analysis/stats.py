"""Statistical tests and effect sizes on plain NumPy arrays (no data frames, no I/O).

Each function returns a `Test` (or the pieces of one): the test name, n, statistic, p-value,
effect size with its interval and magnitude, and a `note` that labels degenerate inputs (no
discordant pairs, all ties, too few pairs) instead of producing NaN or raising. The numbers are
checked against scipy, statsmodels and pingouin in `tests/test_analysis_stats.py`.

Conventions (also in docs/metrics.md):
- McNemar compares a variant (x) with the original (y) on the same examples; b counts pairs
  with x=1, y=0 and c pairs with x=0, y=1. Exact p is the two-sided binomial test on b of
  b+c at 1/2 (statsmodels `mcnemar(exact=True)`); mid-p subtracts P(X=min(b,c)) once
  (Fagerland et al. 2013). Effect: the paired difference in rates (b-c)/n with Newcombe's
  (1998, method 10) interval, the conditional odds ratio b/c with the exact interval, Cohen's
  g = |b/(b+c) - 1/2| (how one-sided the discordant pairs are), and for the magnitude Cohen's
  h = 2·asin√rate_x - 2·asin√rate_y on the two rates (statsmodels `proportion_effectsize`).
  g alone would call 2 discordant pairs out of 150 examples, both one way, "large" although
  the rates differ by 1.3 points; h sizes the difference the table shows.
- Wilcoxon signed-rank on x - y (zero differences dropped, scipy's `zero_method="wilcox"`,
  `method="auto"`); effect: Kerby's matched-pairs rank-biserial (R+ - R-)/(R+ + R-) over the
  non-zero differences, which is pingouin's `RBC`. Positive means x tends to be larger.
- Cliff's delta and Vargha-Delaney A12 are unpaired (x against y as two samples), reported
  beside the paired test as descriptive stochastic superiority; delta = 2*A12 - 1.
- Friedman: ranks within blocks (rows), tie-corrected chi-square; Kendall's W = Q / (n(k-1)).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

# Magnitude thresholds: (upper bound of negligible, small, medium); at or above the last: large.
CLIFF_THRESHOLDS = (0.147, 0.33, 0.474)  # |delta| and |rank-biserial|: Romano et al. (2006)
A12_THRESHOLDS = (0.06, 0.14, 0.21)  # |A12 - 0.5|: Vargha & Delaney (2000)
COHEN_G_THRESHOLDS = (0.05, 0.15, 0.25)  # Cohen's g for McNemar: Cohen (1988)
COHEN_H_THRESHOLDS = (0.2, 0.5, 0.8)  # Cohen's h for two proportions: Cohen (1988)
KENDALL_W_THRESHOLDS = (0.1, 0.3, 0.5)  # Kendall's W: Cohen-style (rstatix friedman_effsize)
MAGNITUDES = ("negligible", "small", "medium", "large")
CORRECTIONS = ("holm", "bonferroni", "bh")


def magnitude(value: float | None, thresholds: tuple[float, float, float]) -> str | None:
    """Label |value| with the magnitude band its thresholds put it in."""
    if value is None or not math.isfinite(value):
        return None
    size = abs(value)
    for label, bound in zip(MAGNITUDES, thresholds):
        if size < bound:
            return label
    return MAGNITUDES[-1]


@dataclass
class Test:
    """One row of the statistics table. Cell keys (dataset, task, ...) are filled by the caller."""

    test: str
    n: int
    statistic: float | None = None
    p_raw: float | None = None
    effect_name: str | None = None
    effect: float | None = None
    effect_low: float | None = None
    effect_high: float | None = None
    magnitude: str | None = None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


# ---------------------------------------------------------------- intervals for proportions
def wilson_interval(count, nobs, alpha: float = 0.05):
    """Wilson score interval for count/nobs, vectorised; (nan, nan) where nobs == 0."""
    count = np.asarray(count, dtype=np.float64)
    nobs = np.asarray(nobs, dtype=np.float64)
    z = sps.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = count / nobs
        denom = 1 + z * z / nobs
        centre = (p + z * z / (2 * nobs)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / nobs + z * z / (4 * nobs * nobs))
        low = np.where(nobs > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        high = np.where(nobs > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


def newcombe_paired_interval(a: int, b: int, c: int, d: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe (1998) method 10 interval for p1 - p2 from a paired 2x2 table.

    p1 = (a+b)/n is the rate of x, p2 = (a+c)/n the rate of y; b: x=1,y=0; c: x=0,y=1.
    """
    n = a + b + c + d
    if n == 0:
        return (math.nan, math.nan)
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, l2), (u1, u2) = wilson_interval([a + b, a + c], [n, n], alpha)
    product = (a + b) * (c + d) * (a + c) * (b + d)
    # Newcombe's phi, corrected for continuity when ad > bc (as in the paper), so that a table
    # without discordant pairs does not get a zero-width interval.
    excess = a * d - b * c
    if excess > 0:
        excess = max(excess - n / 2, 0.0)
    phi = 0.0 if product == 0 else excess / math.sqrt(product)
    delta = p1 - p2
    low = delta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = delta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (max(-1.0, low), min(1.0, high))


# ---------------------------------------------------------------- binary paired outcomes
def mcnemar(x, y, method: str = "midp", alpha: float = 0.05) -> Test:
    """McNemar's test of variant outcomes `x` against original outcomes `y` (0/1, same examples)."""
    if method not in ("midp", "exact"):
        raise ValueError(f"unknown McNemar method {method!r}: use midp or exact")
    x = np.asarray(x, dtype=bool)
    y = np.asarray(y, dtype=bool)
    n = int(x.size)
    name = "McNemar (mid-p)" if method == "midp" else "McNemar (exact)"
    if n == 0:
        return Test(name, 0, note="no paired examples")
    a = int(np.sum(x & y))
    b = int(np.sum(x & ~y))
    c = int(np.sum(~x & y))
    d = n - a - b - c
    discordant = b + c
    low, high = newcombe_paired_interval(a, b, c, d, alpha)
    rate_x, rate_y = (a + b) / n, (a + c) / n
    h = 2 * math.asin(math.sqrt(rate_x)) - 2 * math.asin(math.sqrt(rate_y))
    extra: dict[str, Any] = {"b": b, "c": c, "rate_x": rate_x, "rate_y": rate_y, "cohen_h": h}
    if discordant == 0:
        return Test(name, n, statistic=0.0, p_raw=1.0, effect_name="difference in rates", effect=0.0,
                    effect_low=low, effect_high=high, magnitude=None, note="no discordant pairs",
                    extra=extra | {"odds_ratio": None, "odds_low": None, "odds_high": None, "cohen_g": None})
    k = min(b, c)
    tail = sps.binom.cdf(k, discordant, 0.5)
    p_exact = min(1.0, 2.0 * tail)
    p = p_exact if method == "exact" else min(1.0, 2.0 * tail - sps.binom.pmf(k, discordant, 0.5))
    # Exact (Clopper-Pearson) interval for b/(b+c) mapped to the odds b/c.
    pl = sps.beta.ppf(alpha / 2, b, c + 1) if b > 0 else 0.0
    pu = sps.beta.ppf(1 - alpha / 2, b + 1, c) if c > 0 else 1.0
    odds = b / c if c else math.inf
    g = abs(b / discordant - 0.5)
    extra |= {
        "odds_ratio": odds,
        "odds_low": pl / (1 - pl),
        "odds_high": pu / (1 - pu) if pu < 1 else math.inf,
        "cohen_g": g,
    }
    return Test(name, n, statistic=float(b), p_raw=float(p), effect_name="difference in rates",
                effect=(b - c) / n, effect_low=low, effect_high=high,
                magnitude=magnitude(h, COHEN_H_THRESHOLDS), extra=extra)


def cochran_q(matrix) -> Test:
    """Cochran's Q over k related 0/1 samples (rows = examples, columns = variants)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        return Test("Cochran's Q", int(m.shape[0]) if m.ndim == 2 else 0, note="fewer than 2 variants")
    n, k = m.shape
    if n == 0:
        return Test("Cochran's Q", 0, note="no examples common to all variants")
    col = m.sum(axis=0)
    row = m.sum(axis=1)
    total = col.sum()
    denominator = k * total - np.sum(row * row)
    if denominator == 0:
        return Test("Cochran's Q", n, note="no variation (every example has the same outcome under all variants)")
    q = (k - 1) * (k * np.sum(col * col) - total * total) / denominator
    # eta^2_Q = Q / (n (k-1)) (Serlin et al. 1982), W-like, in [0, 1].
    eta = q / (n * (k - 1))
    return Test("Cochran's Q", n, statistic=float(q), p_raw=float(sps.chi2.sf(q, k - 1)),
                effect_name="eta2_Q", effect=float(eta), magnitude=magnitude(eta, KENDALL_W_THRESHOLDS),
                extra={"df": k - 1, "k": k})


# ---------------------------------------------------------------- continuous paired outcomes
def rank_biserial_paired(x, y) -> float | None:
    """Kerby's matched-pairs rank-biserial over the non-zero differences x - y."""
    d = _differences(x, y)
    d = d[d != 0]
    if d.size == 0:
        return None
    ranks = sps.rankdata(np.abs(d))
    plus = ranks[d > 0].sum()
    minus = ranks[d < 0].sum()
    return float((plus - minus) / (plus + minus))


def _differences(x, y) -> np.ndarray:
    # Round so that differences equal in theory are equal in floating point (scipy's advice).
    return np.round(np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64), 10)


def cliffs_delta(x, y) -> float | None:
    """Cliff's delta = P(X > Y) - P(X < Y) over all cross pairs, in O((m+n) log(m+n))."""
    a12 = vargha_delaney_a12(x, y)
    return None if a12 is None else 2.0 * a12 - 1.0


def vargha_delaney_a12(x, y) -> float | None:
    """A12 = P(X > Y) + 0.5 P(X = Y) from the rank sum of x in the pooled sample."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m, n = x.size, y.size
    if m == 0 or n == 0:
        return None
    ranks = sps.rankdata(np.concatenate([x, y]))
    r1 = ranks[:m].sum()
    return float((r1 / m - (m + 1) / 2) / n)


def wilcoxon(x, y, min_pairs: int = 1) -> Test:
    """Wilcoxon signed-rank test of x against y (paired), with rank-biserial, delta and A12."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = int(x.size)
    name = "Wilcoxon signed-rank"
    if n == 0:
        return Test(name, 0, note="no paired examples")
    a12 = vargha_delaney_a12(x, y)
    delta = None if a12 is None else 2.0 * a12 - 1.0
    extra = {
        "cliffs_delta": delta, "cliffs_magnitude": magnitude(delta, CLIFF_THRESHOLDS),
        "a12": a12, "a12_magnitude": magnitude(None if a12 is None else a12 - 0.5, A12_THRESHOLDS),
        "median_x": float(np.median(x)), "median_y": float(np.median(y)),
    }
    d = _differences(x, y)
    nonzero = int(np.count_nonzero(d))
    extra["nonzero_pairs"] = nonzero
    if nonzero == 0:
        return Test(name, n, effect_name="rank-biserial", effect=0.0, note="all differences zero", extra=extra)
    if nonzero < min_pairs:
        note = f"too few non-zero pairs ({nonzero} < {min_pairs})"
        return Test(name, n, effect_name="rank-biserial", effect=rank_biserial_paired(x, y), note=note, extra=extra)
    result = sps.wilcoxon(d, zero_method="wilcox", method="auto")
    rbc = rank_biserial_paired(x, y)
    # With 5 or fewer non-zero pairs the smallest two-sided p is 2/2^5 = 0.0625: say so.
    note = f"under-powered: {nonzero} non-zero pairs cannot reach p < 0.05" if nonzero <= 5 else None
    return Test(name, n, statistic=float(result.statistic), p_raw=float(result.pvalue),
                effect_name="rank-biserial", effect=rbc, magnitude=magnitude(rbc, CLIFF_THRESHOLDS),
                note=note, extra=extra)


def friedman(matrix) -> Test:
    """Friedman test (tie-corrected chi-square) with Kendall's W; rows = blocks, columns = treatments."""
    m = np.asarray(matrix, dtype=np.float64)
    name = "Friedman"
    if m.ndim != 2 or m.shape[1] < 2:
        return Test(name, int(m.shape[0]) if m.ndim == 2 else 0, note="fewer than 2 treatments")
    n, k = m.shape
    if n < 2:
        return Test(name, n, note=f"too few blocks ({n})")
    ranks = sps.rankdata(m, axis=1)
    ties = 0.0
    for row in ranks:  # n is the number of cells (tens to hundreds), not examples
        _, counts = np.unique(row, return_counts=True)
        ties += float(np.sum(counts ** 3 - counts))
    # Q = 12 sum_j (R_j - n(k+1)/2)^2 / (n k (k+1) - sum_i T_i / (k-1)), T_i = sum (t^3 - t) over ties in block i.
    denominator = n * k * (k + 1) - ties / (k - 1)
    if denominator <= 1e-9 * n * k * (k + 1):
        return Test(name, n, note="no variation (every block tied)", extra={"k": k, "mean_ranks": ranks.mean(axis=0).tolist()})
    rank_sums = ranks.sum(axis=0)
    q = 12.0 * np.sum((rank_sums - n * (k + 1) / 2.0) ** 2) / denominator
    w = q / (n * (k - 1))
    return Test(name, n, statistic=float(q), p_raw=float(sps.chi2.sf(q, k - 1)), effect_name="Kendall's W",
                effect=float(w), magnitude=magnitude(w, KENDALL_W_THRESHOLDS),
                extra={"k": k, "df": k - 1, "mean_ranks": ranks.mean(axis=0).tolist()})


# ---------------------------------------------------------------- multiplicity
def adjust(pvalues, method: str = "holm") -> list[float | None]:
    """Adjusted p-values (Holm, Bonferroni or Benjamini-Hochberg); None stays None and is not counted."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}: use one of {', '.join(CORRECTIONS)}")
    values = list(pvalues)
    index = [i for i, p in enumerate(values) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(values)
    if not index:
        return out
    p = np.array([values[i] for i in index], dtype=np.float64)
    m = p.size
    if method == "bonferroni":
        adjusted = np.minimum(1.0, p * m)
    elif method == "holm":
        order = np.argsort(p, kind="stable")
        scaled = p[order] * (m - np.arange(m))
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    else:  # Benjamini-Hochberg step-up
        order = np.argsort(p, kind="stable")
        scaled = p[order] * m / np.arange(1, m + 1)
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    for slot, value in zip(index, adjusted):
        out[slot] = float(value)
    return out
