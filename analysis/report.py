"""The analysis pipeline end to end: load -> variants -> metrics -> statistics -> audit -> render.

`analyse` does the numbers (no files written); `write_report` renders them in the chosen
formats. Both are what the `analysis report|stats|audit` commands call.
"""
from __future__ import annotations

import base64
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from analysis import figures as figs
from analysis.audit import Audit, audit
from analysis.comparisons import Comparisons, compare
from analysis.loading import Logs, load_logs, select_truncated
from analysis.metrics import cell_metrics, prepare
from analysis.render import latex_environment, html_environment, latex_table, markdown_table, side_by_side, write_csv
from analysis.tables import Table, all_tables
from analysis.variants import variant_table

FORMATS = ("latex", "html", "csv", "md")


@dataclass
class Analysis:
    logs: Logs
    variants: pl.DataFrame
    records: pl.DataFrame
    metrics: pl.DataFrame
    comparisons: Comparisons
    audit: Audit
    timings: dict[str, float] = field(default_factory=dict)

    def notes(self) -> list[str]:
        notes = list(self.logs.warnings)
        unmatched = self.variants.filter(pl.col("base_model").is_null())
        for row in unmatched.iter_rows(named=True):
            notes.append(f"variant {row['model']} ({row['compression']}, {row['dataset']}/{row['task']}) has no original "
                         "(compression none) to compare with: left out of the paired tests")
        return notes

    def summary(self) -> str:
        records = self.records
        errors = int((records["status"] == "error").sum())
        return (f"{records.height:,} attack records from {len(self.logs.sources)} log files "
                f"({len(self.logs.manifests)} run manifests): {self.variants.height} model variants, "
                f"{records['attack'].n_unique()} attacks, {records['seed'].n_unique()} seeds; "
                f"{errors:,} records with status error are excluded from every rate and counted separately.")


def analyse(directories: list[str | Path], *, correction: str = "holm", family_scheme: str = "cell",
            mcnemar: str = "midp", alpha: float = 0.05, resamples: int = 1000, seed: int = 0, worst: int = 10,
            truncated: str = "include") -> Analysis:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    logs = select_truncated(load_logs(directories), truncated)  # `--truncated`: analysis.loading.select_truncated
    timings["load"] = time.perf_counter() - start
    variants = variant_table(logs)
    records = prepare(logs, variants)
    timings["variants"] = time.perf_counter() - start - sum(timings.values())
    metrics = cell_metrics(records, resamples=resamples, seed=seed, alpha=alpha)
    timings["metrics"] = time.perf_counter() - start - sum(timings.values())
    comparisons = compare(records, variants, metrics, correction=correction, family_scheme=family_scheme,
                          mcnemar=mcnemar, alpha=alpha)
    timings["statistics"] = time.perf_counter() - start - sum(timings.values())
    checks = audit(records, worst=worst)
    timings["audit"] = time.perf_counter() - start - sum(timings.values())
    return Analysis(logs, variants, records, metrics, comparisons, checks, timings)


def versions() -> str:
    names = ("code-robustness-toolkit", "polars", "numpy", "scipy", "statsmodels", "matplotlib", "jinja2", "numba")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def json_safe(value: Any) -> Any:
    """NaN and infinities become None (JSON has neither); containers are walked."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def gallery(analysis: Analysis, count: int) -> list[dict[str, Any]]:
    """Up to `count` successful adversarial examples, spread over attacks and variants, as side-by-side diffs."""
    if count <= 0:
        return []
    chosen = (analysis.records.filter(pl.col("success"))
              .sort(["attack", "label", "example_id"])
              .with_columns(pl.int_range(pl.len()).over(["attack", "label"]).alias("_rank"))
              .sort(["_rank", "attack", "label"]).head(count))
    if chosen.height == 0:
        return []
    code = analysis.logs.fetch_code(chosen)
    joined = chosen.join(code, on=["path", "example_id", "attack", "seed"], how="left")
    items = []
    for r in joined.iter_rows(named=True):
        if r["adversarial_code"] is None:
            continue
        try:
            renames = ", ".join(f"{k} → {v}" for k, v in json.loads(r["rename_map"] or "{}").items())
        except (ValueError, AttributeError):
            renames = str(r["rename_map"])
        items.append({"title": f"{r['attack']} on {r['model']} ({r['label']}), example {r['example_id']}",
                      "renames": renames or "(none)", "lines": side_by_side(r["original_code"], r["adversarial_code"])})
    return items


def write_report(analysis: Analysis, out: str | Path, formats: list[str], *, make_figures: bool = True,
                 gallery_size: int = 12) -> dict[str, list[Path]]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = all_tables(analysis.variants, analysis.metrics, analysis.comparisons, analysis.audit.checks)
    written: dict[str, list[Path]] = {}
    start = time.perf_counter()
    data = out / "data"
    data.mkdir(exist_ok=True)
    analysis.metrics.write_csv(data / "metrics.csv")
    _write_rows(analysis.comparisons.rows, data / "stats")
    analysis.variants.drop("runs", strict=False).write_csv(data / "variants.csv")
    written["data"] = sorted(data.iterdir())
    if "csv" in formats:
        folder = out / "csv"
        folder.mkdir(exist_ok=True)
        for table in tables:
            write_csv(table, folder / f"{table.name}.csv")
        written["csv"] = sorted(folder.iterdir())
    if "md" in formats:
        folder = out / "md"
        folder.mkdir(exist_ok=True)
        parts = []
        for table in tables:
            text = markdown_table(table)
            (folder / f"{table.name}.md").write_text(text, encoding="utf-8")
            parts.append(text)
        (folder / "report.md").write_text(f"# Robustness report\n\n{analysis.summary()}\n\n" + "\n".join(parts), encoding="utf-8")
        written["md"] = sorted(folder.iterdir())
    analysis.timings["tables"] = time.perf_counter() - start
    figure_files = _figures(analysis, out / "figures") if make_figures and ({"latex", "html"} & set(formats)) else []
    analysis.timings["figures"] = time.perf_counter() - start - analysis.timings["tables"]
    if "latex" in formats:
        written["latex"] = _write_latex(analysis, tables, figure_files, out / "latex")
    if "html" in formats:
        path = out / "report.html"
        path.write_text(_render_html(analysis, tables, figure_files, gallery_size), encoding="utf-8")
        written["html"] = [path]
    analysis.timings["render"] = time.perf_counter() - start - analysis.timings["tables"] - analysis.timings["figures"]
    return written


def _write_rows(rows: list[dict[str, Any]], stem: Path) -> None:
    safe = json_safe(rows)
    stem.with_suffix(".json").write_text(json.dumps(safe, indent=1), encoding="utf-8")
    frame = pl.DataFrame(safe, infer_schema_length=None)
    frame.select([c for c in frame.columns if frame[c].dtype != pl.List and frame[c].dtype != pl.Object]).write_csv(stem.with_suffix(".csv"))


def _figures(analysis: Analysis, folder: Path) -> list[figs.FigureFile]:
    made = [
        figs.asr_heatmap(analysis.metrics, folder),
        figs.size_pareto(analysis.metrics, analysis.variants, folder),
        *(figs.cd_diagram(r, analysis.comparisons.alpha, folder) for r in analysis.comparisons.rankings),
        figs.query_distributions(analysis.records, folder),
        figs.validity_bars(analysis.audit.checks, folder),
    ]
    return [f for f in made if f is not None]


def _write_latex(analysis: Analysis, tables: list[Table], figure_files, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    env = latex_environment()
    names = []
    for table in tables:
        (folder / f"table-{table.name}.tex").write_text(latex_table(table, env), encoding="utf-8")
        names.append(f"table-{table.name}")
    for figure in figure_files:
        shutil.copyfile(figure.paths["pdf"], folder / figure.paths["pdf"].name)
    report = env.get_template("report.tex.j2").render(
        title="Robustness of compressed models of code", generated=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        summary=analysis.summary(), notes=analysis.notes(),
        inputs=[n for n, t in zip(names, tables) if not t.long], landscape_inputs=[n for n, t in zip(names, tables) if t.long],
        figures=[{"name": f.name, "pdf": f.paths["pdf"].name, "caption": f.caption} for f in figure_files],
        versions=versions())
    (folder / "report.tex").write_text(report, encoding="utf-8")
    return sorted(folder.iterdir())


def _render_html(analysis: Analysis, tables: list[Table], figure_files, gallery_size: int) -> str:
    figures = [{"name": f.name, "caption": f.caption,
                "data_uri": "data:image/svg+xml;base64," + base64.b64encode(f.paths["svg"].read_bytes()).decode("ascii")}
               for f in figure_files]
    examples = gallery(analysis, gallery_size)
    note = (f"{len(examples)} successful adversarial examples, the first of each attack and compression setting by example id; "
            "changed lines are shaded and changed characters marked.")
    return html_environment().get_template("report.html.j2").render(
        title="Robustness of compressed models of code", summary=analysis.summary(), notes=analysis.notes(),
        tables=tables, figures=figures, gallery=examples, gallery_note=note, versions=versions())
