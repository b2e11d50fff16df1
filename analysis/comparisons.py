"""Paired comparisons of compressed variants with their original, and of compression methods across cells.

Unit of pairing: the example. Several seeds of one example are first reduced to one value per
example (means; binary outcomes by majority, where a tie counts as a success of the attack,
i.e. not robust). Then, for each (dataset, task, base model, attack) *group*:

- binary outcomes (robust-correct on every example both variants have; attack success on the
  examples both attacked): the omnibus-binary test (Cochran's Q) across all variants on the
  examples all of them share, then the paired-binary test (McNemar) of each variant against
  the original;
- continuous outcomes on the examples where both have a value (queries and probability drop:
  both attacked; change rates: both successful): the paired-continuous test (Wilcoxon
  signed-rank with rank-biserial, plus Cliff's delta and A12).

Across groups (blocks), the compression settings (treatments) are compared on ASR and robust
accuracy with the omnibus-blocks test (Friedman + Kendall's W) and all-pairs post-hoc tests
(the paired-continuous test). Which test fills each role: `analysis.stats.chosen` (defaults in
parentheses; `--<role> NAME` on the command line).

Corrections apply within a *family* (`family_scheme`): "cell" (default) makes the k-1
comparisons of one outcome in one group a family, and each omnibus test kind one family across
groups; "outcome" pools all groups for an outcome; "all" makes one family of everything.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from analysis import stats as st

GROUP = ["dataset", "task", "base_model", "attack"]
BINARY = {"robust-correct": "robust_bin", "attack success": "success_bin"}
CONTINUOUS = {
    "queries": "queries",
    "identifier change rate": "identifier_change",
    "token change rate": "token_change",
    "probability drop": "probability_drop",
}
ACROSS = {"ASR": ("asr", "min"), "robust accuracy": ("robust_accuracy", "max")}
FAMILY_SCHEMES = ("cell", "outcome", "all")


@dataclass
class Ranking:
    """The omnibus-blocks test (Friedman) across cells for one outcome: mean ranks (1 = best) and post-hoc adjusted p."""

    outcome: str
    treatments: list[str]
    mean_ranks: list[float]
    blocks: int
    better: str  # "lower" or "higher" values are better
    pairwise: dict[tuple[str, str], float | None] = field(default_factory=dict)


@dataclass
class Comparisons:
    rows: list[dict[str, Any]]
    rankings: list[Ranking]
    correction: str
    family_scheme: str
    tests: dict[str, st.StatTest]  # role -> the test that filled it
    alpha: float

    def title(self, role: str) -> str:
        """How captions name the test of `role`: "McNemar (mid-p)"."""
        return self.tests[role].title


def per_example(records: pl.DataFrame) -> pl.DataFrame:
    """One row per (group, variant label, example): seed-reduced outcomes."""
    ok = pl.col("ok")
    attacked = pl.col("attacked")
    success = pl.col("success")
    records = records.filter(pl.col("base_model").is_not_null())
    if records["seed"].n_unique() <= 1:  # one record per example already: no reduction needed
        table = records.select(
            *GROUP, "label", "example_id",
            pl.when(ok).then(pl.col("robust").cast(pl.Float64)).alias("robust_frac"),
            pl.when(attacked).then(success.cast(pl.Float64)).alias("success_frac"),
            pl.when(attacked).then(pl.col("queries").cast(pl.Float64)).alias("queries"),
            pl.when(success).then(pl.col("identifier_change")).alias("identifier_change"),
            pl.when(success).then(pl.col("token_change")).alias("token_change"),
            pl.when(attacked).then(pl.col("probability_drop")).alias("probability_drop"))
        return table.with_columns((pl.col("robust_frac") > 0.5).alias("robust_bin"),
                                  (pl.col("success_frac") >= 0.5).alias("success_bin"))
    table = (records
             .group_by([*GROUP, "label", "example_id"])
             .agg(pl.col("robust").filter(ok).mean().alias("robust_frac"),
                  pl.col("success").filter(attacked).mean().alias("success_frac"),
                  pl.col("queries").filter(attacked).mean().alias("queries"),
                  pl.col("identifier_change").filter(success).mean(),
                  pl.col("token_change").filter(success).mean(),
                  pl.col("probability_drop").filter(attacked).mean()))
    return table.with_columns((pl.col("robust_frac") > 0.5).alias("robust_bin"),
                              (pl.col("success_frac") >= 0.5).alias("success_bin"))


def _matrices(frame: pl.DataFrame, labels: list[str]) -> dict[str, np.ndarray]:
    """Outcome column -> array (variants x examples) of one group, NaN where a variant has no value."""
    frame = frame.with_columns(
        (pl.col("example_id").rank("dense") - 1).cast(pl.Int64).alias("_ex"),
        pl.col("label").replace_strict(labels, list(range(len(labels))), default=-1, return_dtype=pl.Int64).alias("_lab"),
    ).filter(pl.col("_lab") >= 0)
    examples = int(frame["_ex"].max() or 0) + 1 if frame.height else 0
    rows, cols = frame["_lab"].to_numpy(), frame["_ex"].to_numpy()
    out = {}
    for column in [*BINARY.values(), *CONTINUOUS.values()]:
        matrix = np.full((len(labels), examples), np.nan)
        matrix[rows, cols] = frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        out[column] = matrix
    return out


def compare(records: pl.DataFrame, variants: pl.DataFrame, metrics: pl.DataFrame, *, correction: str = "holm",
            family_scheme: str = "cell", tests: dict[str, str] | None = None, alpha: float = 0.05) -> Comparisons:
    """Every paired test of the study, corrected per family; `tests` (role -> name) overrides the defaults."""
    if family_scheme not in FAMILY_SCHEMES:
        raise ValueError(f"unknown family scheme {family_scheme!r}: use one of {', '.join(FAMILY_SCHEMES)}")
    chosen = st.chosen(tests)
    examples = per_example(records)
    rows: list[dict[str, Any]] = []
    originals = {(r["dataset"], r["task"], r["model"]): r["label"] for r in variants.filter(pl.col("is_original")).iter_rows(named=True)}
    parts = examples.partition_by(GROUP, as_dict=True)
    for key in sorted(parts, key=lambda k: tuple(str(v) for v in k)):
        group = dict(zip(GROUP, key))
        frame = parts[key]
        labels = [lab for lab in variants.filter((pl.col("dataset") == group["dataset"]) & (pl.col("task") == group["task"])
                                                 & (pl.col("base_model") == group["base_model"]))["label"].to_list()]
        original_label = originals.get((group["dataset"], group["task"], group["base_model"]))
        present = set(frame["label"].unique().to_list())
        matrices = _matrices(frame, labels)
        compared = [lab for lab in labels if lab != original_label]
        for outcome, column in BINARY.items():
            rows.append(_omnibus(group, outcome, matrices[column], labels, present, chosen["omnibus-binary"], alpha))
            for label in compared:
                rows.append(_pairwise(group, outcome, matrices[column], labels, present, original_label, label,
                                      chosen["paired-binary"], alpha))
        for outcome, column in CONTINUOUS.items():
            for label in compared:
                rows.append(_pairwise(group, outcome, matrices[column], labels, present, original_label, label,
                                      chosen["paired-continuous"], alpha))
    rankings = []
    for outcome, (column, better) in ACROSS.items():
        ranking, across_rows = _across(metrics, outcome, column, better, chosen, alpha)
        rankings.append(ranking)
        rows += across_rows
    _assign_families(rows, family_scheme)
    _correct(rows, correction)
    for ranking in rankings:
        ranking.pairwise = {(r["treatment_x"], r["treatment_y"]): r["p_adj"] for r in rows
                            if r["kind"] == "post-hoc" and r["outcome"] == ranking.outcome}
    return Comparisons(rows, rankings, correction, family_scheme, chosen, alpha)


def _row(group: dict[str, Any], outcome: str, kind: str, comparison: str, test: st.Test) -> dict[str, Any]:
    return {**{k: group.get(k) for k in GROUP}, "outcome": outcome, "kind": kind, "comparison": comparison,
            **test.as_dict()}


def _omnibus(group, outcome, matrix, labels, present, omnibus: st.StatTest, alpha) -> dict[str, Any]:
    keep = [i for i, lab in enumerate(labels) if lab in present]
    if len(keep) < 2:
        test = st.Test(omnibus.title, 0, note="fewer than 2 variants with records")
    else:
        sub = matrix[keep]
        test = omnibus.run(sub[:, ~np.isnan(sub).any(axis=0)].T, alpha)
        if len(keep) < len(labels):
            missing = sorted(set(labels) - set(present))
            test.note = "; ".join(filter(None, [test.note, f"variants without records left out: {missing}"]))
    return _row(group, outcome, "omnibus", f"all {len(keep)} variants", test)


def _pairwise(group, outcome, matrix, labels, present, original_label, label, paired: st.StatTest, alpha) -> dict[str, Any]:
    comparison = f"{label} vs {original_label}"
    if original_label not in present:
        test = st.Test(paired.title, 0, note="original missing")
    elif label not in present:
        test = st.Test(paired.title, 0, note="variant missing")
    else:
        x, y = matrix[labels.index(label)], matrix[labels.index(original_label)]
        both = ~np.isnan(x) & ~np.isnan(y)
        test = paired.run(x[both], y[both], alpha)
    row = _row(group, outcome, "vs original", comparison, test)
    row["variant"] = label
    return row


def _across(metrics: pl.DataFrame, outcome: str, column: str, better: str, chosen: dict[str, st.StatTest],
            alpha: float) -> tuple[Ranking, list[dict[str, Any]]]:
    blocks = GROUP
    usable = metrics.filter(pl.col("base_model").is_not_null() & pl.col(column).is_not_null())
    wide = usable.pivot(on="label", index=blocks, values=column, aggregate_function="first") if usable.height else pl.DataFrame()
    treatments = [c for c in wide.columns if c not in blocks]
    treatments = [t for t in treatments if wide[t].is_not_null().sum() >= 2]
    complete = wide.select(*blocks, *treatments).drop_nulls() if treatments else wide
    matrix = complete.select(treatments).to_numpy() if treatments else np.empty((0, 0))
    # Rank 1 = best: negate when higher is better.
    score = -matrix if better == "max" else matrix
    blocks_test, post_hoc = chosen["omnibus-blocks"], chosen["paired-continuous"]
    test = blocks_test.run(score, alpha) if treatments else st.Test(blocks_test.title, 0, note="no treatments")
    ranks = test.extra.get("mean_ranks") or ([float("nan")] * len(treatments))
    group = {"dataset": "all", "task": "all", "base_model": "all", "attack": "all"}
    rows = [_row(group, outcome, "across cells", f"{len(treatments)} compression settings over {complete.height} cells", test)]
    for a, b in itertools.combinations(range(len(treatments)), 2):
        pair = (post_hoc.run(matrix[:, a], matrix[:, b], alpha) if matrix.shape[0]
                else st.Test(post_hoc.title, 0, note="no complete cells"))
        row = _row(group, outcome, "post-hoc", f"{treatments[a]} vs {treatments[b]}", pair)
        row["treatment_x"], row["treatment_y"] = treatments[a], treatments[b]
        rows.append(row)
    ranking = Ranking(outcome, treatments, [float(r) for r in ranks], complete.height, "lower" if better == "min" else "higher")
    return ranking, rows


def _assign_families(rows: list[dict[str, Any]], scheme: str) -> None:
    for row in rows:
        if scheme == "all":
            row["family"] = "all tests"
        elif row["kind"] == "vs original":
            cell = "/".join(str(row[k]) for k in GROUP)
            row["family"] = f"{row['outcome']} vs original" + (f" | {cell}" if scheme == "cell" else "")
        elif row["kind"] == "omnibus":
            row["family"] = f"{row['test']} | {row['outcome']}"
        elif row["kind"] == "across cells":
            row["family"] = f"{row['test']} across cells"
        else:
            row["family"] = f"post-hoc {row['test']} | {row['outcome']}"


def _correct(rows: list[dict[str, Any]], correction: str) -> None:
    families: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        families.setdefault(row["family"], []).append(i)
    for members in families.values():
        adjusted = st.adjust([rows[i]["p_raw"] for i in members], correction)
        for i, value in zip(members, adjusted):
            rows[i]["p_adj"] = value
            rows[i]["correction"] = correction
            rows[i]["family_size"] = sum(1 for j in members if rows[j]["p_raw"] is not None)


def significance(p: float | None) -> str:
    """Stars for an adjusted p-value: * < .05, ** < .01, *** < .001."""
    if p is None or not math.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
