"""Is an adversarial program still a valid program with the original's meaning? Checked once per example.

Four checks, each `True`, `False` or `None` (unknown, with a reason — never `False` by default):

- **parses**: no more parse errors than the original (tree-sitter);
- **alpha-equivalent**: `check_rename` (same tokens except the renamed occurrences, same
  binding structure). Not applicable (None) to programs with structure rewrites (CODA), which
  change the token sequence on purpose;
- **compiles**: a *differential* compile verdict (below);
- **tests pass**: for examples that carry tests (`meta["test"]` and `meta["entry_point"]`, the
  `humaneval-defects` format), the program is run against them in the sandbox. Only when the
  original passes can the adversarial one be judged; a buggy original gives None.

Differential compile verdict. Dataset functions (Devign, BigCloneBench) rarely compile on their
own: their project's types, macros and globals are missing. So the original and the adversarial
program are compiled under the *same harness* and their diagnostics compared:

- C: `gcc -fsyntax-only -w -std=gnu11` (implicit declarations allowed) with the common libc
  headers, plus a stub `typedef struct T T;` for every type name the original uses without
  declaring it (found from gcc's own "unknown type name" errors, a few rounds). Without the stubs
  gcc gives up on a function whose parameter types are unknown and never looks at its body;
- Java: a lone method is wrapped in a class with the usual `java.*` imports; `javac
  -XDrawDiagnostics` (locale-free messages);
- Python: `compile()` (it reports the first syntax error only).

An original that compiles cleanly under its harness gives an absolute verdict (the adversarial
program compiles or not). An original with errors gives a differential one: the adversarial
program is valid when its errors equal the original's — the same (line, message) multiset after
the renamed names in messages are mapped back (structure rewrites move lines: there the *set* of
messages is compared) — and invalid when an error is new or gone. `compile_differential` in the
record says which kind of verdict it was. Only a missing compiler (or one that times out) gives
None. The original's diagnostics are computed once per program (`ValidityChecker` caches them).
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.code import Extraction, check_rename, extract

C_PRELUDE = "".join(f"#include <{h}>\n" for h in (
    "stdio.h", "stdlib.h", "string.h", "stdint.h", "stddef.h", "stdbool.h", "limits.h", "math.h", "errno.h"))
# Packages whose classes a lone method uses without importing; none of them share a class name
# (java.sql.Date, java.awt.List and java.net.Proxy/java.lang.reflect.Proxy would be ambiguous).
JAVA_IMPORTS = "".join(f"import {p}.*;\n" for p in (
    "java.util", "java.io", "java.net", "java.nio.file", "java.nio.charset", "java.util.regex",
    "java.util.concurrent", "java.util.function", "java.util.stream", "java.util.zip", "java.math", "java.text",
    "java.security"))
COMPILE_TIMEOUT_S = 60
STUB_ROUNDS = 4  # gcc reveals unknown types in a body only once the signature's types are known
_C_ENV = {**os.environ, "LC_ALL": "C", "LANG": "C"}  # ASCII quotes, English messages
_GCC_LINE = re.compile(r"^(?P<file>[^:\n]*):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: (?P<message>.*)$")
_JAVAC_LINE = re.compile(r"^(?P<file>[^:\n]*):(?P<line>\d+):(?:\d+:)? (?P<message>compiler\.err\..*)$")
_UNKNOWN_TYPE = re.compile(r"unknown type name '([A-Za-z_]\w*)'")
_QUOTED = re.compile(r"'([^'\n]*)'")
# gcc's spelling hints ("; did you mean 'count'?") name the closest declared name, which a rename
# changes by design: they are not part of an error's identity.
_HINT = re.compile(r";? did you mean '[^'\n]*'\?$")

Error = tuple[int, str]  # (line in the program, message)


@dataclass(frozen=True)
class Diagnostics:
    """What a compiler said about one program under one harness.

    `ok`: True (no error), False (errors, listed in `errors`), None (no verdict: no compiler, or it
    timed out; `message` says which). `stubs`: the C declarations prepended for the original's
    unknown types, reused for the adversarial program so both see the same harness.
    """

    ok: bool | None
    errors: tuple[Error, ...] = ()
    message: str = ""
    stubs: str = ""


def python_compiles(source: str) -> Diagnostics:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<program>", "exec", dont_inherit=True)
        except SyntaxError as err:
            text = f"{type(err).__name__}: {err.msg}"
            return Diagnostics(False, ((err.lineno or 0, text),), f"line {err.lineno}: {text}")
        except ValueError as err:  # e.g. a NUL byte
            return Diagnostics(False, ((0, f"ValueError: {err}"),), f"ValueError: {err}")
    return Diagnostics(True)


def _run_compiler(command: list[str], directory: str, pattern: re.Pattern, stubs: str = "") -> Diagnostics:
    try:
        done = subprocess.run(command, cwd=directory, capture_output=True, text=True, errors="replace",
                              timeout=COMPILE_TIMEOUT_S, env=_C_ENV)
    except subprocess.TimeoutExpired:
        return Diagnostics(None, message=f"{os.path.basename(command[0])} timed out after {COMPILE_TIMEOUT_S} s")
    if done.returncode == 0:
        return Diagnostics(True, stubs=stubs)
    output = (done.stderr + done.stdout).replace(directory + os.sep, "")
    errors = tuple((int(m["line"]), m["message"].strip()) for m in map(pattern.match, output.splitlines()) if m)
    if not errors:  # failed without a line we understand: keep its first words, so it is still compared
        errors = ((0, output.strip().splitlines()[0][:300] if output.strip() else f"exit status {done.returncode}"),)
    line, message = errors[0]
    return Diagnostics(False, errors, f"{len(errors)} error(s), first at line {line}: {message[:300]}", stubs)


_C_FLAGS = ["-w", "-std=gnu11"]
_prelude_directory: str | None = None


def _prelude_header(gcc: str) -> str:
    """The libc prelude as a header, precompiled once per process: reading the headers is three
    quarters of a lone function's compile time. gcc uses the `.gch` beside it when it matches the
    flags and silently reads the header itself otherwise, so a failed precompile costs only time."""
    global _prelude_directory
    if _prelude_directory is None or not os.path.isdir(_prelude_directory):
        directory = tempfile.mkdtemp(prefix="crt-gcc-prelude-")
        atexit.register(shutil.rmtree, directory, True)
        header = os.path.join(directory, "crt_prelude.h")
        with open(header, "w", encoding="utf-8") as handle:
            handle.write(C_PRELUDE)
        try:
            subprocess.run([gcc, *_C_FLAGS, "-x", "c-header", header, "-o", header + ".gch"], capture_output=True,
                           timeout=COMPILE_TIMEOUT_S, env=_C_ENV)
        except (OSError, subprocess.TimeoutExpired):
            pass
        _prelude_directory = directory
    return os.path.join(_prelude_directory, "crt_prelude.h")


def _gcc(source: str, stubs: str) -> Diagnostics:
    gcc = shutil.which("gcc")
    if gcc is None:
        return Diagnostics(None, message="gcc not found")
    prelude = _prelude_header(gcc)
    with tempfile.TemporaryDirectory(prefix="crt-gcc-") as directory:
        path = os.path.join(directory, "program.c")
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(stubs + '#line 1 "program.c"\n' + source + "\n")
        return _run_compiler([gcc, "-fsyntax-only", *_C_FLAGS, "-include", prelude, "-fmax-errors=0",
                              "-fno-diagnostics-show-caret", "-fdiagnostics-color=never", path], directory, _GCC_LINE, stubs)


def c_compiles(source: str, stubs: str | None = None) -> Diagnostics:
    """gcc's errors for a C program; `stubs=None` derives the stub typedefs from the program itself."""
    if stubs is not None:
        return _gcc(source, stubs)
    known: list[str] = []
    result = _gcc(source, "")
    for _ in range(STUB_ROUNDS):
        unknown = sorted({name for _, message in result.errors for name in _UNKNOWN_TYPE.findall(message)} - set(known))
        if not unknown:
            break
        known += unknown
        result = _gcc(source, "".join(f"typedef struct {name} {name};\n" for name in known))
    return result


def java_compiles(source: str) -> Diagnostics:
    javac = shutil.which("javac")
    if javac is None:
        return Diagnostics(None, message="javac not found")
    wrapped = source if _declares_type(source) else JAVA_IMPORTS + "class CrtWrapper {\n" + source + "\n}\n"
    with tempfile.TemporaryDirectory(prefix="crt-javac-") as directory:
        path = os.path.join(directory, "Program.java")
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(wrapped.replace("public class ", "class ").replace("public final class ", "final class "))
        return _run_compiler([javac, "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-proc:none", "-nowarn", "-XDrawDiagnostics", "-Xmaxerrs", "10000",
                              "-encoding", "UTF-8", "-d", directory, path], directory, _JAVAC_LINE)


def _declares_type(source: str) -> bool:
    return any(f"{word} " in source for word in ("class", "interface", "enum", "record")) and "{" in source \
        and source.lstrip().startswith(("import", "package", "public", "class", "final", "abstract", "interface", "enum", "@"))


def compiles(source: str, language: str, like: Diagnostics | None = None) -> Diagnostics:
    """The diagnostics of `source`; `like`: the original's diagnostics, whose harness is reused."""
    if language == "c":
        return c_compiles(source, like.stubs if like is not None else None)
    if language == "java":
        return java_compiles(source)
    if language == "python":
        return python_compiles(source)
    raise ValueError(f"no compiler for language {language!r}")


@dataclass(frozen=True)
class CompileVerdict:
    ok: bool | None
    differential: bool | None  # True: judged against the original's errors; False: the original compiles
    reason: str | None = None


def compile_verdict(before: Diagnostics, after: Diagnostics, mapping: Mapping[str, str], language: str,
                    structure_edits: int = 0) -> CompileVerdict:
    """Judge the adversarial program's diagnostics `after` against the original's `before`."""
    if before.ok is None:
        return CompileVerdict(None, None, f"compiles: {before.message}")
    if after.ok is None:
        return CompileVerdict(None, None, f"compiles: {after.message}")
    if before.ok:
        return CompileVerdict(after.ok, False, None if after.ok else f"compiles: {after.message}")
    back = {new: old for old, new in mapping.items() if new != old}
    expected = _comparable(before.errors, {}, language, structure_edits)
    found = _comparable(after.errors, back, language, structure_edits)
    if expected == found:
        return CompileVerdict(True, True, None)
    new, gone = found - expected, expected - found
    detail = "; ".join([*(f"new: {_describe(e)}" for e in list(new.elements())[:2]),
                        *(f"gone: {_describe(e)}" for e in list(gone.elements())[:2])])
    return CompileVerdict(False, True, f"compiles: differential: {sum(new.values())} new and {sum(gone.values())} "
                                       f"missing error(s) against the original's {len(before.errors)}; {detail}"[:500])


def _comparable(errors: tuple[Error, ...], back: Mapping[str, str], language: str, structure_edits: int) -> Counter:
    """Errors as a multiset of (line, message) with renamed names mapped back; a set of messages
    (lines dropped) when structure rewrites moved code."""
    mapped = [(line, _map_names(_HINT.sub("", message), back, language)) for line, message in errors]
    if structure_edits:
        return Counter({(None, message): 1 for _, message in mapped})
    return Counter(mapped)


def _describe(error: tuple) -> str:
    line, message = error
    return message[:160] if line is None else f"line {line}: {message[:160]}"


def _map_names(message: str, back: Mapping[str, str], language: str) -> str:
    """`message` with each new name replaced by the original one where the compiler quotes names:
    inside '...' for gcc and Python, anywhere but dotted message keys for javac's raw diagnostics."""
    if not back:
        return message
    names = re.compile(r"(?<![\w$.])(" + "|".join(map(re.escape, sorted(back, key=len, reverse=True))) + r")(?![\w$.])")
    rename = lambda text: names.sub(lambda m: back[m.group(1)], text)  # noqa: E731
    if language == "java":
        return rename(message)
    return _QUOTED.sub(lambda m: "'" + rename(m.group(1)) + "'", message)


@dataclass
class Validity:
    parses: bool | None = None
    alpha_equivalent: bool | None = None
    compiles: bool | None = None
    tests_pass: bool | None = None
    compile_differential: bool | None = None
    reasons: list[str] = field(default_factory=list)

    def fields(self) -> dict:
        return {"valid_parses": self.parses, "valid_alpha_equivalent": self.alpha_equivalent,
                "valid_compiles": self.compiles, "valid_tests_pass": self.tests_pass,
                "compile_differential": self.compile_differential, "validity_reasons": self.reasons or None}


class ValidityChecker:
    """Checks adversarial programs of one run; `compile=False` / `tests=False` skip the slow checks.

    The originals' diagnostics are cached (`cache_size` programs), so an original is compiled once
    however many adversarial programs are judged against it.
    """

    def __init__(self, compile: bool = True, tests: bool = True, test_timeout_s: float = 10.0,
                 cache_size: int = 256) -> None:
        self.compile = compile
        self.tests = tests
        self.test_timeout_s = test_timeout_s
        self.cache_size = cache_size
        self._originals: OrderedDict[tuple[str, str], Diagnostics] = OrderedDict()

    def original_diagnostics(self, source: str, language: str) -> Diagnostics:
        key = (language, source)
        cached = self._originals.get(key)
        if cached is not None:
            self._originals.move_to_end(key)
            return cached
        result = compiles(source, language)
        if result.ok is not None:  # a timeout may pass; try again next time
            self._originals[key] = result
            while len(self._originals) > self.cache_size:
                self._originals.popitem(last=False)
        return result

    def check(self, original: Extraction, adversarial: str, mapping: Mapping[str, str], structure_edits: int,
              example_meta: Mapping | None = None, after: Extraction | None = None) -> Validity:
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
            before = self.original_diagnostics(original.text, original.language)
            adversarial_diagnostics = compiles(adversarial, original.language, like=before) if before.ok is not None else before
            verdict = compile_verdict(before, adversarial_diagnostics, mapping, original.language, structure_edits)
            result.compiles, result.compile_differential = verdict.ok, verdict.differential
            if verdict.reason:
                result.reasons.append(verdict.reason)
        if self.tests and example_meta and example_meta.get("test") and example_meta.get("entry_point"):
            result.tests_pass = self._tests(adversarial, example_meta, result.reasons, original.text)
        return result

    def _tests(self, program: str, meta: Mapping, reasons: list[str], original: str | None = None) -> bool | None:
        from engine.datasets.builtins.humaneval_defects import program_with_tests
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
