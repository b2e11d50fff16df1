"""Per-cell metrics: one row per (dataset, task, base model, variant, attack), with denominators.

Definitions (docs/metrics.md has the full text; every rate keeps its numerator and denominator):

- examples: records whose status is not `error` (errors are counted separately in `errors`);
  with several seeds every (example, seed) record counts.
- attacked: status `success` or `failed` (originally correct, at least one renameable identifier).
- ASR = successes / attacked.
- robust accuracy = robust-correct / examples, where `failed` counts as correct, `success` and
  `skipped_misclassified` as incorrect, and `skipped_no_identifiers` as correct when the
  original prediction equals the true label.
- valid ASR = valid successes / attacked; a success is valid unless a check says otherwise:
  `valid_parses`, `valid_compiles`, `valid_tests_pass` not false, and `valid_alpha_equivalent`
  not false or `structure_edits > 0`. Null (unknown) checks do not disqualify.
- queries: mean over attacked, and separately over successes; runtime: mean wall time over attacked.
- identifier / token change rate: per example identifiers_changed / identifiers (tokens_changed
  / tokens), averaged over successes (examples with a zero denominator are left out).
- validity rates: per check, true / (successes where the check ran).

Rates get Wilson intervals; means get percentile-bootstrap intervals over examples.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from analysis.bootstrap import bootstrap_means, percentile_interval
from analysis.loading import Logs
from analysis.stats import wilson_interval

CELL = ["dataset", "task", "base_model", "model", "compression", "label", "attack"]
CHECKS = ("parses", "alpha_equivalent", "compiles", "tests_pass")
ATTACKED_MEANS = ("queries", "wall_time_s")
SUCCESS_MEANS = ("queries_success", "identifier_change", "token_change")
RATES = {  # rate name: (numerator, denominator)
    "asr": ("successes", "attacked"),
    "robust_accuracy": ("robust_correct", "examples"),
    "clean_accuracy_records": ("originally_correct", "examples"),
    "valid_asr": ("valid_successes", "attacked"),
    **{f"valid_{c}": (f"{c}_true", f"{c}_checked") for c in CHECKS},
}


def outcome_columns() -> list[pl.Expr]:
    """Per-record outcome flags and per-example quantities that metrics and statistics share."""
    status = pl.col("status")
    correct = (pl.col("original_prediction") == pl.col("true_label")).fill_null(False)
    success = status == "success"
    not_false = lambda name: pl.col(name).fill_null(True)  # noqa: E731 - null (unknown) never disqualifies
    alpha_ok = not_false("valid_alpha_equivalent") | (pl.col("structure_edits").fill_null(0) > 0)
    valid = success & not_false("valid_parses") & alpha_ok & not_false("valid_compiles") & not_false("valid_tests_pass")
    rate = lambda num, den: pl.when(success & (pl.col(den) > 0)).then(pl.col(num) / pl.col(den))  # noqa: E731
    return [
        (status != "error").alias("ok"),
        (correct & (status != "error")).alias("originally_correct"),
        status.is_in(["success", "failed"]).alias("attacked"),
        success.alias("success"),
        ((status == "failed") | ((status == "skipped_no_identifiers") & correct)).alias("robust"),
        valid.alias("valid_success"),
        rate("identifiers_changed", "identifiers").alias("identifier_change"),
        rate("tokens_changed", "tokens").alias("token_change"),
        (pl.col("original_probability") - pl.col("adversarial_probability")).alias("probability_drop"),
    ]


def prepare(logs: Logs, variants: pl.DataFrame) -> pl.DataFrame:
    """Records with the variant's label and base model attached, plus the outcome columns."""
    info = variants.select("dataset", "task", "model", "compression", "label", "base_model")
    return logs.records.join(info, on=["dataset", "task", "model", "compression"], how="left").with_columns(outcome_columns())


def cell_metrics(records: pl.DataFrame, resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> pl.DataFrame:
    """Aggregate prepared records into one row per cell (see module docstring for definitions)."""
    attacked = pl.col("attacked")
    success = pl.col("success")
    aggregations = [
        pl.len().alias("records"),
        (pl.col("status") == "error").sum().alias("errors"),
        pl.col("ok").sum().alias("examples"),
        pl.col("originally_correct").sum().alias("originally_correct"),
        attacked.sum().alias("attacked"),
        success.sum().alias("successes"),
        pl.col("robust").sum().alias("robust_correct"),
        pl.col("valid_success").sum().alias("valid_successes"),
        (pl.col("status") == "skipped_misclassified").sum().alias("skipped_misclassified"),
        (pl.col("status") == "skipped_no_identifiers").sum().alias("skipped_no_identifiers"),
        pl.col("seed").n_unique().alias("seeds"),
        pl.col("queries").filter(attacked).mean().alias("queries"),
        pl.col("forward_passes").filter(attacked).mean().alias("queries_forward"),
        pl.col("queries").filter(success).mean().alias("queries_success"),
        pl.col("wall_time_s").filter(attacked).mean().alias("wall_time_s"),
        pl.col("identifier_change").mean().alias("identifier_change"),
        pl.col("token_change").mean().alias("token_change"),
    ]
    for check in CHECKS:
        column = pl.col(f"valid_{check}").filter(success)
        aggregations += [column.sum().alias(f"{check}_true"), column.is_not_null().sum().alias(f"{check}_checked")]
    table = records.group_by(CELL).agg(aggregations).sort(CELL, nulls_last=True)
    table = table.with_row_index("cell")
    for name, (num, den) in RATES.items():
        k, n = table[num].to_numpy(), table[den].to_numpy()
        low, high = wilson_interval(k, n, alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        table = table.with_columns(pl.Series(name, value).fill_nan(None), pl.Series(f"{name}_low", low).fill_nan(None),
                                   pl.Series(f"{name}_high", high).fill_nan(None))
    return _with_bootstrap(table, records, resamples, seed, alpha)


def _with_bootstrap(table: pl.DataFrame, records: pl.DataFrame, resamples: int, seed: int, alpha: float) -> pl.DataFrame:
    """Add `<mean>_low`/`<mean>_high` percentile-bootstrap intervals for the per-cell means."""
    keyed = records.join(table.select(*CELL, "cell"), on=CELL, how="left", nulls_equal=True)
    cells = table.height
    for subset, names in (("attacked", ATTACKED_MEANS), ("success", SUCCESS_MEANS)):
        source = {"queries_success": "queries"}
        chosen = keyed.filter(pl.col(subset)).sort("cell").select(
            "cell", *(pl.col(source.get(n, n)).cast(pl.Float64).alias(n) for n in names))
        counts = np.bincount(chosen["cell"].to_numpy(), minlength=cells)
        starts = np.concatenate([[0], np.cumsum(counts)])
        values = chosen.select(names).to_numpy()
        if resamples > 0:
            means = bootstrap_means(values, starts, resamples, seed)
            low, high = percentile_interval(means, alpha)
        else:
            low = high = np.full((cells, len(names)), np.nan)
        table = table.with_columns(
            *(pl.Series(f"{n}_low", low[:, i]).fill_nan(None) for i, n in enumerate(names)),
            *(pl.Series(f"{n}_high", high[:, i]).fill_nan(None) for i, n in enumerate(names)),
        )
    return table
