"""The report's answer in words: findings sentences and the shared "Measures" definitions.

Findings are written from the same displayed cells as the tables (`tables.comparison_cells`,
the validity table's total row), never from separately rounded numbers, so a sentence cannot
disagree with the table it cites; each finding names that table and row (`ref`, `rows`), which
is what the consistency test checks. Order: one headline (how many comparisons differ), one
sentence per significant difference in attack success (largest first, at most
`MAX_SENTENCES`; the rest are counted and left to the table), the clearest null result with
its interval, and one line on validity.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis import stats as st
from analysis.tables import ALL, UNDEFINED, Inputs, Table, asr_comparisons, attack_name, comparison_cells
from analysis.variants import phrase

MAX_SENTENCES = 8


@dataclass
class Finding:
    kind: str  # headline, significant, more, null, validity
    text: str
    ref: str | None = None  # the table whose cells hold the numbers
    rows: list[int] = field(default_factory=list)  # their row indices in that table


def _subject(r: dict[str, Any], inputs: Inputs) -> str:
    """"Distilling tiny to 0.5 MB", led by "On authorship, " when the study has several tasks."""
    v = r["variant"]
    subject = phrase(v["method"], v["label"], v["derived_label"], v["base_model"] or v["model"])
    if len({g[:2] for g in inputs.groups}) > 1:
        return f"On {inputs.title(*r['group'])[0]}, {subject[0].lower()}{subject[1:]}"
    return subject


def _p_words(p_adj: str, correction: str) -> str:
    name = correction.capitalize() if correction != "bh" else "BH"
    return f"{name}-adjusted p {p_adj}" if p_adj.startswith("<") else f"{name}-adjusted p = {p_adj}"


def findings(inputs: Inputs, tables: list[Table]) -> list[Finding]:
    """Every finding of the report, from the tables the report prints."""
    by_name = {t.name: t for t in tables}
    comparisons = inputs.comparisons
    rows = asr_comparisons(inputs)
    out: list[Finding] = []
    if not rows:
        return [Finding("headline", "No compressed variant has an original to compare with, so there are no paired tests.")]
    alpha = comparisons.alpha
    tested = [(i, r) for i, r in enumerate(rows) if r["test"]["p_adj"] is not None]
    significant = [(i, r) for i, r in tested if r["test"]["p_adj"] < alpha]
    up = sum(1 for _, r in significant if r["test"]["effect"] > 0)
    correction = comparisons.correction.capitalize() if comparisons.correction != "bh" else "Benjamini-Hochberg"
    out.append(Finding("headline", (
        f"Of {len(tested)} comparisons of a compressed variant with its original, {len(significant)} differ "
        f"significantly in attack success after {correction} correction (α = {alpha:g}): the variant was easier "
        f"to fool in {up} and harder in {len(significant) - up}."), "stats", [i for i, _ in tested]))
    test_name = comparisons.title("paired-binary")
    significant.sort(key=lambda item: -abs(item[1]["test"]["effect"]))
    for i, r in significant[:MAX_SENTENCES]:
        cells = {k: c.text for k, c in comparison_cells(r["test"]).items()}
        subject = _subject(r, inputs)
        verb = "raised" if r["test"]["effect"] > 0 else "lowered"
        magnitude = f", {cells['magnitude']}" if cells["magnitude"] != UNDEFINED else ""
        out.append(Finding("significant", (
            f"{subject} {verb} {attack_name(r['attack'])}'s success rate on the {cells['n']} examples both "
            f"attacked from {cells['original']} % to "
            f"{cells['variant']} % ({cells['delta']} pp, 95 % CI {cells['ci']}, {test_name}, "
            f"{_p_words(cells['p_adj'], comparisons.correction)}, Cohen's h = {cells['h']}{magnitude})."), "stats", [i]))
    if len(significant) > MAX_SENTENCES:
        out.append(Finding("more", f"{len(significant) - MAX_SENTENCES} further significant differences are marked in "
                                   "the paired-tests table.", "stats", [i for i, _ in significant[MAX_SENTENCES:]]))
    nulls = [(i, r) for i, r in tested if r["test"]["p_adj"] >= alpha
             and r["test"]["effect_low"] is not None and r["test"]["effect_high"] is not None]
    if nulls:
        i, r = min(nulls, key=lambda item: max(abs(item[1]["test"]["effect_low"]), abs(item[1]["test"]["effect_high"])))
        cells = {k: c.text for k, c in comparison_cells(r["test"]).items()}
        subject = _subject(r, inputs)
        subject = subject[0].lower() + subject[1:]
        change = (f"left {attack_name(r['attack'])}'s success rate on the {cells['n']} examples both attacked "
                  f"at {cells['original']} %" if cells["original"] == cells["variant"] else
                  f"changed {attack_name(r['attack'])}'s success rate on the {cells['n']} examples both "
                  f"attacked from {cells['original']} % to {cells['variant']} %")
        out.append(Finding("null", (
            f"The clearest null result: {subject} {change} ({cells['delta']} pp, 95 % CI {cells['ci']}, "
            f"{_p_words(cells['p_adj'], comparisons.correction)})."), "stats", [i]))
    validity = _validity(by_name.get("validity"))
    if validity:
        out.append(validity)
    out += _gap(inputs, by_name.get("gap"))
    return out


def _gap(inputs: Inputs, table: Table | None) -> list[Finding]:
    """Robust variants: how many significant standard gaps they close by half or more, whether their
    ASR ever exceeds the standard variant's, and the largest clean-accuracy cost; from the gap table."""
    if not inputs.gaps or table is None or not table.rows:  # no robust variants (a table of that name is another's)
        return []
    col = table.column
    rows = list(enumerate(table.rows))
    significant = [(i, r) for i, r in rows if r.cells[col("gap_standard")].marker and
                   r.cells[col("closed")].value is not None]
    half = [(i, r) for i, r in significant if r.cells[col("closed")].value >= 50]
    correction = inputs.comparisons.correction.capitalize() if inputs.comparisons.correction != "bh" else "BH"
    if significant:
        text = (f"Where the standard variant's ASR gap to the original is significant ({correction}-adjusted "
                f"{inputs.comparisons.title('paired-binary')}: {len(significant)} rows of the gap-closure table), the "
                f"robust variant of the same size closes at least half of it in {len(half)}: "
                + "; ".join(f"{r.cells[col('label')].text}, {_attack_of(table, i)}, {r.cells[col('closed')].text} % "
                            f"(95 % CI {r.cells[col('closed_ci')].text})" for i, r in significant[:4])
                + ("; …" if len(significant) > 4 else "") + ".")
    else:
        text = (f"No standard variant's ASR gap to the original is significant ({correction}-adjusted "
                f"{inputs.comparisons.title('paired-binary')}), so there is no gap for a robust variant to close.")
    out = [Finding("gap", text, "gap", [i for i, _ in significant] or [i for i, _ in rows])]
    higher = [(i, r) for i, r in rows if (r.cells[col("gap_robust")].value or 0) > (r.cells[col("gap_standard")].value or 0)]
    worst = max(rows, key=lambda item: abs((item[1].cells[col("accuracy_standard")].value or 0)
                                           - (item[1].cells[col("accuracy_robust")].value or 0)))
    i, r = worst
    drop = f"{r.cells[col('accuracy_standard')].text} % to {r.cells[col('accuracy_robust')].text} % ({r.cells[col('label')].text})"
    if higher:
        asr = (f"The robust variant's ASR exceeds the standard variant's in {len(higher)} of {len(rows)} rows (e.g. "
               f"{_attack_of(table, higher[0][0])} on {higher[0][1].cells[col('label')].text}: a gap of "
               f"{higher[0][1].cells[col('gap_robust')].text} pp against {higher[0][1].cells[col('gap_standard')].text} pp)")
    else:
        asr = f"The robust variant's ASR is nowhere above the standard variant's ({len(rows)} rows)"
    out.append(Finding("gap", f"{asr}; clean accuracy changes most, from the standard variant's to the robust "
                              f"one's, from {drop}.", "gap",
                       sorted({i, *(j for j, _ in higher[:1])})))
    if "gap_control" in {c.key for c in table.columns}:
        controlled = [(i, r) for i, r in rows if r.cells[col("gap_control")].value is not None]
        lower = [(i, r) for i, r in controlled
                 if (r.cells[col("gap_robust")].value or 0) < r.cells[col("gap_control")].value]
        marked = [(i, r) for i, r in lower if r.cells[col("gap_control")].marker]
        if controlled:
            out.append(Finding("gap", f"Against its control, the standard variant fine-tuned the same way without "
                                      f"renamed programs, the robust variant's ASR is lower in {len(lower)} of "
                                      f"{len(controlled)} rows ({len(marked)} significantly, "
                                      f"{inputs.comparisons.title('paired-binary')}, {correction}-adjusted): what the "
                                      "renamings bought beyond more training.", "gap",
                               [i for i, _ in marked[:3]] or [i for i, _ in controlled[:1]]))
    return out


def _attack_of(table: Table, index: int) -> str:
    return table.rows[index].cells[table.column("attack")].text

def _validity(table: Table | None) -> Finding | None:
    """One line from the validity table: the total share valid and the lowest (attack, variant) share."""
    if table is None or not table.rows:
        return None
    total_row = len(table.rows) - 1
    total = table.rows[total_row].cells
    successes, valid = total[table.column(f"{ALL}:successes")], total[table.column(f"{ALL}:valid")]
    if not successes.value:
        return Finding("validity", "No attack succeeded, so no adversarial example needed a validity check.", "validity", [total_row])
    lowest = None
    for i, row in enumerate(table.rows[:-1]):
        for j, column in enumerate(table.columns):
            if column.key.endswith(":valid") and not column.key.startswith(f"{ALL}:") and row.cells[j].value is not None:
                if lowest is None or row.cells[j].value < lowest[0]:
                    lowest = (row.cells[j].value, row.cells[j].text, column.group, row.cells[0].text, " · ".join(row.group), i)
    text = (f"Of the {successes.text} successful adversarial examples, {valid.text} % passed every validity check that "
            "ran (parses, alpha-equivalence, compiles, tests)")
    rows = [total_row]
    if lowest is not None and lowest[1] != valid.text:
        text += f"; the lowest share was {lowest[1]} % ({lowest[2]} against {lowest[3]}, {lowest[4]})"
        rows.append(lowest[5])
    return Finding("validity", text + ".", "validity", rows)


def measures(inputs: Inputs) -> list[tuple[str, str]]:
    """The definitions every table shares, once: (term, definition) pairs."""
    c = inputs.comparisons
    h = st.COHEN_H_THRESHOLDS
    seeds = int(inputs.metrics["seeds"].max() or 1) if inputs.metrics.height else 1
    interval = ("Wilson 95 % intervals" if seeds <= 1 else
                "95 % cluster-bootstrap intervals over examples (several seeds)")
    return [
        ("ASR", "attack success rate, successful attacks / attacked examples (originally correct, with at least one "
                "renameable identifier), in %."),
        ("RA", "robust accuracy, examples still classified correctly after the attack / all examples, in %; records "
               "whose attack failed with an error are left out of every rate."),
        ("Valid", "a successful adversarial example is valid when no check that ran failed: it parses, is "
                  "alpha-equivalent to the original (structure edits exempt), compiles and passes its tests."),
        ("Queries, time", "mean model queries and wall time per attacked example; a failed attack spends its whole "
                          "budget."),
        ("Marks", f"* p < 0.05, ** p < 0.01, *** p < 0.001, {c.correction.capitalize() if c.correction != 'bh' else 'Benjamini-Hochberg'}"
                  f"-adjusted within each family ('{c.family_scheme}' scheme), against the original on the same examples: "
                  f"{c.title('paired-binary')} for ASR and RA, {c.title('paired-continuous')} for queries."),
        ("Δ, h", f"variant minus original in percentage points on the examples both attacked, with Newcombe's paired "
                 f"95 % CI; Cohen's h = 2 asin √ASR(variant) − 2 asin √ASR(original): |h| < {h[0]} negligible, "
                 f"< {h[1]} small, < {h[2]} medium, else large."),
        ("Bold", "the best value of a column within one model (lowest ASR, highest RA, most queries, highest valid "
                 "share, accuracy and F1, smallest size and latency), only when no other variant ties it."),
        ("Intervals", f"{interval} in the appendix; – undefined (nothing to count), n/a not recorded."),
    ] + ([("Gap closure", "for a robust variant (robust fine-tuning or robust distillation) and the standard variant "
           "of the same size: gap = ASR(variant) − ASR(original) on the examples all three attacked; closed = (standard "
           "gap − robust gap) / standard gap, 100 % when the robust variant is as hard to fool as the original; its "
           "interval resamples examples (paired percentile bootstrap).")] if inputs.gaps else [])
