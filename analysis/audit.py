"""Semantic-validity audit: are the successful adversarial examples still valid, equivalent code?

Per attack and model variant, over successful attacks: the share that re-parses cleanly, is
alpha-equivalent to the original, compiles (where a compiler ran) and passes its tests (where the
dataset has tests); each share is over the successes where that check ran, the unknown ones are
counted separately. Failures are broken down by the reason category the engine logged (the text
before the first ':' of each `validity_reasons` entry), and the worst examples (most failed
checks) are listed with their reasons.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analysis.metrics import CHECKS
from analysis.stats import wilson_interval

AUDIT_KEY = ["dataset", "task", "attack", "model", "label"]


@dataclass
class Audit:
    checks: pl.DataFrame  # one row per AUDIT_KEY
    reasons: pl.DataFrame  # AUDIT_KEY + category, count, example reason
    worst: pl.DataFrame  # the worst examples


def audit(records: pl.DataFrame, worst: int = 10) -> Audit:
    successes = records.filter(pl.col("success"))
    failed_checks = pl.sum_horizontal(*((pl.col(f"valid_{c}") == False).fill_null(False).cast(pl.Int32) for c in CHECKS))  # noqa: E712
    aggregations = [pl.len().alias("successes"), pl.col("valid_success").sum().alias("valid")]
    for check in CHECKS:
        column = pl.col(f"valid_{check}")
        aggregations += [column.sum().alias(f"{check}_true"), column.is_not_null().sum().alias(f"{check}_checked"),
                         column.is_null().sum().alias(f"{check}_unknown")]
    checks = successes.group_by(AUDIT_KEY).agg(aggregations).sort(AUDIT_KEY)
    for check in CHECKS:
        k, n = checks[f"{check}_true"].to_numpy(), checks[f"{check}_checked"].to_numpy()
        low, high = wilson_interval(k, n)
        checks = checks.with_columns(
            pl.when(pl.col(f"{check}_checked") > 0).then(pl.col(f"{check}_true") / pl.col(f"{check}_checked")).alias(f"{check}_rate"),
            pl.Series(f"{check}_low", low).fill_nan(None), pl.Series(f"{check}_high", high).fill_nan(None))
    checks = checks.with_columns((pl.col("valid") / pl.col("successes")).alias("valid_rate"))
    reasons = (successes.select(*AUDIT_KEY, pl.col("validity_reasons").alias("reason"))
               .explode("reason").drop_nulls("reason")
               .with_columns(pl.col("reason").str.split(":").list.first().str.strip_chars().alias("category"))
               .group_by([*AUDIT_KEY, "category"])
               .agg(pl.len().alias("count"), pl.col("reason").first().alias("example"))
               .sort([*AUDIT_KEY, "count"], descending=[False] * len(AUDIT_KEY) + [True]))
    worst_rows = (successes.with_columns(failed_checks.alias("failed_checks"))
                  .filter(pl.col("failed_checks") > 0)
                  .sort(["failed_checks", "example_id"], descending=[True, False])
                  .head(worst)
                  .select(*AUDIT_KEY, "example_id", "failed_checks", *(f"valid_{c}" for c in CHECKS),
                          "structure_edits", "validity_reasons", "path", "seed"))
    return Audit(checks, reasons, worst_rows)
