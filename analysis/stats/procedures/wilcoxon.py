"""Wilcoxon signed-rank test of x against y (paired), with Kerby's matched-pairs rank-biserial.

pingouin `wilcoxon` on the differences x - y rounded to 10 decimals (so that differences equal
in theory tie in floating point, scipy's advice), with scipy's `zero_method="wilcox"` (zero
differences dropped) and `method="auto"`, without pingouin's default continuity correction, so
the p-value is scipy's. The effect is pingouin's RBC, (R+ - R-)/(R+ + R-) over the non-zero
differences: positive means x tends to be larger. Given the differences, pingouin skips its
CLES, which would build the n × n matrix of differences; Cliff's delta and Vargha-Delaney A12,
which treat x and y as two samples (`core.cliffs_delta`), are reported beside it as a
descriptive stochastic superiority.
"""
from __future__ import annotations

import numpy as np

from analysis.stats.core import A12_THRESHOLDS, CLIFF_THRESHOLDS, StatTest, Test, magnitude, vargha_delaney_a12


def wilcoxon(x, y, alpha: float = 0.05) -> Test:
    """Wilcoxon signed-rank test of x against y (paired), with rank-biserial, delta and A12."""
    import pingouin as pg

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
    d = np.round(x - y, 10)
    nonzero = int(np.count_nonzero(d))
    extra["nonzero_pairs"] = nonzero
    if nonzero == 0:
        return Test(name, n, effect_name="rank-biserial", effect=0.0, note="all differences zero", extra=extra)
    result = pg.wilcoxon(d, correction=False, zero_method="wilcox", method="auto").iloc[0]
    rbc = float(result["RBC"])
    # With 5 or fewer non-zero pairs the smallest two-sided p is 2/2^5 = 0.0625: say so.
    note = f"under-powered: {nonzero} non-zero pairs cannot reach p < 0.05" if nonzero <= 5 else None
    return Test(name, n, statistic=float(result["W_val"]), p_raw=float(result["p_val"]),
                effect_name="rank-biserial", effect=rbc, magnitude=magnitude(rbc, CLIFF_THRESHOLDS),
                note=note, extra=extra)


TESTS = (
    StatTest("wilcoxon", "paired-continuous", "Wilcoxon signed-rank",
             "Wilcoxon signed-rank (pingouin, scipy's p); matched-pairs rank-biserial; Cliff's δ and Â12 beside it",
             wilcoxon),
)
