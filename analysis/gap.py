"""Gap closure: how much of the robustness a compression loses a robust variant of the same size wins back.

For every robust variant R (a `harden` variant, or a distilled student made with `distill
--robust`) the report finds its *standard* counterpart S and their original O:

- harden: S is the variant whose model fingerprint is R's `compression.parent` (the variant R
  fine-tuned); O is S's original;
- robust distillation: S is the distilled variant of the same original, dataset and task with the
  same `target_mb` that is not robust.

Then, per attack and on the examples all three attacked (paired; seeds reduced per example as in
`analysis.comparisons.per_example`):

    gap_std = ASR(S) − ASR(O)     gap_rob = ASR(R) − ASR(O)     closed = (gap_std − gap_rob) / gap_std

with percentile-bootstrap intervals that resample examples (the same draws for all three
quantities, `analysis.bootstrap`; resamples whose standard gap is 0 leave the ratio undefined and
are left out of its interval), the paired-binary test (McNemar) of S against R on those examples
with its p adjusted (Holm by default) over the gap rows of one dataset, task and original, and
the report's own test of S against O (`comparisons`: the Holm-adjusted McNemar on the examples
both attacked) saying whether the standard gap is significant. Clean accuracy and F1 of S and R
come from the variants table. `closed` is only meaningful where the standard gap is positive;
elsewhere the row still reports both ASRs and the S-vs-R test (a transfer attack from the
original, whose replay on the original succeeds by construction, is such a row: what matters
there is that R is not easier to fool than S).

Where the study also made harden's control C of S (the same fine-tuning without renamed programs,
`robust: false`), each row of R carries C's ASR, its gap to the original and the McNemar test of
C against R on the row's examples C attacked too (`n_control`; adjusted as its own family), and
C's clean accuracy and F1: what R's renamings bought beyond more training.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from analysis import stats as st
from analysis.bootstrap import bootstrap_means, percentile_interval
from analysis.comparisons import GROUP, Comparisons, per_example

KEY = ["dataset", "task", "base_model"]


def robust_pairs(variants: pl.DataFrame) -> list[dict[str, Any]]:
    """(original, standard, robust) variant rows for every robust variant that has both; in table order."""
    rows = variants.to_dicts()
    pairs = []
    for robust in rows:
        if not robust.get("robust") or robust["base_model"] is None:
            continue
        same = [r for r in rows if all(r[k] == robust[k] for k in KEY) and r is not robust]
        original = next((r for r in same if r["is_original"]), None)
        if robust["method"] == "harden":
            standard = next((r for r in same if robust["parent"] and r["fingerprint"] == robust["parent"]), None)
        else:
            standard = next((r for r in same if r["method"] == robust["method"] and not r.get("robust")
                             and r.get("target_mb") == robust.get("target_mb")), None)
        if original is None or standard is None or standard["is_original"]:
            continue
        # harden's control is the same fine-tuning of S without renamed programs: a control of a hardened
        # variant only (a robust student is distilled, not fine-tuned from S)
        control = next((r for r in same if r.get("control") and r["parent"] == standard["fingerprint"]), None) \
            if robust["method"] == "harden" else None
        pairs.append({"original": original, "standard": standard, "robust": robust, "control": control})
    return pairs


def gap_rows(records: pl.DataFrame, variants: pl.DataFrame, comparisons: Comparisons, *, attacks: list[str],
             resamples: int = 1000, seed: int = 0, alpha: float = 0.05,
             tests: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per (robust variant, attack) with all three variants' records; see the module docstring."""
    pairs = robust_pairs(variants)
    if not pairs:
        return []
    examples = per_example(records)
    parts = examples.partition_by(GROUP, as_dict=True)
    versus = {(r["dataset"], r["task"], r["base_model"], r["attack"], r.get("variant")): r
              for r in comparisons.rows if r["kind"] == "vs original" and r["outcome"] == "attack success"}
    paired = st.chosen(tests)["paired-binary"]
    rows, columns = [], []
    for pair in pairs:
        o, s, r, c = pair["original"], pair["standard"], pair["robust"], pair["control"]
        for attack in attacks:
            frame = parts.get((o["dataset"], o["task"], o["base_model"], attack))
            if frame is None:
                continue
            shown = [o["label"], s["label"], r["label"], *([c["label"]] if c else [])]  # the control's column rides along
            wide = (frame.filter(pl.col("label").is_in(shown))
                    .pivot(on="label", index="example_id", values="success_bin", aggregate_function="first"))
            if not {o["label"], s["label"], r["label"]} <= set(wide.columns):
                continue
            wide = wide.drop_nulls([o["label"], s["label"], r["label"]]).sort("example_id")
            if wide.height == 0:  # no example attacked by all three (e.g. a student that learnt nothing): no row
                continue
            so, ss, sr = (wide[lab].cast(pl.Float64).to_numpy() for lab in (o["label"], s["label"], r["label"]))
            gap_std, gap_rob = float(ss.mean() - so.mean()), float(sr.mean() - so.mean())
            test = paired.run(ss, sr, alpha)
            std_test = versus.get((o["dataset"], o["task"], o["base_model"], attack, s["label"]))
            rows.append({
                "dataset": o["dataset"], "task": o["task"], "base_model": o["base_model"], "attack": attack,
                "original": o["label"], "standard": s["label"], "robust": r["label"],
                "standard_model": s["model"], "robust_model": r["model"], "n": len(so),
                "asr_original": float(so.mean()), "asr_standard": float(ss.mean()), "asr_robust": float(sr.mean()),
                "gap_standard": gap_std, "gap_robust": gap_rob,
                # a share of a gap exists only where the standard variant is easier to fool than the original
                "closed": (gap_std - gap_rob) / gap_std if gap_std > 0 else None,
                "standard_gap_p_adj": std_test["p_adj"] if std_test else None,
                "standard_gap_significant": bool(std_test and std_test["p_adj"] is not None and std_test["p_adj"] < alpha
                                                 and gap_std > 0),
                "robust_vs_standard_p_raw": test.p_raw, "robust_vs_standard_test": test.test,
                "robust_vs_standard_note": test.note,
                **{f"{m}_{side}": v[m] for side, v in (("standard", s), ("robust", r)) for m in ("accuracy", "f1")},
            })
            rows[-1].update(_control(o, r, c, wide, paired, alpha))
            columns.append(np.column_stack([ss - so, sr - so]))
    _intervals(rows, columns, resamples, seed, alpha)
    _adjust(rows, comparisons.correction, "robust_vs_standard")
    _adjust(rows, comparisons.correction, "robust_vs_control")
    return rows


def _control(o: dict[str, Any], r: dict[str, Any], c: dict[str, Any] | None, wide: pl.DataFrame,
             paired, alpha: float) -> dict[str, Any]:
    """Harden's control beside a robust variant: the same fine-tuning of the standard variant without
    renamed programs. Its gap to the original and the robust-vs-control test use the row's examples
    (`wide`, with the control's column) the control attacked too (`n_control`); None where there is
    no control."""
    empty = {"control": None, "n_control": None, "asr_control": None, "gap_control": None,
             "robust_vs_control_p_raw": None, "accuracy_control": None, "f1_control": None}
    if c is None:
        return empty
    both = wide.drop_nulls(c["label"]) if c["label"] in wide.columns else wide.clear()
    out = empty | {"control": c["label"], "n_control": both.height, "accuracy_control": c["accuracy"],
                   "f1_control": c["f1"]}
    if both.height:
        so, sr, sc = (both[lab].cast(pl.Float64).to_numpy() for lab in (o["label"], r["label"], c["label"]))
        out |= {"asr_control": float(sc.mean()), "gap_control": float(sc.mean() - so.mean()),
                "robust_vs_control_p_raw": paired.run(sc, sr, alpha).p_raw}
    return out


def _intervals(rows: list[dict[str, Any]], columns: list[np.ndarray], resamples: int, seed: int, alpha: float) -> None:
    """Paired percentile-bootstrap intervals of both gaps and of the share closed (one set of draws per row)."""
    names = ("gap_standard", "gap_robust", "closed")
    if resamples <= 0 or not rows:
        for row in rows:
            row.update({f"{name}_{side}": None for name in names for side in ("low", "high")})
        return
    values = np.concatenate(columns) if columns else np.empty((0, 2))
    starts = np.concatenate([[0], np.cumsum([len(c) for c in columns])])
    means = bootstrap_means(values, starts, resamples, seed)  # (rows, 2, resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = np.where(means[:, 0] != 0, (means[:, 0] - means[:, 1]) / means[:, 0], np.nan)
    stacked = np.concatenate([means, closed[:, None, :]], axis=1)
    low, high = percentile_interval(stacked, alpha)
    for i, row in enumerate(rows):
        if row["closed"] is None:  # no positive standard gap: no share of it, and no interval of one
            low[i, 2] = high[i, 2] = np.nan
        for j, name in enumerate(names):
            row[f"{name}_low"] = float(low[i, j]) if np.isfinite(low[i, j]) else None
            row[f"{name}_high"] = float(high[i, j]) if np.isfinite(high[i, j]) else None


def _adjust(rows: list[dict[str, Any]], correction: str, test: str) -> None:
    """One test's p-values (S vs R, or control vs R) adjusted within each (dataset, task, original):
    one family per row group and test (rows without the test are not counted and keep None)."""
    families: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        families.setdefault(tuple(row[k] for k in KEY), []).append(i)
    for members in families.values():
        adjusted = st.adjust([rows[i].get(f"{test}_p_raw") for i in members], correction)
        for i, value in zip(members, adjusted):
            rows[i][f"{test}_p_adj"] = value
