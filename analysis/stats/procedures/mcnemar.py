"""McNemar's test of a variant's 0/1 outcomes (x) against the original's (y) on the same examples.

b counts pairs with x=1, y=0 and c pairs with x=0, y=1. The exact p is statsmodels
`mcnemar(exact=True)` (two-sided binomial test of b out of b+c at 1/2); the mid-p subtracts
P(X = min(b, c)) once (Fagerland, Lydersen & Laake 2013; scipy's binomial). Effect: the paired
difference in rates (b-c)/n with Newcombe's interval (`core.newcombe_paired_interval`), the
conditional odds ratio b/c with the exact (Clopper-Pearson, statsmodels) interval, Cohen's
g = |b/(b+c) - 1/2| (how one-sided the discordant pairs are), and for the magnitude Cohen's
h = 2·asin√rate_x - 2·asin√rate_y (statsmodels `proportion_effectsize`): g alone would call 2
discordant pairs out of 150 examples, both one way, "large" although the rates differ by 1.3
points; h sizes the difference the tables show.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.stats.core import COHEN_H_THRESHOLDS, StatTest, Test, magnitude, newcombe_paired_interval


def mcnemar(x, y, method: str = "midp", alpha: float = 0.05) -> Test:
    """McNemar's test of variant outcomes `x` against original outcomes `y` (0/1, same examples)."""
    from scipy import stats as sps
    from statsmodels.stats.contingency_tables import mcnemar as exact_mcnemar
    from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

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
    h = float(proportion_effectsize(rate_x, rate_y))
    extra: dict[str, Any] = {"b": b, "c": c, "rate_x": rate_x, "rate_y": rate_y, "cohen_h": h}
    if discordant == 0:
        return Test(name, n, statistic=0.0, p_raw=1.0, effect_name="difference in rates", effect=0.0,
                    effect_low=low, effect_high=high, magnitude=None, note="no discordant pairs",
                    extra=extra | {"odds_ratio": None, "odds_low": None, "odds_high": None, "cohen_g": None})
    if method == "exact":
        p = float(exact_mcnemar([[a, b], [c, d]], exact=True).pvalue)
    else:
        k = min(b, c)
        p = min(1.0, 2.0 * sps.binom.cdf(k, discordant, 0.5) - sps.binom.pmf(k, discordant, 0.5))
    # Exact (Clopper-Pearson) interval for b/(b+c), mapped to the odds b/c.
    pl, pu = proportion_confint(b, discordant, alpha=alpha, method="beta")
    extra |= {
        "odds_ratio": b / c if c else math.inf,
        "odds_low": pl / (1 - pl),
        "odds_high": pu / (1 - pu) if pu < 1 else math.inf,
        "cohen_g": abs(b / discordant - 0.5),
    }
    return Test(name, n, statistic=float(b), p_raw=float(p), effect_name="difference in rates",
                effect=(b - c) / n, effect_low=low, effect_high=high,
                magnitude=magnitude(h, COHEN_H_THRESHOLDS), extra=extra)


TESTS = (
    StatTest("mcnemar-midp", "paired-binary", "McNemar (mid-p)",
             "McNemar's test, mid-p (Fagerland et al. 2013); difference in rates with Newcombe's interval, odds ratio, "
             "Cohen's g and h (statsmodels, scipy)",
             lambda x, y, alpha: mcnemar(x, y, "midp", alpha)),
    StatTest("mcnemar-exact", "paired-binary", "McNemar (exact)",
             "McNemar's exact binomial test (statsmodels); effects as mcnemar-midp",
             lambda x, y, alpha: mcnemar(x, y, "exact", alpha)),
)
