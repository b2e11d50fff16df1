"""Statistical tests and effect sizes on plain NumPy arrays (no data frames in, no I/O), and their registry.

Each test returns a `Test`: the test name, n, statistic, p-value, effect size with its interval
and magnitude, and a `note` that labels degenerate inputs (no discordant pairs, all ties, too
few pairs) instead of producing NaN or raising. The libraries compute (statsmodels, pingouin,
scipy); `core` says where and why a formula is written here instead. Checked against the
libraries and by hand in `tests/test_analysis_stats.py`; conventions in docs/metrics.md.

The registry: every module of `analysis/stats/procedures/` declares `TESTS = (StatTest(...),)`
and `TESTS` below collects them. A test fills one of the `ROLES` the comparisons need (paired
binary, paired continuous, omnibus binary, omnibus over blocks); `DEFAULTS` says which test
fills each role unless `analysis report|stats --<role> NAME` chooses another, and the option's
choices, the captions (by the test's `title`) and the docs table all read the registry.
"""
from __future__ import annotations

from engine.common.discovery import discover

from analysis.stats.core import (A12_THRESHOLDS, CLIFF_THRESHOLDS, COHEN_G_THRESHOLDS, COHEN_H_THRESHOLDS,
                                 CORRECTIONS, KENDALL_W_THRESHOLDS, MAGNITUDES, ROLES, StatTest, Test, adjust,
                                 cliffs_delta, magnitude, newcombe_paired_interval, vargha_delaney_a12, wilson_interval)
from analysis.stats.procedures.cochran import cochran_q
from analysis.stats.procedures.friedman import friedman
from analysis.stats.procedures.mcnemar import mcnemar
from analysis.stats.procedures.wilcoxon import wilcoxon

TESTS: dict[str, StatTest] = discover("analysis.stats.procedures", "TESTS")
DEFAULTS = {"paired-binary": "mcnemar-midp", "paired-continuous": "wilcoxon", "omnibus-binary": "cochran",
            "omnibus-blocks": "friedman"}


def choices(role: str) -> list[str]:
    """The registered tests that can fill `role`."""
    return [name for name, test in TESTS.items() if test.role == role]


def chosen(overrides: dict[str, str] | None = None) -> dict[str, StatTest]:
    """Role -> the test filling it: `DEFAULTS`, then `overrides` (role -> test name), checked."""
    picked = DEFAULTS | {role: name for role, name in (overrides or {}).items() if name is not None}
    unknown = sorted(set(picked) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown test role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    tests = {}
    for role, name in picked.items():
        if name not in TESTS or TESTS[name].role != role:
            raise ValueError(f"{name!r} is not a {role} test; choose one of {', '.join(choices(role))}")
        tests[role] = TESTS[name]
    return tests


__all__ = ["A12_THRESHOLDS", "CLIFF_THRESHOLDS", "COHEN_G_THRESHOLDS", "COHEN_H_THRESHOLDS", "CORRECTIONS", "DEFAULTS",
           "KENDALL_W_THRESHOLDS", "MAGNITUDES", "ROLES", "TESTS", "StatTest", "Test", "adjust", "choices", "chosen",
           "cliffs_delta", "cochran_q", "friedman", "magnitude", "mcnemar", "newcombe_paired_interval",
           "vargha_delaney_a12", "wilcoxon", "wilson_interval"]
