"""Friedman test across blocks (rows: cells) of treatments (columns: compression settings).

pingouin `friedman` (tie-corrected chi-square, as scipy's `friedmanchisquare`) with Kendall's
W = Q / (n(k-1)) as the effect, from 3 blocks on (pingouin's minimum; fewer get a note and
their mean ranks only); the mean rank of each treatment (scipy `rankdata` within each
block, 1 = lowest) feeds the ranking table and the critical-difference diagram.
"""
from __future__ import annotations

import numpy as np

from analysis.stats.core import KENDALL_W_THRESHOLDS, StatTest, Test, magnitude


def friedman(matrix, alpha: float = 0.05) -> Test:
    """Friedman test with Kendall's W; rows = blocks, columns = treatments."""
    import pandas as pd
    import pingouin as pg
    from scipy import stats as sps

    m = np.asarray(matrix, dtype=np.float64)
    name = "Friedman"
    if m.ndim != 2 or m.shape[1] < 2:
        return Test(name, int(m.shape[0]) if m.ndim == 2 else 0, note="fewer than 2 treatments")
    n, k = m.shape
    if n < 1:
        return Test(name, n, note=f"too few blocks ({n})")
    ranks = sps.rankdata(m, axis=1)
    mean_ranks = ranks.mean(axis=0).tolist()
    if n < 3:  # pingouin refuses fewer than 3 blocks; a chi-square on 1 or 2 blocks would say nothing anyway
        return Test(name, n, note=f"too few blocks ({n})", extra={"k": k, "mean_ranks": mean_ranks})
    if np.all(ranks == (k + 1) / 2):  # every block ties all its treatments: the statistic is 0/0
        return Test(name, n, note="no variation (every block tied)", extra={"k": k, "mean_ranks": mean_ranks})
    result = pg.friedman(pd.DataFrame(m, columns=[f"t{j}" for j in range(k)])).iloc[0]
    w = float(result["W"])
    return Test(name, n, statistic=float(result["Q"]), p_raw=float(result["p_unc"]), effect_name="Kendall's W",
                effect=w, magnitude=magnitude(w, KENDALL_W_THRESHOLDS),
                extra={"k": k, "df": k - 1, "mean_ranks": mean_ranks})


TESTS = (
    StatTest("friedman", "omnibus-blocks", "Friedman",
             "Friedman's tie-corrected chi-square (pingouin); Kendall's W; mean ranks", friedman),
)
