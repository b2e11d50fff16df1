"""Turn `Table` row models into LaTeX, HTML, CSV and Markdown.

Two Jinja2 environments over `report_templates/`: LaTeX with `\\BLOCK{}`/`\\VAR{}` delimiters,
no autoescape and a mandatory `tex` filter; HTML with autoescape on. Escaping happens here and
in the templates only, never in the row models, so every renderer escapes the same plain text.
"""
from __future__ import annotations

import csv
import difflib
import re
from pathlib import Path
from typing import Any

import jinja2

from analysis.tables import Table

TEMPLATES = Path(__file__).resolve().parent.parent / "report_templates"

_TEX_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "^": r"\textasciicircum{}",
    "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "δ": r"$\delta$", "Â": r"\^{A}", "χ": r"$\chi$", "η": r"$\eta$", "α": r"$\alpha$", "²": r"\textsuperscript{2}",
    "±": r"$\pm$", "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$", "–": "--", "—": "---", "−": "--", "…": r"\ldots{}",
    "†": r"\dag{}", "‡": r"\ddag{}", "∞": r"$\infty$", "\n": " ", "\r": " ", "\t": " ",
}
_TEX_PATTERN = re.compile("|".join(re.escape(k) for k in _TEX_SPECIALS))


def tex_escape(value: Any) -> str:
    """Escape text for LaTeX in one regex pass; characters beyond Latin-1 that T1 cannot show become '?'."""
    text = _TEX_PATTERN.sub(lambda m: _TEX_SPECIALS[m.group(0)], str(value))
    return "".join(ch if ord(ch) < 256 else "?" for ch in text)


def latex_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False, undefined=jinja2.StrictUndefined,
        block_start_string=r"\BLOCK{", block_end_string="}", variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}", line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["tex"] = tex_escape
    return env


def html_environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


# Wrapped column widths (cm) of the long statistics table, so that it fits a landscape A4 page.
_WRAP_CM = {"cell": 1.9, "outcome": 1.5, "comparison": 2.1, "test": 1.5, "effect": 1.7, "effect_ci": 1.5,
            "discordant": 1.4, "delta": 1.3, "a12": 1.3, "family": 2.4, "note": 1.8}


def latex_table(table: Table, env: jinja2.Environment | None = None) -> str:
    env = env or latex_environment()
    spec = "".join(rf">{{\raggedright\arraybackslash}}p{{{_WRAP_CM[c.key]}cm}}" if table.long and c.key in _WRAP_CM
                   else c.align for c in table.columns)
    return env.get_template("table.tex.j2").render(table=table, spec=spec, wide=len(table.columns) > 8)


def markdown_table(table: Table) -> str:
    def cell(c) -> str:
        text = re.sub(r"([\\`*_|<>])", r"\\\1", c.text) + (re.sub(r"\*", r"\\*", c.marker) if c.marker else "")
        return f"**{text}**" if c.bold and text else text

    header = "| " + " | ".join(re.sub(r"([\\|*_])", r"\\\1", c.header) for c in table.columns) + " |"
    align = "|" + "|".join("---:" if c.align == "r" else ":---" for c in table.columns) + "|"
    rows = ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    return f"### {table.title}\n\n{table.caption}\n\n" + "\n".join([header, align, *rows]) + "\n"


def write_csv(table: Table, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.header for c in table.columns])
        for row in table.rows:
            writer.writerow([c.text + c.marker for c in row])


def _segments(a: str, b: str) -> tuple[list[dict], list[dict]]:
    """Within-line differences as (text, changed) segments for both sides."""
    left, right = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if a[i1:i2]:
            left.append({"text": a[i1:i2], "changed": tag != "equal"})
        if b[j1:j2]:
            right.append({"text": b[j1:j2], "changed": tag != "equal"})
    return left, right


def side_by_side(original: str, adversarial: str) -> list[dict[str, Any]]:
    """Aligned line pairs of two programs, changed lines and characters marked."""
    a, b = original.splitlines(), adversarial.splitlines()
    lines = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            left = a[i1 + k] if i1 + k < i2 else ""
            right = b[j1 + k] if j1 + k < j2 else ""
            if tag == "equal":
                segs = ([{"text": left, "changed": False}], [{"text": right, "changed": False}])
            else:
                segs = _segments(left, right)
            lines.append({"left_number": i1 + k + 1 if i1 + k < i2 else "", "right_number": j1 + k + 1 if j1 + k < j2 else "",
                          "left": segs[0], "right": segs[1], "changed": tag != "equal"})
    return lines
