"""Is an adversarial program still a valid program with the original's meaning? Checked once per example.

Four checks, each `True`, `False` or `None` (unknown, with a reason — never `False` by default):

- **parses**: no more parse errors than the original (tree-sitter);
- **alpha-equivalent**: `check_rename` (same tokens except the renamed occurrences, same
  binding structure). Not applicable (None) to programs with structure rewrites (CODA), which
  change the token sequence on purpose;
- **compiles**: Python `compile()`, `gcc -fsyntax-only` (a lone function is checked with the
  common libc headers included), `javac` (a method is wrapped in a class). When the original
  does not compile either (undeclared project types and macros in a lone Devign function), the
  result is None with the reason, not False. The original's result is computed once per example;
- **tests pass**: for examples that carry tests (`meta["test"]` and `meta["entry_point"]`, the
  `humaneval-defects` format), the program is run against them in the sandbox. Only when the
  original passes can the adversarial one be judged; a buggy original gives None.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.code import Extraction, check_rename, extract

C_PRELUDE = "".join(f"#include <{h}>\n" for h in (
    "stdio.h", "stdlib.h", "string.h", "stdint.h", "stddef.h", "stdbool.h", "limits.h", "math.h", "errno.h"))
COMPILE_TIMEOUT_S = 60


@dataclass
class Validity:
    parses: bool | None = None
    alpha_equivalent: bool | None = None
    compiles: bool | None = None
    tests_pass: bool | None = None
    reasons: list[str] = field(default_factory=list)

    def fields(self) -> dict:
        return {"valid_parses": self.parses, "valid_alpha_equivalent": self.alpha_equivalent,
                "valid_compiles": self.compiles, "valid_tests_pass": self.tests_pass,
                "validity_reasons": self.reasons or None}


@dataclass
class Compiled:
    ok: bool | None  # None: no compiler available
    message: str = ""


def python_compiles(source: str) -> Compiled:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<program>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as err:
            return Compiled(False, f"{type(err).__name__}: {err}")
    return Compiled(True)


def _run_compiler(command: list[str], directory: str) -> Compiled:
    try:
        done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Compiled(None, f"{command[0]} timed out after {COMPILE_TIMEOUT_S} s")
    if done.returncode == 0:
        return Compiled(True)
    stderr = done.stderr.replace(directory + os.sep, "")
    first = next((line for line in stderr.splitlines() if "error" in line), stderr.strip()[:200])
    return Compiled(False, first.strip()[:300])


def c_compiles(source: str) -> Compiled:
    gcc = shutil.which("gcc")
    if gcc is None:
        return Compiled(None, "gcc not found")
    with tempfile.TemporaryDirectory(prefix="crt-gcc-") as directory:
        path = os.path.join(directory, "program.c")
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(C_PRELUDE + "#line 1\n" + source + "\n")
        return _run_compiler([gcc, "-fsyntax-only", "-w", "-std=gnu11", path], directory)


def java_compiles(source: str) -> Compiled:
    javac = shutil.which("javac")
    if javac is None:
        return Compiled(None, "javac not found")
    wrapped = source if _declares_type(source) else "class CrtWrapper {\n" + source + "\n}\n"
    with tempfile.TemporaryDirectory(prefix="crt-javac-") as directory:
        path = os.path.join(directory, "Program.java")
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(wrapped.replace("public class ", "class ").replace("public final class ", "final class "))
        return _run_compiler([javac, "-proc:none", "-nowarn", "-d", directory, path], directory)


def _declares_type(source: str) -> bool:
    return any(f"{word} " in source for word in ("class", "interface", "enum", "record")) and "{" in source \
        and source.lstrip().startswith(("import", "package", "public", "class", "final", "abstract", "interface", "enum", "@"))


COMPILERS = {"python": python_compiles, "c": c_compiles, "java": java_compiles}


def compiles(source: str, language: str) -> Compiled:
    return COMPILERS[language](source)


class ValidityChecker:
    """Checks adversarial programs of one run; `compile=False` / `tests=False` skip the slow checks."""

    def __init__(self, compile: bool = True, tests: bool = True, test_timeout_s: float = 10.0) -> None:
        self.compile = compile
        self.tests = tests
        self.test_timeout_s = test_timeout_s

    def check(self, original: Extraction, adversarial: str, mapping: Mapping[str, str], structure_edits: int,
              example_meta: Mapping | None = None, original_compiles: Compiled | None = None,
              after: Extraction | None = None) -> Validity:
        """`after`: the adversarial program's extraction when the caller already has it."""
        result = Validity()
        if after is None:
            after = extract(adversarial, original.language)
        if structure_edits:
            result.parses = after.parse_errors <= original.parse_errors
            if not result.parses:
                result.reasons.append(f"parses: {after.parse_errors} parse errors, the original has {original.parse_errors}")
            result.reasons.append("alpha_equivalent: not applicable to structure rewrites")
        else:
            checked = check_rename(original, after, mapping)
            result.parses = checked.parses
            result.alpha_equivalent = checked.alpha_equivalent
            result.reasons.extend(f"alpha_equivalent: {reason}" for reason in checked.reasons)
        if self.compile:
            before = original_compiles or compiles(original.text, original.language)
            if before.ok is None:
                result.reasons.append(f"compiles: {before.message}")
            elif not before.ok:
                result.reasons.append(f"compiles: unknown, the original does not compile either ({before.message})")
            else:
                after_compiled = compiles(adversarial, original.language)
                result.compiles = after_compiled.ok
                if after_compiled.ok is not True:
                    result.reasons.append(f"compiles: {after_compiled.message}")
        if self.tests and example_meta and example_meta.get("test") and example_meta.get("entry_point"):
            result.tests_pass = self._tests(adversarial, example_meta, result.reasons, original.text)
        return result

    def _tests(self, program: str, meta: Mapping, reasons: list[str], original: str | None = None) -> bool | None:
        from engine.datasets.humaneval_defects import program_with_tests
        from engine.datasets.sandbox import Limits, run_python

        limits = Limits(timeout_s=self.test_timeout_s)
        outcome = meta.get("outcome")  # the original's test result, when the dataset recorded it
        if outcome is None and original is not None:
            outcome = run_python(program_with_tests(original, meta["test"], meta["entry_point"]), limits).status
        if outcome != "passed":
            reasons.append(f"tests_pass: unknown, the original does not pass its tests ({outcome})")
            return None
        result = run_python(program_with_tests(program, meta["test"], meta["entry_point"]), limits)
        if not result.passed:
            reasons.append(f"tests_pass: {result.status}: {result.stderr.strip().splitlines()[-1:] or ''}")
        return result.passed
