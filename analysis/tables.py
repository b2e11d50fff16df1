"""Row models of every report table, shared by the LaTeX, HTML, CSV and Markdown renderers.

A `Table` holds plain-text cells (escaping is the renderer's job), a bold flag for the best value
of a column within a row group, and a significance marker. Captions carry the definitions,
denominators, marker and magnitude conventions so that a table read alone is unambiguous.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analysis import stats as st
from analysis.comparisons import Comparisons, significance
from analysis.metrics import CHECKS

NA = "n/a"  # a value nobody recorded (e.g. a manifest key)
UNDEFINED = "–"  # a value with an empty denominator


@dataclass
class Column:
    key: str
    header: str
    align: str = "r"
    best: str | None = None  # "min" or "max": bold the best value of each row group


@dataclass
class Cell:
    text: str
    bold: bool = False
    marker: str = ""


@dataclass
class Table:
    name: str
    title: str
    caption: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    rules: list[bool] = field(default_factory=list)  # a rule above this row (a new group starts)
    long: bool = False


def fmt(value: Any, digits: int = 2, missing: str = UNDEFINED, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        if isinstance(value, float) and math.isinf(value):
            return "inf"
        return missing
    if isinstance(value, int) and scale == 1.0:
        return f"{value:,}"
    return f"{value * scale:,.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return UNDEFINED
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_interval(low: Any, high: Any, digits: int = 1, scale: float = 1.0) -> str:
    if low is None or high is None:
        return UNDEFINED
    return f"[{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def _build(name: str, title: str, caption: str, columns: list[Column], records: list[dict[str, Any]],
           group: list[str], long: bool = False) -> Table:
    """Cells from `records` (each: column key -> (text, numeric value or None, marker))."""
    table = Table(name, title, caption, columns, long=long)
    previous = None
    groups: dict[tuple, list[int]] = {}
    for i, record in enumerate(records):
        key = tuple(record.get(g) for g in group)
        table.rules.append(previous is not None and key != previous)
        previous = key
        groups.setdefault(key, []).append(i)
        table.rows.append([Cell(record[c.key][0], marker=record[c.key][2] if len(record[c.key]) > 2 else "")
                           for c in columns])
    for members in groups.values():
        for j, column in enumerate(columns):
            if column.best is None:
                continue
            values = [(records[i][column.key][1], i) for i in members if records[i][column.key][1] is not None]
            if len(values) < 2:
                continue
            target = (min if column.best == "min" else max)(v for v, _ in values)
            for v, i in values:
                if math.isclose(v, target, rel_tol=1e-12, abs_tol=1e-12):
                    table.rows[i][j].bold = True
    return table


def _text(value: Any, digits: int = 2, missing: str = UNDEFINED, scale: float = 1.0, marker: str = ""):
    number = None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value) * scale
    return (fmt(value, digits, missing, scale), number, marker)


def clean_table(variants: pl.DataFrame) -> Table:
    columns = [Column("dataset", "Dataset", "l"), Column("model", "Model", "l"), Column("label", "Compression", "l"),
               Column("accuracy", "Acc. (%)", best="max"), Column("precision", "Prec. (%)", best="max"),
               Column("recall", "Rec. (%)", best="max"), Column("f1", "F1 (%)", best="max"),
               Column("size_mb", "Size (MB)", best="min"), Column("parameters", "Params (M)"),
               Column("nonzero_parameters", "Non-zero (M)", best="min"),
               Column("latency_ms_batch1", "Latency (ms)", best="min"), Column("throughput_per_s", "Throughput (/s)", best="max"),
               Column("clean_source", "Source", "l")]
    records = []
    for v in variants.iter_rows(named=True):
        records.append({
            "dataset": (f"{v['dataset']} ({v['task']})", None), "model": (v["model"], None), "label": (v["label"], None),
            **{m: _text(v[m], 1, NA, 100.0) for m in ("accuracy", "precision", "recall", "f1")},
            "size_mb": _text(v["size_mb"], 1, NA), "parameters": _text(v["parameters"], 2, NA, 1e-6),
            "nonzero_parameters": _text(v["nonzero_parameters"], 2, NA, 1e-6),
            "latency_ms_batch1": _text(v["latency_ms_batch1"], 2, NA), "throughput_per_s": _text(v["throughput_per_s"], 1, NA),
            "clean_source": (v["clean_source"] or NA, None), "_group": (v["dataset"], v["task"], v["base_model"]),
        })
    caption = ("Clean performance of each model and compressed variant on the test split, with size and batch-1 latency. "
               "Accuracy, precision, recall and F1 come from the model manifests (test_metrics) or, where a manifest has "
               "none, from the original predictions in the attack records over all of them (Source says which; "
               "2 labels: positive class; more: macro average). Best value per column within each original model in bold; "
               "n/a: not recorded.")
    return _build("clean", "Clean performance", caption, columns, records, ["_group"])


def robustness_tables(metrics: pl.DataFrame, comparisons: Comparisons) -> list[Table]:
    markers = {(r["dataset"], r["task"], r["base_model"], r["attack"], r.get("variant"), r["outcome"]): significance(r["p_adj"])
               for r in comparisons.rows if r["kind"] == "vs original"}
    tables = []
    for (attack,), frame in sorted(metrics.partition_by("attack", as_dict=True).items()):
        columns = [Column("model", "Model", "l"), Column("label", "Compression", "l"), Column("examples", "n (err.)"),
                   Column("asr", "ASR (%)", best="min"), Column("asr_ci", "95% CI"), Column("asr_n", "succ./att."),
                   Column("robust_accuracy", "Rob. acc. (%)", best="max"), Column("valid_asr", "Valid ASR (%)", best="min"),
                   Column("queries", "Queries (att.)", best="max"), Column("queries_success", "Queries (succ.)", best="max"),
                   Column("wall_time_s", "Time (s)"), Column("identifier_change", "Id. chg. (%)", best="max"),
                   Column("token_change", "Tok. chg. (%)", best="max")]
        records = []
        for m in frame.iter_rows(named=True):
            key = (m["dataset"], m["task"], m["base_model"], attack, m["label"])
            records.append({
                "model": (f"{m['model']} ({m['task']})", None), "label": (m["label"], None), "examples": (f"{m['examples']:,} ({m['errors']})", None),
                "asr": _text(m["asr"], 1, scale=100.0, marker=markers.get((*key, "attack success"), "")),
                "asr_ci": (fmt_interval(m["asr_low"], m["asr_high"], 1, 100.0), None),
                "asr_n": (f"{m['successes']}/{m['attacked']}", None),
                "robust_accuracy": _text(m["robust_accuracy"], 1, scale=100.0, marker=markers.get((*key, "robust-correct"), "")),
                "valid_asr": _text(m["valid_asr"], 1, scale=100.0), "queries": _text(m["queries"], 1),
                "queries_success": _text(m["queries_success"], 1), "wall_time_s": _text(m["wall_time_s"], 2),
                "identifier_change": _text(m["identifier_change"], 1, scale=100.0),
                "token_change": _text(m["token_change"], 1, scale=100.0),
                "_group": (m["dataset"], m["task"], m["base_model"]),
            })
        caption = (f"Robustness under the {attack} attack. n: examples (records without errors; records with errors in "
                   "parentheses, excluded from every rate); ASR = successful / attacked "
                   "examples (attacked: originally correct with at least one renameable identifier), with its 95% interval "
                   "(Wilson; with several seeds a cluster bootstrap over examples) and the counts; robust accuracy = examples still classified correctly after the attack / n; "
                   "valid ASR counts only successes whose adversarial program re-parses, is alpha-equivalent (or was "
                   "structure-edited), compiles and passes tests, where a check did not run (null) it does not disqualify; "
                   "queries: mean model queries over attacked examples and over successful ones; time: mean wall time per "
                   "attacked example; identifier/token change: mean share changed over successful examples. "
                   f"Stars: McNemar ({comparisons.mcnemar}) against the original on the same examples, "
                   f"{comparisons.correction}-adjusted p < 0.05 (*), < 0.01 (**), < 0.001 (***). "
                   "Bold: most robust value per column within each original model.")
        tables.append(_build(f"robustness-{attack}", f"Robustness ({attack})", caption, columns, records, ["_group"]))
    return tables


def validity_table(checks: pl.DataFrame) -> Table:
    columns = [Column("attack", "Attack", "l"), Column("model", "Model", "l"), Column("label", "Compression", "l"),
               Column("successes", "Succ."), *[Column(c, h, best="max") for c, h in
                                               (("parses", "Parses (%)"), ("alpha_equivalent", "Alpha-eq. (%)"),
                                                ("compiles", "Compiles (%)"), ("tests_pass", "Tests (%)"))],
               Column("valid", "Valid (%)", best="max")]
    records = []
    for r in checks.iter_rows(named=True):
        entry = {"attack": (r["attack"], None), "model": (r["model"], None), "label": (r["label"], None),
                 "successes": _text(r["successes"]), "valid": _text(r["valid_rate"], 1, scale=100.0),
                 "_group": (r["dataset"], r["task"], r["attack"])}
        for check in CHECKS:
            checked = r[f"{check}_checked"]
            rate = _text(r[f"{check}_rate"], 1, scale=100.0)
            entry[check] = (f"{rate[0]} ({checked})" if checked else UNDEFINED, rate[1])
        records.append(entry)
    caption = ("Semantic validity of successful adversarial examples. Each check's rate is over the successes where the check "
               "ran (that count in parentheses; unknown ones are not counted either way): parses = no new parse errors, "
               "alpha-eq. = alpha-equivalent to the original, compiles = compiler accepted it (where a compiler for the "
               "language was available), tests = the example's tests pass (datasets with tests only); valid = share of "
               "successes no check failed, with structure-edited programs exempt from alpha-equivalence. Best per column in bold.")
    return _build("validity", "Semantic validity", caption, columns, records, ["_group"])


def stats_table(comparisons: Comparisons) -> Table:
    columns = [Column("cell", "Cell", "l"), Column("outcome", "Outcome", "l"), Column("comparison", "Comparison", "l"),
               Column("test", "Test", "l"), Column("n", "n"), Column("statistic", "Statistic"), Column("p_raw", "p"),
               Column("p_adj", "p adj."), Column("effect", "Effect"), Column("effect_ci", "95% CI"), Column("discordant", "b/c (OR)"),
               Column("magnitude", "Magnitude", "l"), Column("delta", "Cliff's δ"), Column("a12", "Â12"),
               Column("family", "Family", "l"), Column("note", "Note", "l")]
    records = []
    for r in comparisons.rows:
        cell = "all cells" if r["kind"] in ("across cells", "post-hoc") else "/".join(str(r[k]) for k in ("task", "base_model", "attack"))
        records.append({
            "cell": (cell, None), "outcome": (r["outcome"], None), "comparison": (r["comparison"], None),
            "test": (r["test"], None), "n": _text(r["n"]), "statistic": _text(r["statistic"], 2),
            "p_raw": (fmt_p(r["p_raw"]), None), "p_adj": (fmt_p(r["p_adj"]), None, significance(r["p_adj"])),
            "effect": (f"{r['effect_name']} {fmt(r['effect'], 3)}" if r["effect_name"] else UNDEFINED, None),
            "effect_ci": (fmt_interval(r["effect_low"], r["effect_high"], 3), None),
            "discordant": (f"{r['b']}/{r['c']} ({fmt(r.get('odds_ratio'), 2)})" if r.get("b") is not None else "", None),
            "magnitude": (r["magnitude"] or UNDEFINED, None),
            "delta": (fmt(r.get("cliffs_delta"), 3) + (f" ({r['cliffs_magnitude']})" if r.get("cliffs_magnitude") else ""), None),
            "a12": (fmt(r.get("a12"), 3) + (f" ({r['a12_magnitude']})" if r.get("a12_magnitude") else ""), None),
            "family": (r["family"], None), "note": (r["note"] or "", None), "_group": (cell, r["outcome"]),
        })
    cliff, a12, h, w = st.CLIFF_THRESHOLDS, st.A12_THRESHOLDS, st.COHEN_H_THRESHOLDS, st.KENDALL_W_THRESHOLDS
    caption = (
        "Paired statistical tests. Cochran's Q across all variants, then McNemar "
        f"({comparisons.mcnemar}) of each compressed variant against the original for binary outcomes "
        "(robust-correct on the examples both have; attack success on the examples both attacked); effect: "
        "difference in rates (variant minus original) with Newcombe's interval, discordant pairs b (variant only) and c "
        "(original only) with the odds ratio b/c, magnitude by Cohen's h = 2 asin sqrt(rate variant) - 2 asin "
        f"sqrt(rate original) (|h| negligible < {h[0]}, small < {h[1]}, medium < {h[2]}, else large). Continuous outcomes on the examples where "
        "both have a value: Wilcoxon signed-rank (zero differences dropped) with the matched-pairs rank-biserial "
        f"correlation (positive: larger under the variant), magnitude by Romano's thresholds |r| < {cliff[0]}, {cliff[1]}, "
        f"{cliff[2]}; Cliff's δ with the same thresholds and Vargha-Delaney Â12 (|Â12 - 0.5| < {a12[0]}, {a12[1]}, "
        f"{a12[2]}) compare the two samples unpaired. Across cells: Friedman with Kendall's W (< {w[0]}, {w[1]}, {w[2]}) "
        "and all-pairs Wilcoxon post-hoc tests. "
        f"p adj.: {comparisons.correction} correction within each family (scheme '{comparisons.family_scheme}'); "
        "stars: adjusted p < 0.05 (*), < 0.01 (**), < 0.001 (***). Seeds of one example are reduced to one value first. "
        "A note labels degenerate comparisons.")
    return _build("stats", "Statistical tests", caption, columns, records, ["_group"], long=True)


def ranking_table(comparisons: Comparisons) -> Table:
    columns = [Column("outcome", "Outcome", "l"), Column("treatment", "Compression", "l"),
               Column("rank", "Mean rank", best="min"), Column("blocks", "Cells")]
    records = []
    for ranking in comparisons.rankings:
        for rank, name in sorted(zip(ranking.mean_ranks, ranking.treatments)):
            records.append({"outcome": (ranking.outcome, None), "treatment": (name, None), "rank": _text(rank, 2),
                            "blocks": _text(ranking.blocks), "_group": ranking.outcome})
    caption = ("Mean rank of each compression setting across (dataset, task, model, attack) cells (1 = most robust: "
               "lowest ASR, highest robust accuracy), from the Friedman test in the statistics table; only cells that "
               "have every setting take part. Best rank in bold.")
    return _build("ranking", "Ranking across cells", caption, columns, records, ["_group"])


def all_tables(variants, metrics, comparisons, checks) -> list[Table]:
    return [clean_table(variants), *robustness_tables(metrics, comparisons), validity_table(checks),
            stats_table(comparisons), ranking_table(comparisons)]
