"""Compile the LaTeX report with pdflatex when it is installed (two passes: references, then pages).

pdflatex runs without shell escape and with kpathsea's paranoid file access (`openin_any=p`,
`openout_any=p`: no absolute paths, no parent directories, no dot files) — a second wall behind
the escaping of every string, should a log ever smuggle a TeX command through.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PASSES = 2


def pdflatex() -> str | None:
    return shutil.which("pdflatex")


def compile_pdf(folder: Path, main: str = "report.tex", timeout: float = 180.0) -> tuple[Path | None, str]:
    """(the PDF, "") after `PASSES` pdflatex runs in `folder`, or (None, why not) — never raises
    for a TeX problem: the .tex files stay usable and the reason names the log to read."""
    exe = pdflatex()
    if exe is None:
        return None, "pdflatex is not installed (Debian: texlive-latex-base texlive-latex-recommended texlive-fonts-recommended)"
    env = dict(os.environ, openin_any="p", openout_any="p", shell_escape="f")
    log = folder / Path(main).with_suffix(".log").name
    for _ in range(PASSES):
        try:
            done = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", main],
                                  cwd=folder, env=env, capture_output=True, text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"pdflatex took longer than {timeout:.0f} s; see {log}"
        if done.returncode != 0:
            first = next((line for line in done.stdout.splitlines() if line.startswith("!")), "no error line")
            return None, f"pdflatex failed ({first}); see {log}"
    return folder / Path(main).with_suffix(".pdf").name, ""
