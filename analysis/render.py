"""Turn `Table` row models into LaTeX, HTML, CSV and Markdown.

Escaping happens here and only here. LaTeX: every string that reaches a `.tex` file passes
through `tex_escape` — the Jinja2 environment escapes every `\\VAR{}` by default (`finalize`),
and only fragments this module builds itself are marked `Tex` (already LaTeX); table bodies are
assembled here from escaped cells. HTML: Jinja2's autoescape. File names and LaTeX labels are
slugs we make (`slug`), never data.

LaTeX tables are laid out before they are written: `latex_parts` estimates the width of every
column in the report's font (`texwidth`) and keeps a table whole at `\\small` when it fits the
text width, else splits its column groups (the attacks) over several tables, else sets it in
landscape; never `\\resizebox`. Tables taller than a page become `longtable`s.
"""
from __future__ import annotations

import csv
import difflib
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2

from analysis import texwidth as tw
from analysis.tables import Column, Row, Table

TEMPLATES = Path(__file__).resolve().parent.parent / "report_templates"


# --------------------------------------------------------------------------- escaping


class Tex(str):
    """A string that is already LaTeX (built by this module from escaped parts): not escaped again."""


_TEX_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "^": r"\textasciicircum{}",
    "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    # `[` and `*` right after a row end would be read as `\\[len]` / `\\*`; braces make them plain text.
    "[": "{[}", "]": "{]}", "*": "{*}",
    "δ": r"$\delta$", "Δ": r"$\Delta$", "Â": r"\^{A}", "χ": r"$\chi$", "η": r"$\eta$", "α": r"$\alpha$",
    "²": r"\textsuperscript{2}", "±": r"$\pm$", "×": r"$\times$", "÷": r"$\div$", "≤": r"$\leq$", "≥": r"$\geq$",
    "√": r"$\surd$", "·": r"$\cdot$", "→": r"$\rightarrow$", "–": "--", "—": "---", "−": r"\textminus{}",
    "…": r"\ldots{}", "†": r"\dag{}", "‡": r"\ddag{}", "∞": r"$\infty$", "\u00a0": "~",
    "\n": " ", "\r": " ", "\t": " ",
}
_TEX_SPLIT = re.compile("(" + "|".join(re.escape(k) for k in _TEX_SPECIALS) + ")")
# Besides ASCII, only the Latin-1 letters are passed through (T1 + inputenc typeset them); any
# other character, control characters included, becomes "?" rather than a compile error.
_TEX_PLAIN = re.compile(r"[^\x20-\x7e\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff]")


def tex_escape(value: Any) -> str:
    """Plain text -> LaTeX that typesets exactly that text, and nothing else.

    The ten specials, `< > |`, brackets and `*` are replaced in one regex pass; `^` becomes
    `\\textasciicircum{}`, so no `^^` sequence (TeX's character-code escape) survives; a few
    Greek and math symbols map to their LaTeX form; characters T1 cannot show become "?".
    """
    out = []
    for piece in _TEX_SPLIT.split(str(value)):
        if piece in _TEX_SPECIALS:
            out.append(_TEX_SPECIALS[piece])
        elif piece:
            out.append(_TEX_PLAIN.sub("?", piece))
    return "".join(out)


def _finalize(value: Any) -> str:
    return value if isinstance(value, Tex) else tex_escape(value)


def slug(text: str) -> str:
    """A file-name and label-safe id: lower-case letters, digits and single dashes."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def latex_environment() -> jinja2.Environment:
    """LaTeX templates: `\\BLOCK{}`/`\\VAR{}` delimiters; every `\\VAR{}` is escaped unless it is `Tex`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False, undefined=jinja2.StrictUndefined,
        block_start_string=r"\BLOCK{", block_end_string="}", variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}", line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, finalize=_finalize)
    env.filters["tex"] = lambda value: Tex(tex_escape(value))
    return env


def html_environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


# --------------------------------------------------------------------------- shared display logic


def group_title(row: Row) -> str:
    return " · ".join(part for part in row.group if part)


def header_groups(columns: list[Column]) -> list[tuple[str, int]]:
    """Spanning headers as (text, number of columns) runs; "" where a column has no group."""
    runs: list[tuple[str, int]] = []
    for column in columns:
        if runs and column.group and runs[-1][0] == column.group:
            runs[-1] = (column.group, runs[-1][1] + 1)
        else:
            runs.append((column.group, 1))
    return runs


def display(table: Table) -> list[dict[str, Any]]:
    """The table as it is read: a heading line where a row group starts, then its rows, with
    values of `repeat=False` columns shown only where they change within the group."""
    lines: list[dict[str, Any]] = []
    previous_group = None
    previous: list[str] = []
    for row in table.rows:
        if row.group != previous_group:
            if group_title(row):
                lines.append({"heading": group_title(row)})
            previous_group, previous = row.group, []
        texts = []
        for j, (column, cell) in enumerate(zip(table.columns, row.cells)):
            same = not column.repeat and j < len(previous) and previous[j] == cell.text
            texts.append("" if same else cell.text)
        previous = [c.text for c in row.cells]
        block = next((c.text for c, col in zip(row.cells, table.columns) if not col.repeat), None)
        lines.append({"cells": [{"text": t, "bold": c.bold and bool(t), "marker": c.marker, "align": col.align}
                                for t, c, col in zip(texts, row.cells, table.columns)],
                      "group": row.group, "block": (row.group, block)})
    return lines


BLOCK_LINES = 18  # a row group taller than this (text lines) may break across pages between its blocks


def _row_lines(texts: list[str], wraps: list[tuple[int, float]]) -> int:
    """Text lines one row takes: its tallest wrapped cell (`wraps`: column index, width in pt)."""
    return max([1, *(tw.lines_needed(texts[j], width) for j, width in wraps)])


def _wraps(table: Table) -> list[tuple[int, float]]:
    return [(j, c.wrap * tw.SMALL_PT) for j, c in enumerate(table.columns) if c.wrap]


def _breaks(lines: list[dict[str, Any]], wraps: list[tuple[int, float]]) -> list[bool]:
    """Whether a long table may break to the next page after each line: never after a heading;
    between row groups; inside a row group taller than `BLOCK_LINES` where a new block (e.g. the
    next attack) starts; inside a block only when the block itself is that tall. So a page does
    not begin with a stray row cut off from its kind unless the kind fills pages. Heights are text
    lines, wrapped cells counted: a few rows of long wrapped text (the variants' configurations)
    can fill more than a page."""
    sizes: dict[tuple, int] = {}
    for line in lines:
        if "cells" in line:
            height = _row_lines([c["text"] for c in line["cells"]], wraps)
            for key in (line["group"], line["block"]):
                sizes[key] = sizes.get(key, 0) + height
    allowed = []
    for line, following in zip(lines, [*lines[1:], None]):
        if "heading" in line or following is None:
            allowed.append(following is None)
        elif "heading" in following or following["group"] != line["group"]:
            allowed.append(True)
        elif following["block"] != line["block"]:
            allowed.append(sizes[line["group"]] > BLOCK_LINES)
        else:
            allowed.append(sizes[line["block"]] > BLOCK_LINES)
    return allowed


# --------------------------------------------------------------------------- LaTeX layout


@dataclass
class LatexPart:
    """One LaTeX table (a whole `Table` or some of its column groups), laid out."""

    table: Table
    file: str  # table-<name>[-k] (no extension)
    label: str  # tab:<name>[-k]
    caption: str
    landscape: bool
    long: bool
    widths: list[float] = field(default_factory=list)  # pt, per column

    def body(self) -> Tex:
        return Tex(_latex_body(self))


def _mark_reserve(column: Column, table: Table) -> float:
    if not column.marks:
        return 0.0
    j = table.columns.index(column)
    return max((tw.text_pt(r.cells[j].marker, tw.MARK_PT) for r in table.rows), default=0.0)


def column_widths(table: Table) -> list[float]:
    """Width (pt) of each column at \\small: its widest header or cell (plus room for marks), a
    wrapped column its set width, and a share of any spanning header wider than its columns."""
    widths = []
    for j, column in enumerate(table.columns):
        if column.wrap:
            widths.append(column.wrap * tw.SMALL_PT)
            continue
        texts = [column.header, *(row.cells[j].text for row in table.rows)]
        widths.append(max(tw.text_pt(t) for t in texts) + _mark_reserve(column, table))
    start = 0
    for text, span in header_groups(table.columns):
        inner = sum(widths[start:start + span]) + 2 * tw.TABCOLSEP_PT * (span - 1)
        extra = tw.text_pt(text) - inner
        if text and extra > 0:
            for j in range(start, start + span):
                widths[j] += extra / span
        start += span
    return widths


def _natural(table: Table) -> list[float]:
    """Unwrapped width (pt) of each column's widest text."""
    return [max(tw.text_pt(t) for t in [c.header, *(r.cells[j].text for r in table.rows)])
            for j, c in enumerate(table.columns)]


def table_width(table: Table) -> float:
    """Estimated width (pt) of the typeset table, spanning headers and group headings included."""
    widths = column_widths(table)
    total = sum(widths) + 2 * tw.TABCOLSEP_PT * len(widths)
    headings = [tw.text_pt(group_title(r), tw.SMALL_PT) for r in table.rows if group_title(r)]
    return max([total, *(h + 2 * tw.TABCOLSEP_PT for h in headings)])


MIN_WRAP_EM = 4.0


def _fit_wraps(table: Table, width: float) -> Table:
    """Widths of the wrapped columns for a table `width` wide: each column's unwrapped width when
    all fit; else the free room shared max-min fairly (the narrowest columns get their whole
    width, so short texts stay on one line, and the longest wrap), at least `MIN_WRAP_EM`."""
    wraps = [j for j, c in enumerate(table.columns) if c.wrap]
    if not wraps:
        return table
    natural = _natural(table)
    fixed = table_width(replace(table, columns=[replace(c, wrap=0.01) if c.wrap else c for c in table.columns]))
    free = max(0.0, width - fixed - 2.0 - len(wraps))  # room for rounding each width up to 0.1 em
    columns = list(table.columns)
    ordered = sorted(wraps, key=lambda j: natural[j])
    for k, j in enumerate(ordered):
        share = free / (len(ordered) - k)
        given = max(min(natural[j], share), min(natural[j], MIN_WRAP_EM * tw.SMALL_PT))
        free -= given
        columns[j] = replace(columns[j], wrap=math.ceil(given / tw.SMALL_PT * 10) / 10)
    return replace(table, columns=columns)


def _lines(table: Table) -> int:
    """Text lines the table body takes (wrapped cells count their lines; headings one each)."""
    total = len({r.group for r in table.rows if group_title(r)})
    wraps = _wraps(table)
    return total + sum(_row_lines([c.text for c in row.cells], wraps) for row in table.rows)


def _subset(table: Table, keep: list[int]) -> Table:
    return replace(table, columns=[table.columns[j] for j in keep],
                   rows=[Row([r.cells[j] for j in keep], r.group) for r in table.rows])


def _split(table: Table, width: float) -> list[tuple[Table, list[str]]] | None:
    """The table's column groups spread over as few tables as fit `width`, each repeating the
    ungrouped (label) columns; None when even one group per table is too wide."""
    lead = [j for j, c in enumerate(table.columns) if not c.group]
    runs: list[list[int]] = []
    for j, column in enumerate(table.columns):
        if column.group:
            if runs and table.columns[runs[-1][0]].group == column.group:
                runs[-1].append(j)
            else:
                runs.append([j])
    if len(runs) < 2:
        return None
    for parts in range(2, len(runs) + 1):
        size = math.ceil(len(runs) / parts)
        chunks = [runs[i:i + size] for i in range(0, len(runs), size)]
        made = [(_subset(table, lead + [j for run in chunk for j in run]),
                 [table.columns[run[0]].group for run in chunk]) for chunk in chunks]
        if all(table_width(t) <= width for t, _ in made):
            return made
    return None


LINES_PER_PAGE = {False: 52, True: 30}  # body lines of a float that still fits one page (portrait, landscape)


def latex_parts(table: Table) -> list[LatexPart]:
    """Lay `table` out: whole if it fits the text width at \\small, else split by column group
    (main tables) or landscape (appendix tables, or when a split cannot fit), else both."""
    pieces: list[tuple[Table, list[str]]] = [(table, [])]
    landscape = False
    if table_width(table) > tw.LINEWIDTH_PT:
        split = _split(table, tw.LINEWIDTH_PT) if table.section == "main" else None
        if split:
            pieces = split
        else:
            landscape = True
            if table_width(table) > tw.LANDSCAPE_PT:
                pieces = _split(table, tw.LANDSCAPE_PT) or pieces
    parts = []
    for k, (piece, groups) in enumerate(pieces, 1):
        piece = _fit_wraps(piece, tw.LANDSCAPE_PT if landscape else tw.LINEWIDTH_PT)
        suffix = "" if k == 1 else f"-{k}"
        caption = table.caption
        if len(pieces) > 1:
            caption = f"{caption} Part {k} of {len(pieces)}: {', '.join(groups)}."
        parts.append(LatexPart(piece, f"table-{slug(table.name)}{suffix}", f"tab:{slug(table.name)}{suffix}", caption,
                               landscape, _lines(piece) > LINES_PER_PAGE[landscape], column_widths(piece)))
    return parts


def _spec(part: LatexPart) -> str:
    natural = column_widths(replace(part.table, columns=[replace(c, group="") for c in part.table.columns]))
    specs = []
    for column, width, plain in zip(part.table.columns, part.widths, natural):
        reserve = _mark_reserve(column, part.table)
        if column.wrap:
            spec = rf">{{\raggedright\arraybackslash}}p{{{column.wrap:g}em}}"
        elif width > plain + 0.05:  # widened for a spanning header: spread the room evenly
            align = r"\raggedleft" if column.align == "r" else r"\raggedright"
            spec = rf">{{{align}\arraybackslash}}p{{{width - reserve:.1f}pt}}"
        else:
            spec = column.align
        if reserve:
            spec += rf"@{{\hspace{{\dimexpr\tabcolsep+{reserve:.1f}pt\relax}}}}"
        specs.append(spec)
    return "".join(specs)


def _cell_tex(cell: dict[str, Any]) -> str:
    body = tex_escape(cell["text"])
    if cell["bold"]:
        body = rf"\textbf{{{body}}}"
    if cell["marker"] and cell["text"]:
        body += rf"\rlap{{\textsuperscript{{{tex_escape(cell['marker'])}}}}}"
    return "{}" + body  # "{}" first: a cell text can never continue the previous row's `\\`


def _header_tex(table: Table) -> str:
    lines = []
    runs = header_groups(table.columns)
    if any(text for text, _ in runs):
        cells, rules, start = [], [], 1
        for text, span in runs:
            cells.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(text)}}}" if text else "")
            if text:
                rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        lines.append(" & ".join(cells) + r" \\")
        lines.append("".join(rules))
    lines.append(" & ".join("{}" + tex_escape(c.header) for c in table.columns) + r" \\")
    return "\n".join(lines)


def _latex_body(part: LatexPart) -> str:
    table = part.table
    n = len(table.columns)
    header = _header_tex(table)
    rows = []
    lines = display(table)
    for i, (line, may_break) in enumerate(zip(lines, _breaks(lines, _wraps(table)))):
        end = r" \\" if may_break or not part.long else r" \\*"
        if "heading" in line:
            if i:
                rows.append(r"\midrule")
            rows.append(rf"\multicolumn{{{n}}}{{@{{}}l}}{{\textit{{{tex_escape(line['heading'])}}}}}" + end)
        else:
            rows.append(" & ".join(_cell_tex(c) for c in line["cells"]) + end)
    caption = tex_escape(part.caption)
    spec = _spec(part)
    size = rf"\small\setlength{{\tabcolsep}}{{{tw.TABCOLSEP_PT:g}pt}}"
    if part.long:
        return "\n".join([
            rf"{{{size}\setlength{{\LTcapwidth}}{{\linewidth}}",
            rf"\begin{{longtable}}{{{spec}}}", rf"\caption{{{caption}}}\label{{{part.label}}} \\", r"\toprule", header,
            r"\midrule", r"\endfirsthead",
            rf"\multicolumn{{{n}}}{{@{{}}l}}{{\textit{{Table \ref{{{part.label}}} (continued)}}}} \\", r"\toprule",
            header, r"\midrule", r"\endhead", r"\midrule",
            rf"\multicolumn{{{n}}}{{r@{{}}}}{{\textit{{continued on the next page}}}} \\", r"\endfoot", r"\bottomrule",
            r"\endlastfoot", *rows, r"\end{longtable}}"])
    return "\n".join([
        r"\begin{table}[htbp]", rf"\centering{size}", rf"\caption{{{caption}}}\label{{{part.label}}}",
        rf"\begin{{tabular}}{{{spec}}}", r"\toprule", header, r"\midrule", *rows, r"\bottomrule", r"\end{tabular}",
        r"\end{table}"])


def latex_table(part: LatexPart, env: jinja2.Environment | None = None) -> str:
    env = env or latex_environment()
    return env.get_template("table.tex.j2").render(part=part)


# --------------------------------------------------------------------------- Markdown and CSV


def md_escape(text: str) -> str:
    """Markdown text that shows exactly `text` (no emphasis from a "*" mark, no table cell from a "|")."""
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", text)


def markdown_table(table: Table) -> str:
    """A GitHub table: spanning headers folded into the column headers, the row group in the first column."""
    grouped = any(group_title(r) for r in table.rows)
    headers = [f"{c.group} {c.header}".strip() for c in table.columns]
    if grouped:
        headers = [" · ".join(table.group_headers) or "Group", *headers]
    align = ([":---"] if grouped else []) + ["---:" if c.align == "r" else ":---" for c in table.columns]
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    heading = ""
    for line in display(table):
        if "heading" in line:
            heading = line["heading"]
            continue
        cells = []
        for c in line["cells"]:
            value = md_escape(c["text"]) + (md_escape(c["marker"]) if c["marker"] and c["text"] else "")
            cells.append(f"**{value}**" if c["bold"] and value else value)
        lines.append("| " + " | ".join(([md_escape(heading)] if grouped else []) + cells) + " |")
        heading = ""
    return f"### {md_escape(table.title)}\n\n{md_escape(table.caption)}\n\n" + "\n".join(lines) + "\n"


def write_csv(table: Table, path: Path) -> None:
    """Every row in full (group parts as leading columns, every value repeated, marks appended)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*table.group_headers, *(f"{c.group} {c.header}".strip() for c in table.columns)])
        for row in table.rows:
            group = list(row.group) + [""] * (len(table.group_headers) - len(row.group))
            writer.writerow([*group[:len(table.group_headers)], *(c.text + c.marker for c in row.cells)])


# --------------------------------------------------------------------------- gallery


def _segments(a: str, b: str) -> tuple[list[dict], list[dict]]:
    """Within-line differences as (text, changed) segments for both sides."""
    left, right = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if a[i1:i2]:
            left.append({"text": a[i1:i2], "changed": tag != "equal"})
        if b[j1:j2]:
            right.append({"text": b[j1:j2], "changed": tag != "equal"})
    return left, right


def _identifier_pattern(names: list[str]) -> re.Pattern | None:
    names = sorted({n for n in names if n}, key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"(?<![\w$])(" + "|".join(re.escape(n) for n in names) + r")(?![\w$])")


def _marked(line: str, pattern: re.Pattern | None) -> list[dict]:
    """A line as segments, the identifiers `pattern` matches marked."""
    if pattern is None:
        return [{"text": line, "changed": False}]
    segments, last = [], 0
    for match in pattern.finditer(line):
        if match.start() > last:
            segments.append({"text": line[last:match.start()], "changed": False})
        segments.append({"text": match.group(0), "changed": True})
        last = match.end()
    if last < len(line):
        segments.append({"text": line[last:], "changed": False})
    return segments


_WORDS = re.compile(r"[\w$]+|[^\w$]+")


def _renamed_tokens(left: str, right: str, renames: dict[str, str]) -> tuple[list[dict], list[dict]] | None:
    """Mark only the identifiers the rename changed: a rename replaces whole words, so the two
    lines split into the same number of word/non-word runs, and a run is marked where the left
    one is a renamed name and the right one its replacement. The same name inside a comment or a
    string is left as it is, so it is not marked. None when the lines do not align that way (the
    caller then marks every occurrence of the names)."""
    a, b = _WORDS.findall(left), _WORDS.findall(right)
    if len(a) != len(b):
        return None
    pairs = [(x, y, x != y and renames.get(x) == y) for x, y in zip(a, b)]
    if any(x != y and not changed for x, y, changed in pairs):
        return None
    return ([{"text": x, "changed": changed} for x, _, changed in pairs],
            [{"text": y, "changed": changed} for _, y, changed in pairs])


def side_by_side(original: str, adversarial: str, renames: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Aligned line pairs of two programs. With a rename map, the renamed identifiers are marked
    (old names on the left, new names on the right); without one, the changed characters."""
    a, b = original.splitlines(), adversarial.splitlines()
    old = _identifier_pattern(list(renames)) if renames else None
    new = _identifier_pattern([str(v) for v in renames.values()]) if renames else None
    lines = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            left = a[i1 + k] if i1 + k < i2 else ""
            right = b[j1 + k] if j1 + k < j2 else ""
            if renames:
                segs = _renamed_tokens(left, right, renames) or (_marked(left, old), _marked(right, new))
            elif tag == "equal":
                segs = ([{"text": left, "changed": False}], [{"text": right, "changed": False}])
            else:
                segs = _segments(left, right)
            lines.append({"left_number": i1 + k + 1 if i1 + k < i2 else "", "right_number": j1 + k + 1 if j1 + k < j2 else "",
                          "left": segs[0], "right": segs[1], "changed": tag != "equal"})
    return lines
