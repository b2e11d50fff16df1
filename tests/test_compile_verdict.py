"""Differential compile verdicts: a lone function that does not compile on its own still gets a
definite verdict, by comparing the adversarial program's compiler errors with the original's."""
from __future__ import annotations

import shutil

import pytest

from engine.attacks import validity
from engine.attacks.validity import Diagnostics, ValidityChecker, c_compiles, compile_verdict, java_compiles
from engine.code import extract

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
needs_javac = pytest.mark.skipif(shutil.which("javac") is None, reason="javac not installed")

# A Devign-like function: project types and macros are missing, so gcc reports errors for it alone.
LONE_C = """static int decode(AVCodecContext *avctx, int size)
{
    int n = avctx->width;
    int total = 0;
    for (n = 0; n < size; n++)
        total += n * MAX_SCALE;
    return total + n;
}
"""


def verdict(code: str, renamed: str, mapping: dict, language: str = "c", structure_edits: int = 0):
    return ValidityChecker(tests=False).check(extract(code, language), renamed, mapping, structure_edits)


@needs_gcc
def test_a_lone_c_function_gets_a_differential_verdict():
    assert c_compiles(LONE_C).ok is False  # it does not compile on its own
    good = verdict(LONE_C, LONE_C.replace("total", "acc"), {"total": "acc"})
    assert (good.compiles, good.compile_differential, good.alpha_equivalent) == (True, True, True)
    assert not any(reason.startswith("compiles") for reason in good.reasons)


@needs_gcc
def test_a_partial_rename_inside_the_body_is_a_new_error():
    # Without a stub for AVCodecContext gcc would stop at the signature and never see the body.
    partial = LONE_C.replace("int total = 0;", "int acc = 0;").replace("total +=", "acc +=")  # `return total` left
    result = verdict(LONE_C, partial, {"total": "acc"})
    assert result.compiles is False and result.compile_differential is True
    reason = next(r for r in result.reasons if r.startswith("compiles"))
    assert "differential" in reason and "'total' undeclared" in reason


@needs_gcc
def test_a_rename_that_removes_an_error_is_invalid_too():
    captured = LONE_C.replace("total", "MAX_SCALE")  # the local now captures the undeclared macro
    result = verdict(LONE_C, captured, {"total": "MAX_SCALE"})
    assert result.compiles is False and result.compile_differential is True
    assert "missing" in next(r for r in result.reasons if r.startswith("compiles"))


@needs_gcc
def test_spelling_hints_that_a_rename_changes_do_not_count():
    code = "int f(int count)\n{\n    return coutn + count;\n}\n"
    assert "did you mean" in " ".join(message for _, message in c_compiles(code).errors)
    result = verdict(code, code.replace("count;", "size;").replace("int count", "int size"), {"count": "size"})
    assert result.compiles is True and result.compile_differential is True


@needs_gcc
def test_a_clean_original_gives_an_absolute_verdict():
    code = "int add(int a, int b)\n{\n    int s = a + b;\n    return s;\n}\n"
    good = verdict(code, code.replace(" s ", " total ").replace(" s;", " total;"), {"s": "total"})
    assert (good.compiles, good.compile_differential) == (True, False)
    broken = verdict(code, code.replace("return s;", "return q;"), {})
    assert (broken.compiles, broken.compile_differential) == (False, False)


@needs_gcc
def test_structure_rewrites_compare_messages_not_lines():
    moved = LONE_C.replace("    int total = 0;\n", "    int total = 0;\n\n")  # every later error one line down
    assert verdict(LONE_C, moved, {}, structure_edits=1).compiles is True
    assert verdict(LONE_C, moved, {}).compiles is False  # a pure rename never moves a line


def test_no_compiler_is_the_only_unknown(monkeypatch):
    monkeypatch.setattr(validity.shutil, "which", lambda name: None)
    result = verdict(LONE_C, LONE_C.replace("total", "acc"), {"total": "acc"})
    assert result.compiles is None and result.compile_differential is None
    assert "compiles: gcc not found" in result.reasons


@needs_gcc
def test_the_original_is_compiled_once_per_program(monkeypatch):
    calls = []
    real = validity.compiles
    monkeypatch.setattr(validity, "compiles", lambda source, language, like=None: calls.append(like) or real(source, language, like))
    checker = ValidityChecker(tests=False)
    original = extract(LONE_C, "c")
    for new in ("acc", "sum", "value"):
        assert checker.check(original, LONE_C.replace("total", new), {"total": new}, 0).compiles is True
    assert sum(like is None for like in calls) == 1 and len(calls) == 4  # the original once, each candidate once


def test_renamed_names_are_mapped_back_only_where_the_compiler_quotes_them():
    before = Diagnostics(False, ((3, "'n' undeclared (first use in this function)"),))
    after = Diagnostics(False, ((3, "'m' undeclared (first use in this function)"),))
    assert compile_verdict(before, after, {"n": "m"}, "c").ok is True
    assert compile_verdict(before, after, {}, "c").ok is False
    function = Diagnostics(False, ((1, "this function 'n'"),))
    assert compile_verdict(function, Diagnostics(False, ((1, "this function 'n'"),)), {"x": "function"}, "c").ok is True


def test_python_programs_that_do_not_compile_get_a_differential_verdict():
    code = "def f(n):\n    total = n\n    print total\n"  # Python 2
    good = verdict(code, code.replace("total", "acc"), {"total": "acc"}, "python")
    assert (good.compiles, good.compile_differential) == (True, True)
    worse = verdict(code, code.replace("    total = n\n", "    total = = n\n"), {}, "python")
    assert worse.compiles is False
    clean = "def f(n):\n    return n\n"
    assert verdict(clean, clean.replace("n", "k"), {"n": "k"}, "python").compile_differential is False


@needs_javac
def test_a_lone_java_method_gets_a_differential_verdict():
    method = ("public static String read(Repo repo, String name) throws IOException {\n"
              "    List<String> parts = new ArrayList<>();\n"
              "    parts.add(repo.get(name).toString());\n"
              "    return String.join(\",\", parts);\n}\n")
    alone = java_compiles(method)
    assert alone.ok is False  # Repo is the project's; IOException and List come with the imports
    assert [message.split(":")[0] for _, message in alone.errors] == ["compiler.err.cant.resolve.location"]
    checker = ValidityChecker(tests=False)
    original = extract(method, "java")
    good = checker.check(original, method.replace("parts", "items"), {"parts": "items"}, 0)
    assert (good.compiles, good.compile_differential) == (True, True)
    partial = method.replace("parts.add", "items.add").replace("List<String> parts", "List<String> items")
    bad = checker.check(original, partial, {"parts": "items"}, 0)
    assert (bad.compiles, bad.compile_differential) == (False, True)
