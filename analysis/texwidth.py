"""How wide text comes out in the report's LaTeX font, to lay tables out before compiling them.

The report sets its text in Times (`mathptmx`); tables are `\\small` (9 pt in a 10 pt document).
Widths come from the Adobe font metrics of Times-Bold that matplotlib ships (bold is the wider
cut, so an estimate errs towards "too wide" and a table is split rather than overfull); a
character outside ASCII counts 0.6 em. The LaTeX compile test (Overfull \\hbox) checks the
estimates against the real thing.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib

SMALL_PT = 9.0  # \small in a 10 pt article
MARK_PT = 6.0  # superscript size at \small
TABCOLSEP_PT = 4.0  # set by every table the report writes
MM = 72.27 / 25.4
# A4 with 2 cm margins: the geometry report.tex sets.
LINEWIDTH_PT = (210 - 40) * MM
LANDSCAPE_PT = (297 - 40) * MM
TEXTHEIGHT_PT = (297 - 40) * MM
DEFAULT_EM = 0.6


@lru_cache(maxsize=1)
def _widths() -> dict[str, float]:
    """Character -> advance width in em (1000 AFM units), from Times-Bold's AFM file."""
    path = Path(matplotlib.get_data_path()) / "fonts" / "afm" / "ptmb8a.afm"
    widths: dict[str, float] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if not line.startswith("C "):
            continue
        fields = dict(part.strip().split(" ", 1) for part in line.split(";") if part.strip().count(" ") >= 1)
        code = int(fields["C"])
        if 32 <= code < 127:
            widths[chr(code)] = float(fields["WX"]) / 1000.0
    return widths


def text_pt(text: str, size: float = SMALL_PT) -> float:
    """Width of `text` set on one line at `size` points."""
    widths = _widths()
    return size * sum(widths.get(ch, DEFAULT_EM) for ch in text)


def lines_needed(text: str, width_pt: float, size: float = SMALL_PT) -> int:
    """Lines a ragged-right paragraph of `text` takes in a column `width_pt` wide (greedy by words)."""
    lines, current = 1, 0.0
    space = text_pt(" ", size)
    for word in text.split():
        w = text_pt(word, size)
        if current and current + space + w > width_pt:
            lines += 1
            current = w
        else:
            current = current + space + w if current else w
    return lines
