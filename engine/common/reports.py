"""The formats `analysis report` writes: the one list its `--format` option and a study's `report`
key both read (`engine` may not import `analysis`, so the list lives below both).

A new format is an entry here plus its writer in `analysis.report.write_report`;
`tests/test_analysis_report.py` writes every format listed here, so an entry without a writer fails.
"""
from __future__ import annotations

from engine.common.errors import UserError

REPORT_FORMATS: dict[str, str] = {
    "latex": "report.tex with one file per table and figure, compiled to report.pdf when pdflatex is installed",
    "html": "one self-contained page: findings, tables, inline figures, a gallery of adversarial examples",
    "csv": "every table as displayed, one file each",
    "md": "every table in Markdown, and report.md with the findings and the main tables",
}


def parse_formats(text: str, option: str = "--format") -> list[str]:
    """`latex,html` -> ["latex", "html"]; an unknown or empty list is a user error naming the choices."""
    formats = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in formats if item not in REPORT_FORMATS]
    if unknown or not formats:
        raise UserError(f"{option} {text!r}: choose among {', '.join(REPORT_FORMATS)}")
    return formats
