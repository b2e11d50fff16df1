"""Cochran's Q over k related 0/1 samples (rows = examples, columns = variants): statsmodels
`cochrans_q`, with eta²_Q = Q / (n (k-1)) (Serlin et al. 1982) as the effect, in [0, 1]."""
from __future__ import annotations

import numpy as np

from analysis.stats.core import KENDALL_W_THRESHOLDS, StatTest, Test, magnitude


def cochran_q(matrix, alpha: float = 0.05) -> Test:
    """Cochran's Q; degenerate tables (no variant pair, no example, no variation) get a note, not NaN."""
    from statsmodels.stats.contingency_tables import cochrans_q

    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        return Test("Cochran's Q", int(m.shape[0]) if m.ndim == 2 else 0, note="fewer than 2 variants")
    n, k = m.shape
    if n == 0:
        return Test("Cochran's Q", 0, note="no examples common to all variants")
    rows = m.sum(axis=1)
    if k * rows.sum() - np.sum(rows * rows) == 0:  # Q's denominator: every example alike under all variants
        return Test("Cochran's Q", n, note="no variation (every example has the same outcome under all variants)")
    result = cochrans_q(m)
    q = float(result.statistic)
    eta = q / (n * (k - 1))
    return Test("Cochran's Q", n, statistic=q, p_raw=float(result.pvalue), effect_name="eta2_Q", effect=eta,
                magnitude=magnitude(eta, KENDALL_W_THRESHOLDS), extra={"df": k - 1, "k": k})


TESTS = (
    StatTest("cochran", "omnibus-binary", "Cochran's Q",
             "Cochran's Q over all variants (statsmodels); eta²_Q = Q / (n(k−1))", cochran_q),
)
