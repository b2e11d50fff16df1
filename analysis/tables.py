"""Row models of every report table, shared by the LaTeX, HTML, CSV and Markdown renderers.

A `Table` holds plain-text cells (escaping is the renderer's job), grouped into row groups
(one per task and original model; a heading line above each group), columns that may share a
spanning header (the attack), a bold flag for the *unique* best value of a column within a row
group (ties at the displayed precision are not bold), and significance marks. Captions are
short: the definitions every table shares are written once, in the "Measures" paragraph
(`measures`), which the report prints before the tables.

Tables are made by builder functions registered with `@paper_table(section)`; the report
renders every registered table in registration order, main ones in the body and appendix
ones in `report-appendix.tex` and the HTML appendix. Adding a table is one builder function:

    @paper_table("main")
    def gap_table(inputs: Inputs) -> Table | None:
        ...
        return build("gap", "Gap closure", "caption", columns, records)

`Inputs` gives the analysis results plus the study's fixed variant and attack order and the
row-group titles, so a new table looks like the others without extra code.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from analysis.comparisons import Comparisons, significance
from analysis.metrics import CHECKS
from analysis.variants import label_order

NA = "n/a"  # a value nobody recorded (e.g. a manifest key)
UNDEFINED = "–"  # a value with an empty denominator
MINUS = "−"  # U+2212: negative numbers print with a real minus sign

ATTACK_NAMES = {"mhm": "MHM", "mhm-ns": "MHM-NS", "alert": "ALERT", "wir-random": "WIR-Random", "coda": "CODA",
                "random": "Random"}
SECTIONS = ("main", "appendix")
ALL = "*all*"


def attack_name(attack: str) -> str:
    """How a paper writes the attack: MHM, ALERT, WIR-Random, CODA. A study's own name for a run of
    one of them (`--attack-name alert-4x`, `mhm-transfer`) keeps its suffix after the recipe's
    printed name ("ALERT-4x"); other names stay as they are."""
    if attack in ATTACK_NAMES:
        return ATTACK_NAMES[attack]
    recipe = max((key for key in ATTACK_NAMES if attack.startswith(f"{key}-")), key=len, default=None)
    return ATTACK_NAMES[recipe] + attack[len(recipe):] if recipe else attack


# --------------------------------------------------------------------------- the row model


@dataclass
class Column:
    key: str
    header: str
    align: str = "r"  # "l" or "r"
    best: str | None = None  # "min" or "max": bold the unique best value of each row group
    group: str = ""  # spanning header shared by neighbouring columns (e.g. the attack)
    wrap: float | None = None  # LaTeX: the text may wrap, in a column this many em wide (the layout fits it)
    repeat: bool = True  # False: show a value only where it changes within a row group (CSV repeats it)
    marks: bool = False  # the cells carry significance marks


@dataclass
class Cell:
    text: str
    value: float | None = None  # the displayed number, for bold and checks
    marker: str = ""
    bold: bool = False


@dataclass
class Row:
    cells: list[Cell]
    group: tuple[str, ...]  # the row group's title parts, e.g. ("authorship", "tiny")


@dataclass
class Table:
    name: str  # a slug: file names, LaTeX labels, HTML anchors
    title: str
    caption: str  # short; shared definitions live in the Measures paragraph
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    group_headers: tuple[str, ...] = ("Task", "Model")  # what the parts of a row group's title are
    section: str = "main"

    def column(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)


# --------------------------------------------------------------------------- number formats


def signed(text: str) -> str:
    return text.replace("-", MINUS, 1) if text.startswith("-") else text


def fmt(value: Any, digits: int = 2, missing: str = UNDEFINED, scale: float = 1.0, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        if isinstance(value, float) and math.isinf(value):
            return "∞" if value > 0 else MINUS + "∞"
        return missing
    if isinstance(value, int) and not isinstance(value, bool) and scale == 1.0 and not sign:
        return f"{value:,}"
    text = f"{value * scale:{'+' if sign else ''},.{digits}f}"
    if sign and float(text.replace(",", "")) == 0:
        text = f"{0:.{digits}f}"  # no "+0.0" or "-0.0"
    return signed(text)


def fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return UNDEFINED
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_interval(low: Any, high: Any, digits: int = 1, scale: float = 1.0) -> str:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return UNDEFINED
    return f"[{fmt(low, digits, scale=scale)}, {fmt(high, digits, scale=scale)}]"


def number(value: Any, digits: int = 1, scale: float = 1.0, missing: str = UNDEFINED, marker: str = "",
           sign: bool = False) -> Cell:
    """A numeric cell: its text and the number it displays (rounded as shown)."""
    text = fmt(value, digits, missing, scale, sign)
    shown = None
    if value is not None and not (isinstance(value, float) and not math.isfinite(value)):
        shown = round(float(value) * scale, digits)
    return Cell(text, shown, marker)


def size_cell(size_mb: float | None) -> Cell:
    """Model size in MB: two decimals below 10 MB (a distilled 0.53), one above (476.0)."""
    return number(size_mb, 2 if size_mb is not None and size_mb < 10 else 1, missing=NA)


def text(value: Any, missing: str = UNDEFINED) -> Cell:
    return Cell(missing if value is None or value == "" else str(value))


# --------------------------------------------------------------------------- inputs and registry


@dataclass
class Inputs:
    """What every table builder reads: the analysis results and the study's fixed orders."""

    variants: pl.DataFrame
    metrics: pl.DataFrame
    comparisons: Comparisons
    checks: pl.DataFrame  # the audit's per-(attack, variant) validity counts
    gaps: list[dict[str, Any]] = field(default_factory=list)  # analysis.gap: one row per robust variant and attack

    @cached_property
    def labels(self) -> list[str]:
        return label_order(self.variants)

    @cached_property
    def attacks(self) -> list[str]:
        present = set(self.metrics["attack"].to_list()) if self.metrics.height else set()
        known = [a for a in ATTACK_NAMES if a in present]
        return known + sorted(present - set(known))

    @cached_property
    def groups(self) -> list[tuple]:
        """(dataset, task, base model) of every row group, in the variants table's order."""
        return self.variants.select("dataset", "task", "base_model").unique(maintain_order=True).rows()

    def title(self, dataset: str, task: str, base_model: str | None) -> tuple[str, str]:
        """A row group's title parts: (task, model), the dataset added when a task has several."""
        datasets = self.variants.filter(pl.col("task") == task)["dataset"].n_unique()
        where = f"{dataset} ({task})" if datasets > 1 else task
        return where, base_model if base_model is not None else "no original"

    def variant_rows(self, group: tuple) -> list[dict[str, Any]]:
        dataset, task, base = group
        keep = (pl.col("dataset") == dataset) & (pl.col("task") == task)
        keep &= pl.col("base_model").is_null() if base is None else pl.col("base_model") == base
        return self.variants.filter(keep).sort("order", "model").to_dicts()

    @cached_property
    def cell_metrics(self) -> dict[tuple, dict[str, Any]]:
        """(dataset, task, model, compression, attack) -> that cell's metrics row."""
        return {(m["dataset"], m["task"], m["model"], m["compression"], m["attack"]): m
                for m in self.metrics.iter_rows(named=True)}

    def metric(self, variant: dict[str, Any], attack: str) -> dict[str, Any] | None:
        return self.cell_metrics.get((variant["dataset"], variant["task"], variant["model"], variant["compression"], attack))

    @cached_property
    def versus(self) -> dict[tuple, dict[str, Any]]:
        """(dataset, task, base model, attack, variant label, outcome) -> the test against the original."""
        return {(r["dataset"], r["task"], r["base_model"], r["attack"], r.get("variant"), r["outcome"]): r
                for r in self.comparisons.rows if r["kind"] == "vs original"}

    def test(self, variant: dict[str, Any], attack: str, outcome: str) -> dict[str, Any] | None:
        return self.versus.get((variant["dataset"], variant["task"], variant["base_model"], attack, variant["label"], outcome))

    def mark(self, variant: dict[str, Any], attack: str, outcome: str) -> str:
        row = self.test(variant, attack, outcome)
        return significance(row["p_adj"]) if row else ""


Builder = Callable[[Inputs], "Table | list[Table] | None"]
REGISTRY: list[tuple[str, Builder]] = []


def paper_table(section: str) -> Callable[[Builder], Builder]:
    """Register a table builder for the report's main part or its appendix (in this order)."""
    if section not in SECTIONS:
        raise ValueError(f"section {section!r}: use one of {SECTIONS}")

    def register(builder: Builder) -> Builder:
        REGISTRY.append((section, builder))
        return builder

    return register


def build_tables(inputs: Inputs) -> list[Table]:
    """Every registered table (builders that have nothing to show return None)."""
    tables: list[Table] = []
    for section, builder in sorted(REGISTRY, key=lambda item: SECTIONS.index(item[0])):  # stable: main first
        made = builder(inputs)
        for table in made if isinstance(made, list) else [made] if made is not None else []:
            table.section = section
            tables.append(table)
    return tables


def build(name: str, title: str, caption: str, columns: list[Column], records: list[dict[str, Any]],
          group_headers: tuple[str, ...] = ("Task", "Model")) -> Table:
    """A table from `records` (column key -> Cell, plus "_group": the row group's title parts).

    Bold marks the best value of a `best` column within each row group, only where exactly one
    row has it at the displayed precision (a tie is no best).
    """
    table = Table(name, title, caption, columns, group_headers=group_headers)
    members: dict[tuple, list[int]] = {}
    for i, record in enumerate(records):
        group = tuple(record["_group"])
        table.rows.append(Row([record[c.key] for c in columns], group))
        members.setdefault(group, []).append(i)
    for rows in members.values():
        for j, column in enumerate(columns):
            if column.best is None:
                continue
            cells = [table.rows[i].cells[j] for i in rows if table.rows[i].cells[j].value is not None]
            if len(cells) < 2:
                continue
            target = (min if column.best == "min" else max)(c.value for c in cells)
            winners = [c for c in cells if c.value == target]
            if len(winners) == 1:
                winners[0].bold = True
    return table


# --------------------------------------------------------------------------- main tables


@paper_table("main")
def variants_table(inputs: Inputs) -> Table:
    """Each label once, with the full configuration behind it and the models it was applied to."""
    columns = [Column("label", "Variant", "l"), Column("configuration", "Configuration", "l", wrap=17),
               Column("models", "Applied to", "l", wrap=13)]
    seen: dict[tuple[str, str], list[str]] = {}
    for v in inputs.variants.sort("order", "dataset", "task", "base_model", nulls_last=True).iter_rows(named=True):
        title = " · ".join(inputs.title(v["dataset"], v["task"], v["base_model"]))
        seen.setdefault((v["label"], v["configuration"]), [])
        if title not in seen[(v["label"], v["configuration"])]:
            seen[(v["label"], v["configuration"])].append(title)
    total = len(inputs.groups)
    records = []
    for (label, config), titles in seen.items():
        applied = f"all {total} models" if len(titles) == total and total > 2 else ", ".join(titles)
        records.append({"label": Cell(label), "configuration": Cell(config), "models": Cell(applied), "_group": ()})
    caption = "Variants: the label used in every table and figure and the configuration recorded in the model manifests."
    return build("variants", "Variants", caption, columns, records, group_headers=())


@paper_table("main")
def clean_table(inputs: Inputs) -> Table:
    columns = [Column("label", "Variant", "l"), Column("accuracy", "Acc. (%)", best="max"),
               Column("f1", "F1 (%)", best="max"), Column("size_mb", "Size (MB)", best="min"),
               Column("delta", "Δ Acc. (pp)"), Column("latency_ms_batch1", "Latency (ms)", best="min")]
    records = []
    for group in inputs.groups:
        rows = inputs.variant_rows(group)
        original = next((v for v in rows if v["is_original"]), None)
        for v in rows:
            delta = None
            if original is not None and not v["is_original"] and v["accuracy"] is not None and original["accuracy"] is not None:
                delta = v["accuracy"] - original["accuracy"]
            records.append({
                "label": Cell(v["label"]), "accuracy": number(v["accuracy"], 1, 100.0, NA), "f1": number(v["f1"], 1, 100.0, NA),
                "size_mb": size_cell(v["size_mb"]),
                "delta": number(delta, 1, 100.0, sign=True),
                "latency_ms_batch1": number(v["latency_ms_batch1"], 2, missing=NA),
                "_group": inputs.title(*group)})
    caption = "Clean performance on the test split: accuracy, F1, size on disk, change in accuracy against the original and batch-1 latency."
    return build("clean", "Clean performance", caption, columns, records)


def _per_attack(inputs: Inputs, name: str, title: str, caption: str, parts: list[tuple[Column, Callable]]) -> Table:
    """Rows: task × model × variant; columns grouped by attack, `parts` (column, cell maker) under each."""
    columns = [Column("label", "Variant", "l")]
    for attack in inputs.attacks:
        for column, _ in parts:
            columns.append(Column(f"{attack}:{column.key}", column.header, column.align, column.best,
                                  attack_name(attack), marks=column.marks))
    records = []
    for group in inputs.groups:
        for v in inputs.variant_rows(group):
            record = {"label": Cell(v["label"]), "_group": inputs.title(*group)}
            for attack in inputs.attacks:
                metric = inputs.metric(v, attack)
                for column, make in parts:
                    record[f"{attack}:{column.key}"] = make(v, attack, metric) if metric else Cell(UNDEFINED)
            records.append(record)
    return build(name, title, caption, columns, records)


@paper_table("main")
def asr_table(inputs: Inputs) -> Table:
    parts = [
        (Column("asr", "ASR", best="min", marks=True),
         lambda v, a, m: number(m["asr"], 1, 100.0, marker=inputs.mark(v, a, "attack success"))),
        (Column("robust_accuracy", "RA", best="max", marks=True),
         lambda v, a, m: number(m["robust_accuracy"], 1, 100.0, marker=inputs.mark(v, a, "robust-correct"))),
    ]
    caption = ("Attack success rate (ASR, %) and robust accuracy (RA, %) per attack; "
               f"marks: {inputs.comparisons.title('paired-binary')} against the original on the same examples.")
    return _per_attack(inputs, "asr", "Robustness", caption, parts)


@paper_table("main")
def effort_table(inputs: Inputs) -> Table:
    parts = [
        (Column("queries", "Queries", best="max", marks=True),
         lambda v, a, m: number(m["queries"], 1, marker=inputs.mark(v, a, "queries"))),
        (Column("wall_time_s", "Time (s)"), lambda v, a, m: number(m["wall_time_s"], 2)),
    ]
    caption = ("Attack effort per attack: mean model queries and mean wall time per attacked example; "
               f"marks: {inputs.comparisons.title('paired-continuous')} against the original.")
    return _per_attack(inputs, "effort", "Attack effort", caption, parts)


def asr_comparisons(inputs: Inputs) -> list[dict[str, Any]]:
    """The paired-binary tests (McNemar) of attack success against the original, in table order."""
    rows = []
    for group in inputs.groups:
        for attack in inputs.attacks:
            for v in inputs.variant_rows(group):
                test = None if v["is_original"] else inputs.test(v, attack, "attack success")
                if test is not None:
                    rows.append({"group": group, "attack": attack, "variant": v, "test": test})
    return rows


def comparison_cells(test: dict[str, Any]) -> dict[str, Cell]:
    """The displayed numbers of one paired-binary (McNemar) row: the compact statistics table and the findings
    both print these (so a sentence can never disagree with its table)."""
    h = test.get("cohen_h")
    return {
        "n": number(test["n"], 0), "original": number(test.get("rate_y"), 1, 100.0),
        "variant": number(test.get("rate_x"), 1, 100.0), "delta": number(test["effect"], 1, 100.0, sign=True),
        "ci": Cell(fmt_interval(test["effect_low"], test["effect_high"], 1, 100.0)),
        "p_adj": Cell(fmt_p(test["p_adj"]), test["p_adj"], significance(test["p_adj"])),
        "h": number(h, 2, sign=True), "magnitude": text(test["magnitude"] if h is not None else None),
    }


@paper_table("main")
def stats_table(inputs: Inputs) -> Table | None:
    rows = asr_comparisons(inputs)
    if not rows:
        return None
    columns = [Column("attack", "Attack", "l", repeat=False), Column("label", "Variant", "l"), Column("n", "n"),
               Column("original", "Orig.", group="ASR (%)"), Column("variant", "Var.", group="ASR (%)"),
               Column("delta", "Δ (pp)"), Column("ci", "95 % CI"), Column("p_adj", "p adj.", marks=True),
               Column("h", "h"), Column("magnitude", "Magnitude", "l")]
    records = [{"attack": Cell(attack_name(r["attack"])), "label": Cell(r["variant"]["label"]),
                **comparison_cells(r["test"]), "_group": inputs.title(*r["group"])} for r in rows]
    c = inputs.comparisons
    caption = (f"Attack success of each variant against its original on the examples both attacked: rates, "
               f"difference with Newcombe's 95 % CI, {c.title('paired-binary')} p adjusted by {c.correction.capitalize()}, "
               "Cohen's h.")
    return build("stats", "Paired tests", caption, columns, records)


@paper_table("main")
def validity_table(inputs: Inputs) -> Table | None:
    checks = inputs.checks
    if checks.height == 0:
        return None
    by_key = {(r["dataset"], r["task"], r["model"], r["label"], r["attack"]): r for r in checks.iter_rows(named=True)}
    columns = [Column("label", "Variant", "l")]
    for attack in [*inputs.attacks, ALL]:
        group = attack_name(attack) if attack != ALL else "All attacks"
        columns += [Column(f"{attack}:successes", "Succ.", group=group),
                    Column(f"{attack}:valid", "Valid", group=group, best="max")]
    records = []
    totals: dict[str, list[int]] = {}

    def cells(record: dict, attack: str, successes: int, valid: int) -> None:
        record[f"{attack}:successes"] = number(successes, 0)
        record[f"{attack}:valid"] = number(valid / successes if successes else None, 1, 100.0)

    for group in inputs.groups:
        for v in inputs.variant_rows(group):
            record = {"label": Cell(v["label"]), "_group": inputs.title(*group)}
            mine = [0, 0]
            for attack in inputs.attacks:
                r = by_key.get((v["dataset"], v["task"], v["model"], v["label"], attack))
                successes, valid = (r["successes"], r["valid"]) if r else (0, 0)
                cells(record, attack, successes, valid)
                for key in (attack, ALL):
                    total = totals.setdefault(key, [0, 0])
                    total[0] += successes
                    total[1] += valid
                mine[0] += successes
                mine[1] += valid
            cells(record, ALL, *mine)
            records.append(record)
    record = {"label": Cell("All variants"), "_group": ("Total", "")}
    for attack in [*inputs.attacks, ALL]:
        cells(record, attack, *totals.get(attack, [0, 0]))
    records.append(record)
    caption = ("Successful adversarial examples (Succ.) and the share of them that passed every validity check "
               "that ran (Valid, %).")
    return build("validity", "Semantic validity", caption, columns, records)


def gap_cells(row: dict[str, Any]) -> dict[str, Cell]:
    """The displayed numbers of one gap-closure row (`analysis.gap`): the table and the findings print these."""
    positive = row["gap_standard"] is not None and row["gap_standard"] > 0
    p_std = row["standard_gap_p_adj"]
    return {
        "n": number(row["n"], 0), "asr_original": number(row["asr_original"], 1, 100.0),
        "asr_standard": number(row["asr_standard"], 1, 100.0), "asr_robust": number(row["asr_robust"], 1, 100.0),
        "gap_standard": number(row["gap_standard"], 1, 100.0, sign=True,
                               marker=significance(p_std) if positive else ""),
        "gap_robust": number(row["gap_robust"], 1, 100.0, sign=True),
        "closed": number(row["closed"], 0, 100.0),
        "closed_ci": Cell(fmt_interval(row["closed_low"], row["closed_high"], 0, 100.0)),
        "p_sr": Cell(fmt_p(row["robust_vs_standard_p_adj"]), row["robust_vs_standard_p_adj"],
                     significance(row["robust_vs_standard_p_adj"])),
        "accuracy_standard": number(row["accuracy_standard"], 1, 100.0, NA),
        "accuracy_robust": number(row["accuracy_robust"], 1, 100.0, NA),
        "gap_control": number(row.get("gap_control"), 1, 100.0, NA, sign=True,
                              marker=significance(row.get("robust_vs_control_p_adj"))),
    }


@paper_table("main")
def gap_table(inputs: Inputs) -> Table | None:
    """Robust variants against their standard counterparts of the same size (analysis/gap.py)."""
    if not inputs.gaps:
        return None
    columns = [Column("attack", "Attack", "l", repeat=False, wrap=4.6), Column("label", "Variant", "l", wrap=7),
               Column("n", "n"), Column("asr_original", "Orig.", group="ASR (%)"),
               Column("gap_standard", "Std.", group="Gap (pp)", marks=True), Column("gap_robust", "Rob.", group="Gap (pp)"),
               Column("closed", "Share", group="Closed (%)"), Column("closed_ci", "95 % CI", group="Closed (%)"),
               Column("p_sr", "p adj.", marks=True),
               Column("accuracy_standard", "Std.", group="Acc. (%)"), Column("accuracy_robust", "Rob.", group="Acc. (%)")]
    # F1 beside accuracy, and the control's accuracy, made the table too wide for the page (it split in
    # parts); they are in data/gap.csv, the control's accuracy also in the variants table
    controls = any(r.get("control") for r in inputs.gaps)
    if controls:  # harden's control (the same fine-tuning without renamed programs) beside the robust variant
        after = [c.key for c in columns].index("gap_robust") + 1
        columns.insert(after, Column("gap_control", "Ctrl.", group="Gap (pp)", marks=True))
    order = {g: i for i, g in enumerate(inputs.groups)}
    attacks = {a: i for i, a in enumerate(inputs.attacks)}
    labels = {lab: i for i, lab in enumerate(inputs.labels)}
    rows = sorted(inputs.gaps, key=lambda r: (order.get((r["dataset"], r["task"], r["base_model"]), len(order)),
                                              attacks.get(r["attack"], len(attacks)), labels.get(r["robust"], 0)))
    shown = [c.key for c in columns]
    records = [{"attack": Cell(attack_name(r["attack"])), "label": Cell(r["robust"]),
                **{k: v for k, v in gap_cells(r).items() if k in shown}, "_group": inputs.title(r["dataset"], r["task"], r["base_model"])} for r in rows]
    c = inputs.comparisons
    caption = ("Each robust variant (Rob.) against the standard compressed variant of the same size (Std.) and "
               "the original, on the examples all three attacked: the original's ASR, the variants' gaps to it, the share of the "
               "standard gap the robust variant closes with a paired bootstrap 95 % CI (– where there is no positive "
               f"gap), {c.title('paired-binary')} p of Std. against Rob. adjusted by {c.correction.capitalize()}, "
               "clean accuracy (F1 in data/gap.csv); marks on the standard gap: the report's test against the original."
               + (" Ctrl.: the standard variant fine-tuned like the robust one but without renamed programs (the "
                  "control), on the row's examples it attacked too; marks on its gap: its test against Rob.; its clean "
                  "accuracy is in the variants table." if controls
                  else ""))
    return build("gap", "Gap closure", caption, columns, records)


# --------------------------------------------------------------------------- appendix tables


@paper_table("appendix")
def clean_full_table(inputs: Inputs) -> Table:
    columns = [Column("label", "Variant", "l"),
               *(Column(m, h, best="max") for m, h in (("accuracy", "Acc."), ("precision", "Prec."), ("recall", "Rec."),
                                                       ("f1", "F1"))),
               Column("size_mb", "Size (MB)", best="min"), Column("parameters", "Params (M)"),
               Column("nonzero_parameters", "Non-zero (M)", best="min"), Column("latency_ms_batch1", "Latency (ms)", best="min"),
               Column("throughput_per_s", "Throughput (/s)", best="max"), Column("clean_source", "Source", "l", wrap=8)]
    records = []
    for group in inputs.groups:
        for v in inputs.variant_rows(group):
            records.append({
                "label": Cell(v["label"]), **{m: number(v[m], 1, 100.0, NA) for m in ("accuracy", "precision", "recall", "f1")},
                "size_mb": size_cell(v["size_mb"]), "parameters": number(v["parameters"], 2, 1e-6, NA),
                "nonzero_parameters": number(v["nonzero_parameters"], 2, 1e-6, NA),
                "latency_ms_batch1": number(v["latency_ms_batch1"], 2, missing=NA),
                "throughput_per_s": number(v["throughput_per_s"], 1, missing=NA),
                "clean_source": text(v["clean_source"], NA), "_group": inputs.title(*group)})
    caption = ("Clean performance in full (accuracy, precision, recall, F1 in %; 2 labels: positive class, more: "
               "macro average), size, parameters, latency and throughput; Source: manifest or attack records.")
    return build("clean-full", "Clean performance in full", caption, columns, records)


@paper_table("appendix")
def robustness_full_table(inputs: Inputs) -> Table:
    columns = [Column("attack", "Attack", "l", repeat=False), Column("label", "Variant", "l"),
               Column("examples", "n (err.)"), Column("asr", "ASR", best="min", marks=True), Column("asr_ci", "95 % CI"),
               Column("asr_n", "succ./att."), Column("robust_accuracy", "RA", best="max", marks=True),
               Column("ra_ci", "95 % CI"), Column("valid_asr", "Valid ASR", best="min"),
               Column("queries", "Q/att.", best="max"), Column("queries_success", "Q/succ.", best="max"),
               Column("wall_time_s", "Time (s)"), Column("identifier_change", "Id. chg."),
               Column("token_change", "Tok. chg.")]
    records = []
    for group in inputs.groups:
        for attack in inputs.attacks:
            for v in inputs.variant_rows(group):
                m = inputs.metric(v, attack)
                if m is None:
                    continue
                records.append({
                    "attack": Cell(attack_name(attack)), "label": Cell(v["label"]),
                    "examples": Cell(f"{m['examples']:,} ({m['errors']})"),
                    "asr": number(m["asr"], 1, 100.0, marker=inputs.mark(v, attack, "attack success")),
                    "asr_ci": Cell(fmt_interval(m["asr_low"], m["asr_high"], 1, 100.0)),
                    "asr_n": Cell(f"{m['successes']}/{m['attacked']}"),
                    "robust_accuracy": number(m["robust_accuracy"], 1, 100.0, marker=inputs.mark(v, attack, "robust-correct")),
                    "ra_ci": Cell(fmt_interval(m["robust_accuracy_low"], m["robust_accuracy_high"], 1, 100.0)),
                    "valid_asr": number(m["valid_asr"], 1, 100.0), "queries": number(m["queries"], 1),
                    "queries_success": number(m["queries_success"], 1), "wall_time_s": number(m["wall_time_s"], 2),
                    "identifier_change": number(m["identifier_change"], 1, 100.0),
                    "token_change": number(m["token_change"], 1, 100.0),
                    "_group": inputs.title(*group)})
    caption = ("Robustness in full, per attack (rates in %): examples (records with errors), ASR with its 95 % CI and "
               "counts, robust accuracy with its CI, valid ASR, mean queries per attacked and per successful example, "
               "mean time per attacked example, identifiers and tokens changed per success.")
    return build("robustness-full", "Robustness in full", caption, columns, records)


# Short names of the default tests' effects in the tests table (others print in full); the caption
# explains the ones that occur.
_EFFECT_SHORT = {"difference in rates": ("Δ", "difference in rates"), "rank-biserial": ("r", "rank-biserial"),
                 "eta2_Q": ("η²", "Cochran's eta-squared"), "Kendall's W": ("W", "Kendall's W")}


@paper_table("appendix")
def tests_full_table(inputs: Inputs) -> Table | None:
    if not inputs.comparisons.rows:
        return None
    columns = [Column("attack", "Attack", "l", repeat=False), Column("outcome", "Outcome", "l", wrap=6.5),
               Column("comparison", "Comparison", "l", wrap=9), Column("test", "Test", "l", wrap=6.5),
               Column("n", "n"), Column("statistic", "Stat."), Column("p_raw", "p"), Column("p_adj", "p adj.", marks=True),
               Column("effect", "Effect"), Column("effect_ci", "95 % CI"), Column("magnitude", "Magn.", "l"),
               Column("note", "Note", "l", wrap=9)]
    order = {g: i for i, g in enumerate(inputs.groups)}
    attacks = {a: i for i, a in enumerate(inputs.attacks)}
    rows = sorted(inputs.comparisons.rows, key=lambda r: (
        r["kind"] in ("across cells", "post-hoc"), order.get((r["dataset"], r["task"], r["base_model"]), len(order)),
        attacks.get(r["attack"], len(attacks)), r["outcome"]))
    records = []
    for r in rows:
        across = r["kind"] in ("across cells", "post-hoc")
        effect = (f"{_EFFECT_SHORT.get(r['effect_name'], (r['effect_name'],))[0]} {fmt(r['effect'], 3)}"
                  if r["effect_name"] else UNDEFINED)
        records.append({
            "attack": Cell("all" if across else attack_name(r["attack"])), "outcome": Cell(r["outcome"]),
            "comparison": Cell(r["comparison"]), "test": Cell(r["test"]), "n": number(r["n"], 0),
            "statistic": number(r["statistic"], 2), "p_raw": Cell(fmt_p(r["p_raw"])),
            "p_adj": Cell(fmt_p(r["p_adj"]), r["p_adj"], significance(r["p_adj"])),
            "effect": Cell(effect), "effect_ci": Cell(fmt_interval(r["effect_low"], r["effect_high"], 3)),
            "magnitude": text(r["magnitude"]), "note": text(r["note"], ""),
            "_group": ("Across cells", "") if across else inputs.title(r["dataset"], r["task"], r["base_model"])})
    c = inputs.comparisons
    caption = (f"Every statistical test: {c.title('omnibus-binary')} and {c.title('paired-binary')} for binary outcomes, "
               f"{c.title('paired-continuous')} for continuous ones, {c.title('omnibus-blocks')} and post-hoc "
               f"{c.title('paired-continuous')} across cells; p adjusted by "
               f"{c.correction.capitalize()} within each family (scheme '{c.family_scheme}').")
    present = {r["effect_name"] for r in rows}
    shorts = [f"{short} {long}" for name, (short, long) in _EFFECT_SHORT.items() if name in present]
    caption += f" Effects: {', '.join(shorts)}." if shorts else ""
    return build("tests", "All statistical tests", caption, columns, records)


@paper_table("appendix")
def validity_full_table(inputs: Inputs) -> Table | None:
    if inputs.checks.height == 0:
        return None
    columns = [Column("attack", "Attack", "l", repeat=False), Column("label", "Variant", "l"), Column("successes", "Succ."),
               *(Column(c, h, best="max") for c, h in (("parses", "Parses"), ("alpha_equivalent", "Alpha-eq."),
                                                         ("compiles", "Compiles"), ("tests_pass", "Tests"))),
               Column("valid", "Valid", best="max")]
    by_key = {(r["dataset"], r["task"], r["model"], r["label"], r["attack"]): r for r in inputs.checks.iter_rows(named=True)}
    records = []
    for group in inputs.groups:
        for attack in inputs.attacks:
            for v in inputs.variant_rows(group):
                r = by_key.get((v["dataset"], v["task"], v["model"], v["label"], attack))
                if r is None:
                    continue
                entry = {"attack": Cell(attack_name(attack)), "label": Cell(v["label"]), "successes": number(r["successes"], 0),
                         "valid": number(r["valid_rate"], 1, 100.0), "_group": inputs.title(*group)}
                for check in CHECKS:
                    cell = number(r[f"{check}_rate"], 1, 100.0)
                    checked = r[f"{check}_checked"]
                    entry[check] = Cell(f"{cell.text} ({checked})", cell.value) if checked else Cell(UNDEFINED)
                records.append(entry)
    caption = ("Validity of successful adversarial examples per check, in % of the successes where the check ran "
               "(that count in parentheses; – never ran), and valid overall.")
    return build("validity-full", "Semantic validity in full", caption, columns, records)


@paper_table("appendix")
def ranking_table(inputs: Inputs) -> Table | None:
    rankings = [r for r in inputs.comparisons.rankings if r.treatments]
    if not rankings:
        return None
    columns = [Column("treatment", "Variant", "l"), Column("rank", "Mean rank", best="min"), Column("blocks", "Cells")]
    records = []
    for ranking in rankings:
        for rank, name in sorted(zip(ranking.mean_ranks, ranking.treatments)):
            records.append({"treatment": Cell(name), "rank": number(rank, 2), "blocks": number(ranking.blocks, 0),
                            "_group": (ranking.outcome,)})
    caption = ("Mean rank of each variant across (task, model, attack) cells that have every variant (1 = most robust: "
               f"lowest ASR, highest robust accuracy), from the {inputs.comparisons.title('omnibus-blocks')} tests.")
    return build("ranking", "Ranking across cells", caption, columns, records, group_headers=("Outcome",))
