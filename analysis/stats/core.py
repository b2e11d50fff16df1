"""What every statistical test shares: the result row, the registry entry, magnitudes, intervals, corrections.

Libraries are imported when first used (pingouin and statsmodels take seconds to import, which
`analysis --help` should not pay). Library first (the numbers are checked against the libraries and by hand in
`tests/test_analysis_stats.py`):

- `adjust`: statsmodels `multipletests` for Bonferroni and Benjamini-Hochberg (Holm: see below);
- `wilson_interval`: statsmodels `proportion_confint(method="wilson")`, vectorised over cells;
- `vargha_delaney_a12` / `cliffs_delta`: pingouin `compute_effsize(eftype="CLES")`, which counts
  by binary search. (pingouin's `mwu`, and `wilcoxon` given x and y, compute the same CLES from
  the m × n matrix of all differences: on one cell of bench/analysis.py's million records,
  11,111 examples a side, `mwu` took 17.9 s and 2.1 GB, `compute_effsize` 2 ms.)

Written here: `newcombe_paired_interval`, Newcombe's (1998) method 10 interval for a paired
difference of proportions (neither statsmodels nor pingouin implements it); and Holm's
adjustment, because statsmodels' is too slow here (`adjust` says why, with the figures).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# Magnitude thresholds: (upper bound of negligible, small, medium); at or above the last: large.
CLIFF_THRESHOLDS = (0.147, 0.33, 0.474)  # |delta| and |rank-biserial|: Romano et al. (2006)
A12_THRESHOLDS = (0.06, 0.14, 0.21)  # |A12 - 0.5|: Vargha & Delaney (2000)
COHEN_G_THRESHOLDS = (0.05, 0.15, 0.25)  # Cohen's g for McNemar: Cohen (1988)
COHEN_H_THRESHOLDS = (0.2, 0.5, 0.8)  # Cohen's h for two proportions: Cohen (1988)
KENDALL_W_THRESHOLDS = (0.1, 0.3, 0.5)  # Kendall's W: Cohen-style (rstatix friedman_effsize)
MAGNITUDES = ("negligible", "small", "medium", "large")
CORRECTIONS = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh"}  # ours -> statsmodels' name

# What a test is asked, and with what (each role's `run` signature).
ROLES = {
    "paired-binary": "a variant's 0/1 outcomes against the original's on the same examples: run(x, y, alpha)",
    "paired-continuous": "a variant's values against the original's on the same examples, and post-hoc pairs of "
                         "compression settings across cells: run(x, y, alpha)",
    "omnibus-binary": "all variants' 0/1 outcomes on the examples they all have: run(matrix examples × variants, alpha)",
    "omnibus-blocks": "compression settings (columns) ranked across cells (rows): run(matrix, alpha); "
                      "extra['mean_ranks'] feeds the ranking table and the critical-difference diagram",
}


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


@dataclass(frozen=True)
class StatTest:
    """A registered test: a module of `analysis/stats/procedures/` declares `TESTS = (StatTest(...),)`."""

    name: str  # the value of its role's option (`--paired-binary mcnemar-exact`)
    role: str  # one of ROLES
    title: str  # how captions and findings name it: "McNemar (mid-p)"
    description: str  # one line for `--help` and the docs table: what, effect size, library
    run: Callable[..., Test]  # see ROLES for the signature; degenerate input gives a Test with a note, never NaN


# ---------------------------------------------------------------- intervals for proportions
def wilson_interval(count, nobs, alpha: float = 0.05):
    """Wilson score interval for count/nobs (statsmodels), vectorised; (nan, nan) where nobs == 0."""
    from statsmodels.stats.proportion import proportion_confint

    count = np.asarray(count, dtype=np.float64)
    nobs = np.asarray(nobs, dtype=np.float64)
    empty = nobs <= 0
    low, high = proportion_confint(count, np.where(empty, 1.0, nobs), alpha=alpha, method="wilson")
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def newcombe_paired_interval(a: int, b: int, c: int, d: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe (1998) method 10 interval for p1 - p2 from a paired 2x2 table (no library has it).

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


# ---------------------------------------------------------------- unpaired stochastic superiority
def vargha_delaney_a12(x, y) -> float | None:
    """A12 = P(X > Y) + 0.5 P(X = Y) over all cross pairs (pingouin's CLES); None when a side is empty."""
    import pingouin as pg

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        return None
    return float(pg.compute_effsize(x, y, eftype="CLES"))


def cliffs_delta(x, y) -> float | None:
    """Cliff's delta = P(X > Y) - P(X < Y) over all cross pairs = 2·A12 - 1."""
    a12 = vargha_delaney_a12(x, y)
    return None if a12 is None else 2.0 * a12 - 1.0


# ---------------------------------------------------------------- multiplicity
def adjust(pvalues: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Adjusted p-values; None and NaN stay None and are not counted.

    Bonferroni and Benjamini-Hochberg are statsmodels' `multipletests`. Holm is the step-down
    max-accumulate written here: statsmodels' Holm calls `gc.collect()` on every call, which with
    the analysis' records in memory costs a full collection per family: on bench/analysis.py's
    data at 200,000 records, 153 ms each, 17.4 s of the 19.0 s every test took (0.7 s without
    it); at one million records the statistics step took 21.3 s instead of 3.2 s. Checked
    against statsmodels in `tests/test_analysis_stats.py`.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}: use one of {', '.join(CORRECTIONS)}")
    values = list(pvalues)
    index = [i for i, p in enumerate(values) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(values)
    if not index:
        return out
    p = np.array([values[i] for i in index], dtype=np.float64)
    if method == "holm":
        order = np.argsort(p, kind="stable")
        adjusted = np.empty(p.size)
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (p.size - np.arange(p.size))))
    else:
        from statsmodels.stats.multitest import multipletests

        adjusted = multipletests(p, method=CORRECTIONS[method])[1]
    for slot, value in zip(index, adjusted):
        out[slot] = float(value)
    return out
