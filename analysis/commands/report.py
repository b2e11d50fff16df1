"""`analysis report`: every table and figure, as LaTeX, HTML, CSV and/or Markdown."""
from __future__ import annotations

import argparse

from engine.common.reports import REPORT_FORMATS, parse_formats

from analysis.commands.common import add_log_options, add_stats_options, analyse_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="write every table and figure (LaTeX, HTML, CSV, Markdown)",
        description="Read attack logs and write the report: findings in words, paper tables (variants, clean "
                    "performance, robustness and attack effort per attack, paired tests, validity), figures, an "
                    "appendix with every test and interval, and (HTML) a gallery of adversarial examples. With LaTeX "
                    "and pdflatex installed, latex/report.pdf is compiled too.")
    add_log_options(p)
    p.add_argument("--format", default=",".join(REPORT_FORMATS),
                   help="comma-separated formats among " + ", ".join(REPORT_FORMATS) + " (default: all)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--no-figures", action="store_true", help="skip the figures (tables only)")
    p.add_argument("--no-pdf", action="store_true", help="write the LaTeX sources only, do not run pdflatex")
    p.add_argument("--gallery", type=int, default=12, metavar="N", help="adversarial examples in the HTML gallery (default 12)")
    add_stats_options(p)
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    formats = parse_formats(args.format)
    analysis = analyse_args(args)
    written = write_report(analysis, args.out, formats, make_figures=not args.no_figures, gallery_size=args.gallery,
                           pdf=not args.no_pdf)
    for note in [*analysis.notes(), *analysis.report_notes]:
        print(f"note: {note}")
    for kind, paths in written.items():
        if kind == "pdf":
            print(f"pdf: {paths[0]}")
        else:
            print(f"{kind}: {len(paths)} files in {paths[0].parent if paths else args.out}")
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in analysis.timings.items())
    print(f"{analysis.summary()}\ntimings: {timing}")
    return 0
