"""The report as a reader sees it: paper tables that fit the page, labels a paper would print,
findings whose numbers are the tables' numbers, figures without overprinted text, a PDF that
compiles cleanly in a real TeX Live, an HTML page checked in a real Chromium, and every string
of the logs typeset as text, never run as TeX.

Two studies: the quickstart's own logs (`runs/quickstart`, made by the README's first command;
skipped when absent) and the synthetic 3 tasks x 3 models x 4 variants x 4 attacks grid
(`analysis.synthetic.write_grid`), which is where a real study's layout breaks.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.figure import Figure

from analysis.cli import main
from analysis.figures import build_figures
from analysis.findings import findings
from analysis.render import latex_parts, table_width
from analysis.report import GENERATOR, analyse, write_report
from analysis.synthetic import Study, Variant, write_grid, write_study
from analysis.tables import REGISTRY, Cell, Column, build, build_tables, paper_table
from analysis.texwidth import LANDSCAPE_PT, LINEWIDTH_PT
from analysis.variants import human_label
from tests import browser
from tests.figure_checks import problems

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "runs" / "quickstart"
NUMBER = re.compile(r"(?<![\w.])[−+-]?\d[\d,]*(?:\.\d+)?")


# --------------------------------------------------------------------------- the two studies


def _study(analysis, out: Path) -> SimpleNamespace:
    inputs = analysis.inputs()
    tables = build_tables(inputs)
    return SimpleNamespace(analysis=analysis, out=out, tables={t.name: t for t in tables},
                           findings=findings(inputs, tables))


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> SimpleNamespace:
    """The 3 x 3 x 4 x 4 synthetic study, its whole report written (figures, LaTeX, PDF, HTML)."""
    root = tmp_path_factory.mktemp("grid")
    write_grid(root / "logs", examples=150)  # 100 leaves Wilcoxon tests of <= 13 tied pairs: slow permutation tests
    analysis = analyse([root / "logs"], resamples=100)
    write_report(analysis, root / "report", ["latex", "html", "csv", "md"], gallery_size=6)
    return _study(analysis, root / "report")


@pytest.fixture(scope="module")
def quickstart() -> SimpleNamespace:
    """The quickstart study's report (rebuilt from its logs when an older layout wrote it)."""
    logs = sorted(QUICKSTART.glob("cells/attack/*/logs"))
    if not logs:
        pytest.skip("no quickstart study in runs/quickstart (the README's first command makes it)")
    report = QUICKSTART / "report"
    html = report / "report.html"
    if not html.is_file() or GENERATOR not in html.read_text(encoding="utf-8"):
        run = subprocess.run([sys.executable, "-m", "analysis", "report", "--logs", *map(str, logs), "--format",
                              "latex,html", "--out", str(report)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
    return _study(analyse(logs, resamples=100), report)


STUDIES = ["quickstart", "grid"]


# --------------------------------------------------------------------------- labels


def test_labels_are_what_a_paper_prints():
    assert human_label("none", None) == "Original"
    assert human_label("prune", {"ratio": 0.5, "scope": "linear", "structured": None}) == "Pruned 50 %"
    assert human_label("prune", {"ratio": 0.3, "structured": "heads"}) == "Pruned 30 % (heads)"
    assert human_label("quantize", {"dtype": "int8", "scheme": "dynamic"}) == "Int8 (dynamic)"
    assert human_label("quantize", {"dtype": "fp16"}) == "FP16"
    assert human_label("quantize", {"bits": 8}) == "Int8"
    assert human_label("distill", {"target_mb": 0.5, "temperature": 2.0}) == "Distilled 0.5 MB"
    assert human_label("distill", {"layers": 3}) == "Distilled (3 layers)"
    assert human_label("lowrank", None) == "Lowrank"


def test_labels_can_be_overridden_on_the_command_line(tmp_path, capsys):
    write_study(tmp_path / "logs", Study(examples=40, attacks=("mhm",)))
    code = main(["report", "--logs", str(tmp_path / "logs"), "--out", str(tmp_path / "out"), "--format", "csv,md",
                 "--bootstrap", "0", "--label", "prune=Magnitude 50 %", "--label", "tiny-model-int8=INT8 weights",
                 "--label", "prnue=typo"])
    stdout = capsys.readouterr().out
    assert code == 0
    variants = (tmp_path / "out" / "csv" / "variants.csv").read_text()
    assert "Magnitude 50 %" in variants and "INT8 weights" in variants and "Pruned 50 %" not in variants
    assert "prune sparsity=0.5" in variants  # the configuration stays beside the label
    assert "note: --label prnue=…: no variant is called 'prnue'" in stdout
    assert main(["report", "--logs", str(tmp_path / "logs"), "--out", str(tmp_path / "o2"), "--label", "prune"]) == 2
    assert "write KEY=TEXT" in capsys.readouterr().err


def test_a_study_passes_its_labels_to_the_report(tmp_path):
    from engine.study.config import StudyConfigError, parse_config
    from engine.study.plan import expand
    from engine.study.stages import report_call
    from tests.study_fakes import fake_options

    raw = {"study": {"name": "x"}, "datasets": [{"builtin": "stdlib-attribution"}],
           "models": [{"name": "tiny", "base": "scratch:tiny"}], "compressions": [{"name": "int8", "method": "quantize"}],
           "attacks": [{"recipe": "wir-random", "n": 2, "budget": 3}], "labels": {"int8": "Int8 (dynamic)"}}
    plan = expand(parse_config(raw, tmp_path / "x.toml", fake_options))
    argv = report_call(plan.cells["report"], plan).argv
    assert argv[argv.index("--label") + 1] == "int8=Int8 (dynamic)"
    without = expand(parse_config({**raw, "labels": {}}, tmp_path / "x.toml", fake_options))
    assert without.cells["report"].key != plan.cells["report"].key and "--label" not in report_call(
        without.cells["report"], without).argv
    with pytest.raises(StudyConfigError, match=r"\[labels\]: 'int4' names no variant; use one of"):
        parse_config({**raw, "labels": {"int4": "x"}}, tmp_path / "x.toml", fake_options)


# --------------------------------------------------------------------------- tables and findings


def test_bold_marks_only_a_unique_best():
    columns = [Column("label", "Variant", "l"), Column("asr", "ASR", best="min")]
    rows = [{"label": Cell(name), "asr": Cell(text, value), "_group": group}
            for name, text, value, group in [("a", "20.0", 20.0, ("t", "m")), ("b", "20.0", 20.0, ("t", "m")),
                                             ("c", "30.0", 30.0, ("t", "m")), ("a", "12.0", 12.0, ("t", "n")),
                                             ("b", "15.0", 15.0, ("t", "n"))]]
    table = build("x", "X", "x", columns, rows)
    assert [r.cells[1].bold for r in table.rows] == [False, False, False, True, False]  # a tie is no best


def _numbers(text: str) -> list[str]:
    return [n.replace("−", "-").lstrip("+") for n in NUMBER.findall(text)]


@pytest.mark.parametrize("study", STUDIES)
def test_every_number_in_the_findings_is_a_number_of_its_table(study, request):
    s = request.getfixturevalue(study)
    kinds = [f.kind for f in s.findings]
    assert kinds[0] == "headline" and "validity" in kinds and "null" in kinds
    stats = s.tables["stats"]
    alpha = s.analysis.comparisons.alpha
    for finding in s.findings:
        table = s.tables[finding.ref]
        if finding.kind == "headline":  # counts of the stats table's rows
            tested = [r for r in stats.rows if r.cells[stats.column("p_adj")].value is not None]
            significant = [r for r in tested if r.cells[stats.column("p_adj")].value < alpha]
            up = [r for r in significant if r.cells[stats.column("delta")].text.startswith("+")]
            expected = {str(len(tested)), str(len(significant)), str(len(up)), str(len(significant) - len(up)), f"{alpha:g}"}
            assert set(_numbers(finding.text)) <= expected, finding.text
            continue
        if finding.kind == "more":
            assert _numbers(finding.text) == [str(len(finding.rows))]
            continue
        allowed = set(_numbers(" ".join(f"{c.group} {c.header}" for c in table.columns)))
        for i in finding.rows:
            row = table.rows[i]
            allowed |= {n for cell in row.cells for n in _numbers(cell.text)} | set(_numbers(" ".join(row.group)))
        numbers = _numbers(finding.text)
        assert numbers and set(numbers) <= allowed, (finding.text, sorted(allowed))
        if finding.kind == "significant":  # the sentence's p is that row's adjusted p, and it is significant
            row = table.rows[finding.rows[0]]
            assert row.cells[stats.column("p_adj")].value < alpha
            assert row.cells[stats.column("p_adj")].text in finding.text
            assert f"{row.cells[stats.column('attack')].text}'s success rate" in finding.text


def test_tables_fit_the_page_at_small_without_resizebox(grid):
    for table in grid.tables.values():
        for part in latex_parts(table):
            assert table_width(part.table) <= (LANDSCAPE_PT if part.landscape else LINEWIDTH_PT), part.file
            if table.section == "main":
                assert not part.landscape, f"{part.file}: landscape is for the appendix"
            text = (grid.out / "latex" / f"{part.file}.tex").read_text()
            assert "resizebox" not in text and r"\small" in text
            assert not any(size in text for size in (r"\tiny", r"\scriptsize", r"\footnotesize"))
    assert len(grid.tables["stats"].rows) == 3 * 3 * 4 * 3  # task x model x attack x compressed variant


def test_a_few_tall_rows_may_still_break_across_pages():
    """Eighteen variants whose configurations wrap to 8 lines each fill more than a page: the long
    table must be allowed to break between them (counting rows, it kept them together, and the rows
    past the page's end were lost: an overfull vbox)."""
    from analysis.render import _latex_body

    config = " ".join(f"option_{k}=value_{k}" for k in range(24))
    table = build("tall", "Tall", "caption", [Column("label", "Variant", "l"),
                                              Column("configuration", "Configuration", "l", wrap=17)],
                  [{"label": Cell(f"variant {i}"), "configuration": Cell(config), "_group": ("task", "model")}
                   for i in range(18)])
    (part,) = latex_parts(table)
    assert part.long
    rows = [line for line in _latex_body(part).splitlines() if line.startswith("{}variant")]
    assert len(rows) == 18 and sum(row.endswith(r" \\") for row in rows) >= 10
    short = build("short", "Short", "caption", [Column("label", "Variant", "l")],
                  [{"label": Cell(f"variant {i}"), "_group": ("task", "model")} for i in range(18)])
    (part,) = latex_parts(short)  # eighteen one-line rows stay together, as before
    assert not part.long or all(line.endswith(r"\\*") for line in _latex_body(part).splitlines()[:-1]
                                if line.startswith("{}variant"))


def test_markdown_report_has_the_main_tables(grid):
    page = (grid.out / "md" / "report.md").read_text()
    assert page.index("## Findings") < page.index("## Measures") < page.index("### Robustness")
    for table in grid.tables.values():
        if table.section == "main":
            assert f"### {table.title}" in page
    asr = grid.tables["asr"]
    lines = [line for line in page.splitlines() if line.startswith("| ")]
    for row in asr.rows[:8]:
        cells = [c.text + c.marker.replace("*", "\\*") for c in row.cells[1:]]
        assert any(all(f" {c} |" in line or f"**{c}**" in line for c in cells) for line in lines), cells


def test_a_new_paper_table_is_one_function(grid, tmp_path):
    @paper_table("main")
    def gap_table(inputs):
        columns = [Column("label", "Variant", "l"), Column("n", "Cells")]
        records = [{"label": Cell(label), "n": Cell("1", 1.0), "_group": ("all",)} for label in inputs.labels]
        return build("gap", "Gap closure", "Robust against standard variants.", columns, records, ("Scope",))

    try:
        names = [t.name for t in build_tables(grid.analysis.inputs())]
        assert "gap" in names and names.index("gap") < names.index("clean-full")
        write_report(grid.analysis, tmp_path, ["latex", "html", "md"], make_figures=False, pdf=False, gallery_size=0)
        assert r"\input{table-gap}" in (tmp_path / "latex" / "report.tex").read_text()
        assert 'id="tab-gap"' in (tmp_path / "report.html").read_text()
        assert "### Gap closure" in (tmp_path / "md" / "report.md").read_text()
    finally:
        REGISTRY[:] = [(section, builder) for section, builder in REGISTRY if builder is not gap_table]


# --------------------------------------------------------------------------- figures


def test_the_figure_check_finds_each_problem():
    fig = Figure(figsize=(7.5, 2))
    ax = fig.subplots()
    ax.text(0.5, 0.5, "overlapping text", fontsize=8)
    ax.text(0.52, 0.5, "overlapping text", fontsize=8)
    ax.text(1.6, 0.5, "off the canvas", fontsize=8, transform=ax.transAxes)
    ax.set_title("tiny", fontsize=5)
    found = problems(fig)
    assert any("overlaps" in p for p in found) and any("leaves the canvas" in p for p in found)
    assert any("5 pt" in p for p in found) and any("wide" in p for p in found)


@pytest.mark.parametrize("study", STUDIES)
def test_figures_have_no_overlapping_clipped_or_small_text(study, request):
    s = request.getfixturevalue(study)
    built = build_figures(s.analysis.inputs())
    assert {name for name, _, _ in built} == {"asr-size", "asr-heatmap", "robust-accuracy", "queries", "validity"}
    for name, _, fig in built:
        assert problems(fig) == [], name


def test_one_colour_per_variant_in_every_figure(grid):
    from matplotlib.colors import to_hex

    seen: dict[str, set] = {}
    for _, _, fig in build_figures(grid.analysis.inputs()):
        for legend in fig.legends:
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                colour = handle.get_color() if hasattr(handle, "get_marker") else handle.get_facecolor()
                seen.setdefault(text.get_text(), set()).add(to_hex(colour))
    assert set(seen) == {"Original", "Pruned 50 %", "Int8 (dynamic)", "Distilled 3 MB"}
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert len({next(iter(c)) for c in seen.values()}) == len(seen)  # and no two variants share one


# --------------------------------------------------------------------------- LaTeX and PDF


def _normalised(text: str) -> str:
    """Text as pdftotext gives it, made comparable: no line breaks or hyphenation, plain quotes."""
    return re.sub(r"[\s\-‐]+", "", text.replace("’", "'").replace("∆", "Δ"))


@pytest.mark.parametrize("study", STUDIES)
def test_latex_compiles_without_overfull_boxes_and_the_pdf_shows_the_numbers(study, request, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (CI installs it in .ci/run: texlive-latex-base/-recommended/-fonts-recommended)")
    s = request.getfixturevalue(study)
    work = tmp_path / "latex"
    shutil.copytree(s.out / "latex", work)
    for name in ("report.pdf", "report.aux", "report.log"):
        (work / name).unlink(missing_ok=True)
    for _ in range(2):
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=work,
                             capture_output=True, text=True, errors="replace", timeout=300)
        assert run.returncode == 0, run.stdout[-3000:]
    log = (work / "report.log").read_text(errors="replace")
    overfull = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert all(w <= 1.0 for w in overfull), [line for line in log.splitlines() if "Overfull" in line]
    assert "Overfull \\vbox" not in log, [line for line in log.splitlines() if "Overfull" in line]  # rows off the page
    assert "Float too large" not in log
    assert "undefined" not in log.lower().replace("undefined control", ""), [l for l in log.splitlines() if "undefined" in l]
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext not installed (Debian: poppler-utils; .ci/run installs it)")
    pages = int(re.search(r"Output written on report\.pdf \((\d+) pages?", log).group(1))
    print(f"{study}: report.pdf has {pages} pages")
    first = _normalised(subprocess.run(["pdftotext", "-f", "1", "-l", "1", "report.pdf", "-"], cwd=work,
                                       capture_output=True, text=True).stdout)
    everything = _normalised(subprocess.run(["pdftotext", "report.pdf", "-"], cwd=work, capture_output=True, text=True).stdout)
    for finding in s.findings[:3]:  # the headline and the strongest findings: on page 1
        assert _normalised(finding.text.rstrip(".")) in first, finding.text
    for finding in s.findings:
        assert _normalised(finding.text.rstrip(".")) in everything, finding.text
    layout = subprocess.run(["pdftotext", "-layout", "report.pdf", "-"], cwd=work, capture_output=True, text=True).stdout
    lines = {re.sub(r"[\s*∗]+", "", line) for line in layout.splitlines()}
    for name in ("asr", "stats", "clean"):  # each row on one line of the PDF, every cell in order
        for row in s.tables[name].rows[:6]:
            cells = [c.text for c in row.cells if c.text]
            if name == "stats":
                cells = cells[1:]  # the attack is printed on its first row only
            assert any("".join(cells).replace(" ", "") in line for line in lines), (name, cells)


# --------------------------------------------------------------------------- HTML in a browser


@pytest.mark.parametrize("study", STUDIES)
def test_html_reads_well_in_chromium_at_1280(study, request, tmp_path):
    why = browser.missing()
    if why:
        pytest.skip(why)
    s = request.getfixturevalue(study)
    shot = s.out / "screenshot.png" if study == "quickstart" else tmp_path / "screenshot.png"
    page = browser.open_page(s.out / "report.html", shot)
    assert page["scrollWidth"] <= page["innerWidth"], "the page scrolls sideways at 1280 px"
    assert page["images"] and all(i["complete"] and i["width"] > 0 for i in page["images"]), page["images"]
    assert page["console"] == []
    for table in page["tables"]:
        assert table["width"] <= table["room"] + 1 and table["right"] <= table["parentRight"] + 1, table
    assert all(abs(box["offset"]) <= 2 for box in page["sticky"]), page["sticky"]  # long tables: the header stays
    assert shot.stat().st_size > 50_000


# --------------------------------------------------------------------------- hostile logs


HOSTILE = "mhm}\\input{^^2fetc^^2fhostname}\\def\\y{"
LEAK = "x}\\input{secret}\\def\\z{"  # the same trick on a file we control, so a leak is unmistakable


def _hostile(value, text: str):
    """Every string in a manifest replaced by `text` (keys too, in the compression block)."""
    if isinstance(value, dict):
        return {k: _hostile(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_hostile(v, text) for v in value]
    return text if isinstance(value, str) else value


def test_hostile_strings_in_every_field_are_typeset_as_text(tmp_path):
    from engine.common.logschema import FIELDS, validate_record

    logs = tmp_path / "logs"
    write_study(logs, Study(examples=30, attacks=("mhm",), variants=[
        Variant("m"), Variant("m-prune", "prune", {"ratio": 0.5}, 0.8, 0.3, 2.0)]))
    strings = [f.name for f in FIELDS if f.type == "str" and f.name != "status"]
    text = HOSTILE + LEAK
    for run in sorted(logs.iterdir()):
        variant = "v" if "-1-" in run.name else "o"
        lines = []
        for line in (run / "records.jsonl").read_text().splitlines():
            record = json.loads(line)
            for name in strings:  # the same text in both runs where pairing needs equal values
                if record[name] is not None:
                    record[name] = text + {"example_id": record[name], "model": variant}.get(name, "")
            record["compression"] = "none" if variant == "o" else text
            if record["rename_map"] is not None:
                record["rename_map"] = {HOSTILE: LEAK}
            if record["validity_reasons"] is not None:
                record["validity_reasons"] = [f"compiles: stray '\\' {HOSTILE}", LEAK]
            validate_record(record)
            lines.append(json.dumps(record))
        (run / "records.jsonl").write_text("\n".join(lines) + "\n")
        manifest = _hostile(json.loads((run / "manifest.json").read_text()), text)
        model = manifest["model"]
        model["name"], model["fingerprint"] = text + variant, text + "fp-" + variant
        model["compression"] = {**model["compression"], HOSTILE: LEAK, "method": "none" if variant == "o" else text,
                                "parent": None if variant == "o" else text + "fp-o"}
        (run / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    assert main(["report", "--logs", str(logs), "--out", str(out), "--bootstrap", "0", "--no-pdf"]) == 0
    for tex in (out / "latex").glob("*.tex"):
        text = tex.read_text()
        assert "\\input{^^" not in text and "\\input{secret}" not in text and "^^2f" not in text, tex.name
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    work = tmp_path / "latex"
    shutil.copytree(out / "latex", work)
    (work / "secret.tex").write_text("LEAKED-SECRET-4711\n")
    for _ in range(2):  # plain pdflatex, without the paranoid file access `analysis report` adds
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=work,
                             capture_output=True, text=True, errors="replace", timeout=300)
        assert run.returncode == 0, run.stdout[-3000:]
    assert "secret.tex" not in (work / "report.log").read_text(errors="replace")
    assert "/etc/hostname" not in (work / "report.log").read_text(errors="replace")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "report.pdf", "-"], cwd=work, capture_output=True, text=True).stdout
        assert "LEAKED-SECRET" not in text
        assert "\\input{^^2fetc^^2fhostname}" in text.replace("\n", "")  # printed, literally


def test_variant_without_original_and_backslash_reasons_give_a_report(tmp_path, capsys):
    write_study(tmp_path / "logs", Study(examples=40, attacks=("mhm",)))
    for run in (tmp_path / "logs").glob("run-defect-0-*"):  # the original's runs are gone
        shutil.rmtree(run)
    for path in (tmp_path / "logs").glob("*/records.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for r in records:
            if r["validity_reasons"] is not None:
                r["validity_reasons"] = ["compiles: stray '\\' in program", "parses: bad \\x escape"]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["report", "--logs", str(tmp_path / "logs"), "--out", str(tmp_path / "out"), "--bootstrap", "0",
                 "--format", "html,md", "--gallery", "2"]) == 0
    stdout = capsys.readouterr().out
    assert "has no original (compression none) to compare with" in stdout
    assert "no original" in (tmp_path / "out" / "md" / "asr.md").read_text()
    for command in ("stats", "audit"):
        assert main([command, "--logs", str(tmp_path / "logs")]) == 0
    assert "stray '\\' in program" in capsys.readouterr().out
