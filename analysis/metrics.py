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

Intervals: with one seed, rates get Wilson intervals and means percentile-bootstrap intervals
over examples. With several seeds the records of one example are not independent (an example
robust under one seed tends to be robust under the others), so every interval of such a cell is
a percentile **cluster** bootstrap: examples are resampled with all their seeds' records, and
each resample's rate or mean is Σ numerator / Σ denominator over them. The `interval` column
says which (`wilson` or `cluster-bootstrap`).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from analysis.bootstrap import bootstrap_means, percentile_interval
from analysis.loading import Logs
from analysis.stats import wilson_interval

CELL = ["dataset", "task", "base_model", "model", "compression", "label", "attack"]
CHECKS = ("parses", "alpha_equivalent", "compiles", "tests_pass")
MEANS = {  # mean name: (record column, the records it is averaged over)
    "queries": ("queries", "attacked"),
    "wall_time_s": ("wall_time_s", "attacked"),
    "queries_success": ("queries", "success"),
    "identifier_change": ("identifier_change", "success"),
    "token_change": ("token_change", "success"),
}
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


def count_flags() -> dict[str, pl.Expr]:
    """Per-record true/false flags whose sums over a cell are its counts: the numerators and
    denominators of `RATES`, defined once for the Wilson and the cluster-bootstrap intervals."""
    success = pl.col("success")
    flags = {"examples": pl.col("ok"), "originally_correct": pl.col("originally_correct"),
             "attacked": pl.col("attacked"), "successes": success, "robust_correct": pl.col("robust"),
             "valid_successes": pl.col("valid_success")}
    for check in CHECKS:
        flags[f"{check}_true"] = success & pl.col(f"valid_{check}")
        flags[f"{check}_checked"] = success & pl.col(f"valid_{check}").is_not_null()
    return {name: flag.fill_null(False) for name, flag in flags.items()}


def cell_metrics(records: pl.DataFrame, resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> pl.DataFrame:
    """Aggregate prepared records into one row per cell (see module docstring for definitions)."""
    aggregations = [
        pl.len().alias("records"),
        (pl.col("status") == "error").sum().alias("errors"),
        *(flag.sum().alias(name) for name, flag in count_flags().items()),
        (pl.col("status") == "skipped_misclassified").sum().alias("skipped_misclassified"),
        (pl.col("status") == "skipped_no_identifiers").sum().alias("skipped_no_identifiers"),
        pl.col("truncated").fill_null(False).sum().alias("truncated"),  # records of programs past the model's window
        pl.col("seed").n_unique().alias("seeds"),
        pl.col("forward_passes").filter(pl.col("attacked")).mean().alias("queries_forward"),
        *(pl.col(column).filter(pl.col(subset)).mean().alias(name) for name, (column, subset) in MEANS.items()),
    ]
    table = records.group_by(CELL).agg(aggregations).sort(CELL, nulls_last=True)
    table = table.with_row_index("cell")
    for name, (num, den) in RATES.items():
        k, n = table[num].to_numpy(), table[den].to_numpy()
        low, high = wilson_interval(k, n, alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        table = table.with_columns(pl.Series(name, value).fill_nan(None), pl.Series(f"{name}_low", low).fill_nan(None),
                                   pl.Series(f"{name}_high", high).fill_nan(None))
    table = _with_bootstrap(table, records, resamples, seed, alpha)
    return _with_cluster_bootstrap(table, records, resamples, seed, alpha)


def _with_bootstrap(table: pl.DataFrame, records: pl.DataFrame, resamples: int, seed: int, alpha: float) -> pl.DataFrame:
    """Add `<mean>_low`/`<mean>_high` percentile-bootstrap intervals for the per-cell means."""
    keyed = records.join(table.select(*CELL, "cell"), on=CELL, how="left", nulls_equal=True)
    cells = table.height
    for subset in ("attacked", "success"):
        names = [name for name, (_, over) in MEANS.items() if over == subset]
        chosen = keyed.filter(pl.col(subset)).sort("cell").select(
            "cell", *(pl.col(MEANS[n][0]).cast(pl.Float64).alias(n) for n in names))
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


def _ratio_parts() -> dict[str, tuple[pl.Expr, pl.Expr]]:
    """Per-record numerator and denominator of every rate and mean of a cell (sums over a cell
    give the cell's value), for resampling whole examples."""
    flags = {name: flag.cast(pl.Float64) for name, flag in count_flags().items()}
    parts = {rate: (flags[num], flags[den]) for rate, (num, den) in RATES.items()}
    for name, (column, subset) in MEANS.items():
        value = pl.col(column).cast(pl.Float64)
        defined = (pl.col(subset) & value.is_not_null() & value.is_not_nan()).fill_null(False)
        parts[name] = (pl.when(defined).then(value).otherwise(0.0), defined.cast(pl.Float64))
    return parts


def _with_cluster_bootstrap(table: pl.DataFrame, records: pl.DataFrame, resamples: int, seed: int,
                            alpha: float) -> pl.DataFrame:
    """Replace the intervals of cells with several seeds by cluster-bootstrap ones (see the module
    docstring); add the `interval` column."""
    several = table.filter(pl.col("seeds") > 1)
    table = table.with_columns(pl.when(pl.col("seeds") > 1).then(pl.lit("cluster-bootstrap"))
                               .otherwise(pl.lit("wilson")).alias("interval"))
    if several.is_empty():
        return table
    parts = _ratio_parts()
    names = list(parts)
    units = (records.join(several.select(*CELL, "cell"), on=CELL, how="inner", nulls_equal=True)
             .group_by("cell", "example_id")
             .agg(*(expr.sum().alias(f"{name}{side}") for name, pair in parts.items()
                    for side, expr in zip(("_num", "_den"), pair)))
             .sort("cell", "example_id"))
    cells = table.height
    counts = np.bincount(units["cell"].to_numpy(), minlength=cells)
    starts = np.concatenate([[0], np.cumsum(counts)])
    columns = [f"{name}{side}" for name in names for side in ("_num", "_den")]
    low = np.full((cells, len(names)), np.nan)
    high = np.full((cells, len(names)), np.nan)
    if resamples > 0:
        means = bootstrap_means(units.select(columns).to_numpy(), starts, resamples, seed)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(means[:, 1::2] > 0, means[:, 0::2] / means[:, 1::2], np.nan)
        low, high = percentile_interval(ratios, alpha)
    chosen = np.isin(np.arange(cells), several["cell"].to_numpy())
    updates = []
    for i, name in enumerate(names):
        for suffix, bound in (("_low", low[:, i]), ("_high", high[:, i])):
            column = f"{name}{suffix}"
            updates.append(pl.Series(column, np.where(chosen, bound, table[column].cast(pl.Float64).fill_null(np.nan).to_numpy()))
                           .fill_nan(None))
    return table.with_columns(updates)
