"""The analysis pipeline end to end: load -> variants -> metrics -> statistics -> audit -> render.

`analyse` does the numbers (no files written); `write_report` renders them in the chosen
formats: the paper tables (`tables`), the findings in words (`findings`), the figures
(`figures`), LaTeX (`report.tex` with `findings.tex`, `measures.tex`, one file per table and
`report-appendix.tex`; compiled to `report.pdf` when pdflatex is installed), one HTML page,
CSV and Markdown. Both are what the `analysis report|stats|audit` commands call.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import markupsafe
import polars as pl

from engine.common.errors import UserError
from engine.common.reports import REPORT_FORMATS

from analysis import figures as figs
from analysis.audit import Audit, audit
from analysis.comparisons import Comparisons, compare
from analysis.findings import Finding, findings, measures
from analysis.gap import gap_rows
from analysis.loading import Logs, load_logs, select_truncated
from analysis.metrics import cell_metrics, prepare
from analysis.pdf import compile_pdf
from analysis.render import (Tex, display, header_groups, html_environment, latex_environment, latex_parts, latex_table,
                             markdown_table, md_escape, side_by_side, slug, tex_escape, write_csv)
from analysis.tables import Inputs, Table, attack_name, build_tables
from analysis.variants import variant_table

TITLE = "Robustness of compressed models of code"
# Written into report.html and report.tex: says which report layout made a file (tests rebuild older ones).
GENERATOR = "code-robustness-toolkit analysis report, layout 2"


@dataclass
class Analysis:
    logs: Logs
    variants: pl.DataFrame
    records: pl.DataFrame
    metrics: pl.DataFrame
    comparisons: Comparisons
    audit: Audit
    gaps: list[dict[str, Any]] = field(default_factory=list)  # analysis.gap: robust variants against standard ones
    timings: dict[str, float] = field(default_factory=dict)
    report_notes: list[str] = field(default_factory=list)  # what writing the report could not do (e.g. the PDF)

    def inputs(self) -> Inputs:
        return Inputs(self.variants, self.metrics, self.comparisons, self.audit.checks, self.gaps)

    def notes(self) -> list[str]:
        from analysis.samples import sample_notes

        notes = sample_notes(self.logs.manifests) + list(self.logs.warnings)
        unmatched = self.variants.filter(pl.col("base_model").is_null())
        for row in unmatched.iter_rows(named=True):
            notes.append(f"variant {row['model']} ({row['configuration']}, {row['dataset']}/{row['task']}) has no original "
                         "(compression none) to compare with: left out of the paired tests")
        return notes

    def summary(self) -> str:
        records = self.records
        errors = int((records["status"] == "error").sum())
        return (f"{records.height:,} attack records from {len(self.logs.sources)} log files "
                f"({len(self.logs.manifests)} run manifests): {self.variants.height} model variants, "
                f"{_count(records['attack'].n_unique(), 'attack')}, {_count(records['seed'].n_unique(), 'seed')}; "
                f"{errors:,} records with status error are excluded from every rate and counted separately.")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def analyse(directories: list[str | Path], *, labels: dict[str, str] | None = None, correction: str = "holm",
            family_scheme: str = "cell", tests: dict[str, str] | None = None, alpha: float = 0.05, resamples: int = 1000,
            seed: int = 0, worst: int = 10, truncated: str = "include") -> Analysis:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    logs = select_truncated(load_logs(directories), truncated)  # `--truncated`: analysis.loading.select_truncated
    timings["load"] = time.perf_counter() - start
    variants = variant_table(logs, labels)
    records = prepare(logs, variants)
    timings["variants"] = time.perf_counter() - start - sum(timings.values())
    metrics = cell_metrics(records, resamples=resamples, seed=seed, alpha=alpha)
    timings["metrics"] = time.perf_counter() - start - sum(timings.values())
    comparisons = compare(records, variants, metrics, correction=correction, family_scheme=family_scheme,
                          tests=tests, alpha=alpha)
    timings["statistics"] = time.perf_counter() - start - sum(timings.values())
    checks = audit(records, worst=worst)
    timings["audit"] = time.perf_counter() - start - sum(timings.values())
    attacks = Inputs(variants, metrics, comparisons, checks.checks).attacks
    gaps = gap_rows(records, variants, comparisons, attacks=attacks, resamples=resamples, seed=seed, alpha=alpha,
                    tests=tests)
    timings["gap closure"] = time.perf_counter() - start - sum(timings.values())
    return Analysis(logs, variants, records, metrics, comparisons, checks, gaps, timings)


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


def _renames(value: Any) -> dict[str, str]:
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}


def gallery(analysis: Analysis, count: int) -> list[dict[str, Any]]:
    """Up to `count` successful adversarial examples, spread over attacks and variants, side by side."""
    if count <= 0:
        return []
    inputs = analysis.inputs()
    attacks = {a: i for i, a in enumerate(inputs.attacks)}
    labels = {lab: i for i, lab in enumerate(inputs.labels)}
    successes = analysis.records.filter(pl.col("success")).sort(["example_id", "model", "seed"])
    groups = sorted(successes.partition_by(["attack", "label"], as_dict=True).items(),
                    key=lambda item: (attacks.get(item[0][0], len(attacks)), labels.get(item[0][1], len(labels))))
    # Round-robin over (attack, variant): each group's next example, a program not shown yet where possible.
    picked, used = [], set()
    queues = [group.to_dicts() for _, group in groups]
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                row = next((r for r in queue if r["example_id"] not in used), queue[0])
                queue.remove(row)
                used.add(row["example_id"])
                picked.append(row)
    if not picked:
        return []
    chosen = pl.DataFrame(picked, schema=successes.schema)
    code = analysis.logs.fetch_code(chosen)
    joined = chosen.join(code, on=["path", "example_id", "attack", "seed"], how="left", maintain_order="left")
    items = []
    for r in joined.iter_rows(named=True):
        if r["adversarial_code"] is None:
            continue
        renames = _renames(r["rename_map"])
        items.append({"title": f"{attack_name(r['attack'])} against {r['label']} ({r['base_model'] or r['model']}, "
                               f"{r['task']}), example {r['example_id']}",
                      "renames": ", ".join(f"{k} → {v}" for k, v in renames.items()) or "(none)",
                      "lines": side_by_side(r["original_code"] or "", r["adversarial_code"], renames)})
    return items


def write_report(analysis: Analysis, out: str | Path, formats: list[str], *, make_figures: bool = True,
                 gallery_size: int = 12, pdf: bool = True) -> dict[str, list[Path]]:
    """Write the report in `formats`; returns kind -> files written. With LaTeX and `pdf`, the
    report is compiled when pdflatex is installed ("pdf" in the result); why it was not is added
    to `analysis.report_notes`."""
    unknown = [name for name in formats if name not in REPORT_FORMATS]
    if unknown:
        raise UserError(f"unknown report format {unknown[0]!r}; formats: {', '.join(REPORT_FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    inputs = analysis.inputs()
    tables = build_tables(inputs)
    found = findings(inputs, tables)
    written: dict[str, list[Path]] = {}
    data = out / "data"
    data.mkdir(exist_ok=True)
    analysis.metrics.write_csv(data / "metrics.csv")
    _write_rows(analysis.comparisons.rows, data / "stats")
    if analysis.gaps:
        _write_rows(analysis.gaps, data / "gap")
    analysis.variants.drop("runs", strict=False).write_csv(data / "variants.csv")
    written["data"] = sorted(data.iterdir())
    if "csv" in formats:
        folder = out / "csv"
        folder.mkdir(exist_ok=True)
        for table in tables:
            write_csv(table, folder / f"{slug(table.name)}.csv")
        written["csv"] = sorted(folder.iterdir())
    if "md" in formats:
        written["md"] = _write_markdown(analysis, tables, found, out / "md")
    analysis.timings["tables"] = time.perf_counter() - start
    figure_files = figs.make_figures(inputs, out / "figures") if make_figures and ({"latex", "html"} & set(formats)) else []
    analysis.timings["figures"] = time.perf_counter() - start - analysis.timings["tables"]
    if "latex" in formats:
        written["latex"] = _write_latex(analysis, inputs, tables, found, figure_files, out / "latex")
    if "html" in formats:
        path = out / "report.html"
        path.write_text(_render_html(analysis, inputs, tables, found, figure_files, gallery_size), encoding="utf-8")
        written["html"] = [path]
    analysis.timings["render"] = time.perf_counter() - start - analysis.timings["tables"] - analysis.timings["figures"]
    if "latex" in formats and pdf:
        made, problem = compile_pdf(out / "latex")
        if made is not None:
            written["pdf"] = [made]
        else:
            analysis.report_notes.append(f"report.pdf not built: {problem}")
        analysis.timings["pdf"] = time.perf_counter() - start - sum(analysis.timings[k] for k in ("tables", "figures", "render"))
    return written


def _write_rows(rows: list[dict[str, Any]], stem: Path) -> None:
    safe = json_safe(rows)
    stem.with_suffix(".json").write_text(json.dumps(safe, indent=1), encoding="utf-8")
    frame = pl.DataFrame(safe, infer_schema_length=None)
    frame.select([c for c in frame.columns if frame[c].dtype != pl.List and frame[c].dtype != pl.Object]).write_csv(stem.with_suffix(".csv"))


def _write_markdown(analysis: Analysis, tables: list[Table], found: list[Finding], folder: Path) -> list[Path]:
    """One file per table and `report.md`: findings, measures and the main tables (appendix tables
    in their own files)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in tables:
        (folder / f"{slug(table.name)}.md").write_text(markdown_table(table), encoding="utf-8")
    lines = [f"# {TITLE}", "", md_escape(analysis.summary()), "", "## Findings", ""]
    lines += [f"- {md_escape(f.text)}" for f in found]
    lines += ["", "## Measures", ""] + [f"- **{md_escape(term)}**: {md_escape(text)}" for term, text in measures(analysis.inputs())]
    lines += [""]
    lines += [markdown_table(t) for t in tables if t.section == "main"]
    lines += ["## Appendix", ""] + [f"- [{t.title}]({slug(t.name)}.md)" for t in tables if t.section == "appendix"]
    (folder / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sorted(folder.iterdir())


def _finding_tex(finding: Finding) -> Tex:
    text = tex_escape(finding.text)
    if finding.ref:
        text = text.rstrip(".") + rf" (Table~\ref{{tab:{slug(finding.ref)}}})."
    return Tex(text)


def _write_latex(analysis: Analysis, inputs: Inputs, tables: list[Table], found: list[Finding], figure_files,
                 folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    env = latex_environment()
    sections: dict[str, list[dict[str, Any]]] = {"main": [], "appendix": []}
    for table in tables:
        for part in latex_parts(table):
            (folder / f"{part.file}.tex").write_text(latex_table(part, env), encoding="utf-8")
            sections[table.section].append({"file": part.file, "landscape": part.landscape})
    for figure in figure_files:
        shutil.copyfile(figure.paths["pdf"], folder / figure.paths["pdf"].name)
    (folder / "findings.tex").write_text(env.get_template("findings.tex.j2").render(
        findings=[_finding_tex(f) for f in found]), encoding="utf-8")
    (folder / "measures.tex").write_text(env.get_template("measures.tex.j2").render(
        measures=measures(inputs)), encoding="utf-8")
    (folder / "report-appendix.tex").write_text(env.get_template("appendix.tex.j2").render(
        parts=sections["appendix"]), encoding="utf-8")
    report = env.get_template("report.tex.j2").render(
        title=TITLE, generator=GENERATOR, generated=datetime.now(timezone.utc).strftime("%Y-%m-%d"), summary=analysis.summary(),
        notes=analysis.notes(), parts=sections["main"], appendix=bool(sections["appendix"]),
        figures=[{"name": slug(f.name), "pdf": Tex(f.paths["pdf"].name), "caption": f.caption} for f in figure_files],
        versions=versions())
    (folder / "report.tex").write_text(report, encoding="utf-8")
    return sorted(folder.iterdir())


HTML_PX_PER_IN = 140  # figures a bit larger on screen than in print (SVG: still sharp)
# The page's one stylesheet; the Content-Security-Policy allows exactly this style block (by hash).
CSS = (Path(__file__).resolve().parent.parent / "report_templates" / "report.css").read_text(encoding="utf-8")


def _render_html(analysis: Analysis, inputs: Inputs, tables: list[Table], found: list[Finding], figure_files,
                 gallery_size: int) -> str:
    figures = [{"name": slug(f.name), "caption": f.caption, "width": round(f.width_in * HTML_PX_PER_IN),
                "data_uri": "data:image/svg+xml;base64," + base64.b64encode(f.paths["svg"].read_bytes()).decode("ascii")}
               for f in figure_files]
    views = [{"table": t, "id": f"tab-{slug(t.name)}", "lines": display(t), "groups": header_groups(t.columns),
              "grouped": any(text for text, _ in header_groups(t.columns)), "long": len(t.rows) > 24}
             for t in tables]
    titles = {t.name: t.title for t in tables}
    examples = gallery(analysis, gallery_size)
    note = (f"{len(examples)} successful adversarial examples, taken in turn from each attack and variant (by example "
            "id, a program not shown yet where possible). "
            "Renamed identifiers are highlighted: the original names on the left, their replacements on the right; "
            "changed lines are shaded.")
    digest = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
    return html_environment().get_template("report.html.j2").render(
        title=TITLE, generator=GENERATOR, summary=analysis.summary(), notes=analysis.notes(), css=markupsafe.Markup(CSS),
        css_hash=digest,
        findings=[{"text": f.text, "ref": f"tab-{slug(f.ref)}" if f.ref else None, "ref_title": titles.get(f.ref, "")}
                  for f in found],
        measures=measures(inputs), main=[v for v in views if v["table"].section == "main"],
        appendix=[v for v in views if v["table"].section == "appendix"], figures=figures, gallery=examples,
        gallery_note=note, versions=versions())
