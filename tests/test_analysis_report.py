"""End to end: `analysis report|stats|audit` through the real CLI on synthetic logs.

The names and programs are hostile on purpose: LaTeX specials in the dataset and model names,
`</script><script>` in a model name and in the programs. The report must still compile with
pdflatex and the HTML page must stay inert.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.common.reports import REPORT_FORMATS

from analysis.cli import main
from analysis.synthetic import Study, Variant, write_study

ROOT = Path(__file__).resolve().parent.parent
EVIL = "</script><script>alert(1)</script>"
DATASET = "toy_set {50%} & co #1 ~^\\$"
MODEL = f"m_{EVIL}"
PROGRAM = 'def {name}(values):\n    marker = "' + EVIL + '"\n    return [v & 1 for v in values]\n'


def hostile_study(examples: int = 150) -> Study:
    return Study(dataset=DATASET, examples=examples, program=PROGRAM, variants=[
        Variant(MODEL),
        Variant(f"{MODEL}-prune", "prune", {"sparsity": 0.5}, 0.8, 0.25, 250.0),
        Variant(f"{MODEL}-int8", "quantize", {"bits": 8}, 0.84, 0.0, 125.0),
    ])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One full report (all formats, figures) written by the CLI in a fresh interpreter."""
    root = tmp_path_factory.mktemp("analysis")
    logs, out = root / "logs", root / "out"
    write_study(logs, hostile_study())
    write_study(logs, Study(task="clone", dataset="pairs", examples=60, attacks=("mhm",)), random_seed=1)
    code = (
        "import sys\n"
        "from analysis.cli import main\n"
        f"code = main(['report', '--logs', {str(logs)!r}, '--out', {str(out)!r}, '--bootstrap', '200'])\n"
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return logs, out, run.stdout


MAIN_TABLES = ("variants", "clean", "asr", "effort", "stats", "validity")
APPENDIX_TABLES = ("clean-full", "robustness-full", "tests", "validity-full", "ranking")
FIGURES = ("asr-size", "asr-heatmap", "robust-accuracy", "queries", "validity")


def test_report_writes_every_format_without_torch(report):
    _, out, stdout = report
    assert (out / "report.html").is_file() and (out / "latex" / "report.tex").is_file()
    for name in (*MAIN_TABLES, *APPENDIX_TABLES):
        assert (out / "csv" / f"{name}.csv").is_file() and (out / "md" / f"{name}.md").is_file()
        assert (out / "latex" / f"table-{name}.tex").is_file()
    for name in ("findings", "measures", "report-appendix"):
        assert (out / "latex" / f"{name}.tex").is_file()
    for figure in FIGURES:
        for ext in ("pdf", "svg", "png"):
            assert (out / "figures" / f"{figure}.{ext}").stat().st_size > 0
    assert b"/FontFile2" in (out / "figures" / "asr-size.pdf").read_bytes()  # TrueType embedded, not Type 3
    assert "timings:" in stdout
    written = {line.split(":")[0] for line in stdout.splitlines() if " files in " in line}
    assert set(REPORT_FORMATS) <= written  # the default is every format of the registry, each with a writer
    if shutil.which("pdflatex"):  # `analysis report` compiles the PDF itself and says where it is
        assert f"pdf: {out / 'latex' / 'report.pdf'}" in stdout and (out / "latex" / "report.pdf").stat().st_size > 10_000


def test_markdown_robustness_table_shows_attacks_as_column_groups_and_markers(report):
    _, out, _ = report
    text = (out / "md" / "asr.md").read_text()
    assert "| MHM ASR | MHM RA | ALERT ASR | ALERT RA |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "Pruned 50" in line]
    assert len(rows) == 2 and any("\\*" in line for line in rows)  # the vulnerable prune: marked, escaped
    summary = (out / "md" / "report.md").read_text()
    assert summary.index("## Findings") < summary.index("### Robustness") < summary.index("## Appendix")


def test_latex_escapes_and_compiles(report, tmp_path):
    _, out, _ = report
    table = (out / "latex" / "table-asr.tex").read_text()
    assert r"m\_\textless{}/script\textgreater{}\textless{}script\textgreater{}alert(1)" in table
    assert "resizebox" not in table and r"\small" in table
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (CI installs it in .ci/run: texlive-latex-base/-recommended/-fonts-recommended)")
    work = tmp_path / "latex"
    shutil.copytree(out / "latex", work)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=work,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (work / "report.pdf").stat().st_size > 10_000


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_inert(report):
    _, out, _ = report
    page = (out / "report.html").read_text()
    parser = _Tags()
    parser.feed(page)
    names = [t for t, _ in parser.tags]
    assert "script" not in names and "iframe" not in names and "link" not in names
    assert all(attrs.get("src", "data:").startswith("data:") for _, attrs in parser.tags)
    assert EVIL not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the model name and the programs, escaped
    assert page.count("<details") >= 3  # the gallery of side-by-side diffs
    assert '<mark class="old">' in page and '<mark class="new">' in page  # renamed identifiers, both sides
    policy = next(attrs["content"] for tag, attrs in parser.tags if attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy and "style-src 'sha256-" in policy


def test_stats_json_rows_carry_every_field(report, capsys):
    logs, _, _ = report
    assert main(["stats", "--logs", str(logs), "--json", "--correction", "bonferroni"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = payload["rows"]
    required = {"test", "n", "statistic", "p_raw", "p_adj", "effect", "magnitude", "correction", "family", "note"}
    assert rows and all(required <= set(r) for r in rows)
    assert {r["correction"] for r in rows} == {"bonferroni"}
    tests = {r["test"] for r in rows}
    assert {"Cochran's Q", "McNemar (mid-p)", "Wilcoxon signed-rank", "Friedman"} <= tests
    pruned = [r for r in rows if r["outcome"] == "attack success" and r["kind"] == "vs original"
              and r["variant"] == "Pruned 50 %" and r["task"] == "defect"]
    assert pruned and all(r["p_adj"] < 0.05 and r["effect"] > 0 for r in pruned)  # the injected vulnerability
    for r in rows:  # Bonferroni: p_adj = min(1, p * family size)
        if r["p_raw"] is not None:
            assert r["p_adj"] == pytest.approx(min(1.0, r["p_raw"] * r["family_size"]))


def test_missing_variant_gives_a_labelled_row(tmp_path, capsys):
    study = Study(examples=60)
    write_study(tmp_path, study)
    for run in tmp_path.glob("run-defect-1-alert-*"):  # the pruned model was never attacked by alert
        shutil.rmtree(run)
    assert main(["stats", "--logs", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    missing = [r for r in rows if r["attack"] == "alert" and r["note"] == "variant missing"]
    assert missing and all(r["p_raw"] is None and r["p_adj"] is None for r in missing)


def test_audit_lists_checks_reasons_and_worst(report, capsys):
    logs, _, _ = report
    assert main(["audit", "--logs", str(logs), "--worst", "3"]) == 0
    text = capsys.readouterr().out
    assert "| Compiles |" in text and "synthetic compiler error" in text and "failed checks" in text


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", "--logs", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["report", "--logs", str(tmp_path), "--out", str(tmp_path / "o"), "--format", "pdf"]) == 2


def test_gallery_marks_renamed_identifiers_but_not_the_same_word_in_comments_or_strings():
    from analysis.render import side_by_side

    original = "int f(int count) {\n    /* count items */\n    puts(\"count\"); return count + 1; // count\n}\n"
    adversarial = "int f(int total) {\n    /* count items */\n    puts(\"count\"); return total + 1; // count\n}\n"
    lines = side_by_side(original, adversarial, {"count": "total"})
    marked = [([s["text"] for s in line["left"] if s["changed"]], [s["text"] for s in line["right"] if s["changed"]])
              for line in lines]
    assert marked == [(["count"], ["total"]), ([], []), (["count"], ["total"]), ([], [])]
    # Lines that do not align word for word (reformatted) still mark every occurrence of the names.
    lines = side_by_side("x = count\n", "x  =  total  # reformatted\n", {"count": "total"})
    assert [s["text"] for s in lines[0]["left"] if s["changed"]] == ["count"]
    assert "".join(s["text"] for s in lines[0]["right"]) == "x  =  total  # reformatted"


def test_named_attack_runs_print_their_recipes_name():
    from analysis.tables import attack_name

    assert [attack_name(a) for a in ("alert", "alert-4x", "mhm-ns", "mhm-ns-10", "wir-random-transfer", "mystery-1")] == \
        ["ALERT", "ALERT-4x", "MHM-NS", "MHM-NS-10", "WIR-Random-transfer", "mystery-1"]


def test_a_flag_that_is_off_is_not_part_of_the_configuration():
    from analysis.variants import configuration

    assert configuration("distill", {"method": "distill", "target_mb": 0.5, "robust": False}) == "distill target_mb=0.5"
    assert configuration("distill", {"method": "distill", "target_mb": 0.5, "robust": True}) == \
        "distill robust=True target_mb=0.5"
