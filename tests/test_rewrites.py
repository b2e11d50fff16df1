"""Structure rewrites on the syntax tree: exact output on hand-written fixtures per language, the
safety conditions (continue, Java's implicit casts, Python's in-place operators), and, where a
compiler is present, the same output when the original and the rewritten program are run."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from engine.code.rewrites import (apply_sampled, check_rewrite, find_sites, rewrite, style_counts,
                                  style_probabilities)

C_CODE = """#include <stdio.h>
int f(int n) {
    int s = 0;
    for (int i = 0; i < n; i++) {
        s += i * 2;
    }
    while (n > 0) n--;
    for (;;) { if (s > 30) break; s = s + 1; }
    for (int j = 0; j < 5; j++) { if (j == 2) continue; s++; }
    return s;
}
int main(void) { printf("%d\\n", f(7)); return 0; }
"""

C_ALL = """#include <stdio.h>
int f(int n) {
    int s = 0;
    { int i = 0;
    while (i < n) {
        s = s + (i * 2);
        i = i + 1;
    } }
    for (; n > 0; ) n = n - 1;
    while (1) { if (s > 30) break; s += 1; }
    for (int j = 0; j < 5; j = j + 1) { if (j == 2) continue; s = s + 1; }
    return s;
}
int main(void) { printf("%d\\n", f(7)); return 0; }
"""

JAVA_CODE = """class Main {
    static int f(int n, short k) {
        int s = 0;
        for (int i = 0, j = 1; i < n; i++, j--) s += i + j;
        k += 1;
        k++;
        outer: for (int i = 0; i < n; i++) { for (int m = 0; m < 2; m++) { if (m == 1) continue outer; s++; } }
        return s + k;
    }
    public static void main(String[] args) { System.out.println(f(6, (short) 3)); }
}
"""

JAVA_ALL = """class Main {
    static int f(int n, short k) {
        int s = 0;
        { int i = 0, j = 1;
        while (i < n) {
            s = s + (i + j);
            i = i + 1; j = j - 1;
        } }
        k += 1;
        k++;
        outer: for (int i = 0; i < n; i = i + 1) { for (int m = 0; m < 2; m = m + 1) { if (m == 1) continue outer; s = s + 1; } }
        return s + k;
    }
    public static void main(String[] args) { System.out.println(f(6, (short) 3)); }
}
"""

PY_CODE = """def f(x, xs):
    x += 1
    xs += [1]
    x = x * 2
    y = 3
    y = y - x
    return x, xs, y

print(f(4, [0]))
"""

PY_ALL = """def f(x, xs):
    x = x + 1
    xs += [1]
    x *= 2
    y = 3
    y = y - x
    return x, xs, y

print(f(4, [0]))
"""


@pytest.mark.parametrize("language, code, expected", [("c", C_CODE, C_ALL), ("java", JAVA_CODE, JAVA_ALL),
                                                      ("python", PY_CODE, PY_ALL)])
def test_every_site_rewritten_gives_the_exact_expected_program(language, code, expected):
    out = rewrite(code, language, find_sites(code, language))
    assert out == expected
    assert check_rewrite(code, out, language).ok


def test_sites_respect_the_safety_conditions():
    kinds = [(s.kind, s.line) for s in find_sites(C_CODE, "c")]
    assert ("for_to_while", 4) in kinds and ("for_to_while", 8) in kinds
    assert ("for_to_while", 9) not in kinds  # its body continues: the update would be skipped
    java = [(s.kind, s.line) for s in find_sites(JAVA_CODE, "java")]
    assert ("augmented_to_expanded", 5) not in java and ("increment_to_assignment", 6) not in java  # short k
    assert not any(kind == "for_to_while" and line == 7 for kind, line in java)  # labelled continue: neither loop
    python = [(s.kind, s.line) for s in find_sites(PY_CODE, "python")]
    assert ("augmented_to_expanded", 3) not in python  # xs += [1] mutates in place; xs = xs + [1] does not
    assert ("expanded_to_augmented", 6) not in python  # y - x: not a number literal


def test_single_kinds_and_nesting_compose():
    code = "void g(int n) { for (int i = 0; i < n; i++) { n -= 1; } }\n"
    sites = find_sites(code, "c")
    loops = [s for s in sites if s.kind == "for_to_while"]
    assert rewrite(code, "c", loops) == "void g(int n) { { int i = 0;\nwhile (i < n) { n -= 1;\n    i++;\n} } }\n"
    assert rewrite(code, "c", sites) == ("void g(int n) { { int i = 0;\nwhile (i < n) { n = n - 1;\n"
                                         "    i = i + 1;\n} } }\n")
    assert rewrite(code, "c", []) == code


def test_while_to_for_and_increment_forms():
    code = "int h(int a) { while (a > 1) { a = a - 1; } return a; }\n"
    sites = find_sites(code, "c")  # `a = a - 1` is two sites: the first chosen kind wins
    assert rewrite(code, "c", sites) == "int h(int a) { for (; a > 1; ) { a -= 1; } return a; }\n"
    increments = [s for s in sites if s.kind in ("while_to_for", "assignment_to_increment")]
    assert rewrite(code, "c", increments) == "int h(int a) { for (; a > 1; ) { a--; } return a; }\n"


def test_style_counts_and_probabilities():
    counts = style_counts(C_CODE, "c")
    assert counts["for_to_while"] == 2 and counts["while_to_for"] == 1 and counts["augmented_to_expanded"] == 1
    probabilities = style_probabilities({"for_to_while": 3, "while_to_for": 1})
    assert probabilities["for_to_while"] == 0.25 and probabilities["while_to_for"] == 0.75
    assert style_probabilities({})["for_to_while"] == 0.5


def test_sampled_rewrites_use_the_given_draws():
    draws = iter([0.0] * 100)
    out, applied = apply_sampled(PY_CODE, "python", {"augmented_to_expanded": 0.5, "expanded_to_augmented": 0.5},
                                 lambda: next(draws))
    assert out == PY_ALL and len(applied) == 2
    out, applied = apply_sampled(PY_CODE, "python", {"augmented_to_expanded": 0.5}, lambda: 0.9)
    assert out == PY_CODE and applied == []


def _run_c(code: str, tmp_path, name: str) -> str:
    source = tmp_path / f"{name}.c"
    source.write_text(code)
    subprocess.run(["gcc", "-w", "-o", str(tmp_path / name), str(source)], check=True, capture_output=True)
    return subprocess.run([str(tmp_path / name)], check=True, capture_output=True, text=True).stdout


def _run_java(code: str, tmp_path, name: str) -> str:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "Main.java").write_text(code)
    subprocess.run(["javac", "-d", str(directory), str(directory / "Main.java")], check=True, capture_output=True)
    return subprocess.run(["java", "-cp", str(directory), "Main"], check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_rewritten_c_computes_the_same(tmp_path):
    assert _run_c(C_CODE, tmp_path, "a") == _run_c(C_ALL, tmp_path, "b")


@pytest.mark.slow  # two JVM runs; the exact-output test above covers the same rewrite
@pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="no JDK")
def test_rewritten_java_computes_the_same(tmp_path):
    assert _run_java(JAVA_CODE, tmp_path, "a") == _run_java(JAVA_ALL, tmp_path, "b")


def test_rewritten_python_computes_the_same(capsys):
    exec(compile(PY_CODE, "a", "exec"), {})
    exec(compile(PY_ALL, "b", "exec"), {})
    first, second = capsys.readouterr().out.splitlines()
    assert first == second
