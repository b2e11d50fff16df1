"""Language-independent behaviour of the language layer: validation, span renaming, checks, bad input."""
from __future__ import annotations

import pytest

from engine.code import (
    CodeInputError,
    Renamer,
    check_rename,
    detect_language,
    extract,
    rename,
    validate,
)
from engine.code.rename import RenameError

C_PROGRAM = """\
int sum(const int *xs, int n)
{
    int total = 0;  /* total of n values */
    for (int i = 0; i < n; i++)
        total += xs[i];
    return total;
}
"""


def test_validate_reports_every_reason_once_per_pair():
    ext = extract(C_PROGRAM, "c")
    rejections = {r.old: r.reason for r in validate(ext, {
        "sum": "f",          # function name: not a variable
        "missing": "m",      # absent
        "n": "n",            # unchanged
        "xs": "9lives",      # not an identifier
        "total": "while",    # keyword
        "i": "NULL",         # a standard macro: scope-blind
    })}
    assert set(rejections) == {"sum", "missing", "n", "xs", "total", "i"}
    assert "not a variable or parameter" in rejections["sum"]
    assert "does not occur" in rejections["missing"]
    assert "equals the old one" in rejections["n"]
    assert "not a valid c identifier" in rejections["xs"]
    assert "keyword" in rejections["total"]
    assert "standard c macro" in rejections["i"]


def test_validate_rejects_collisions_in_code_and_shared_targets_but_not_comment_words():
    ext = extract(C_PROGRAM, "c")
    # `values` occurs only in a comment: text, not a name the variable could capture.
    assert validate(ext, {"total": "values"}) == []
    assert "already used where 'total' is visible" in validate(ext, {"total": "xs"})[0].reason
    shared = validate(ext, {"total": "acc", "n": "acc"})
    assert {r.old for r in shared} == {"total", "n"}
    assert all("also given to" in r.reason for r in shared)


def test_rename_raises_with_all_rejections():
    with pytest.raises(RenameError) as info:
        rename(C_PROGRAM, "c", {"n": "int", "i": "xs"})
    assert len(info.value.rejections) == 2


def test_candidates_equal_individual_applies():
    ext = extract(C_PROGRAM, "c")
    renamer = Renamer(ext)
    base = {"total": "acc"}
    names = ["k", "idx", "j2"]
    produced = renamer.candidates("i", names, base=base)
    assert produced == [renamer.apply({**base, "i": name}) for name in names]
    assert "int k = 0; k < n; k++" in produced[0]
    assert "acc += xs[k]" in produced[0]


def test_non_ascii_program_spans_are_bytes_and_rename_uses_characters():
    program = 'int f(int n) { const char *s = "héllo"; return n + s[0]; }\n'
    ext = extract(program, "c")
    start, end = ext.identifiers["n"].spans[-1]
    assert ext.source[start:end] == b"n"
    renamed = Renamer(ext).apply({"n": "count"})
    assert renamed == 'int f(int count) { const char *s = "héllo"; return count + s[0]; }\n'


def test_check_rejects_partial_rename_field_rename_and_other_edits():
    ext = extract(C_PROGRAM, "c")
    partial = C_PROGRAM.replace("int total = 0;", "int acc = 0;")
    result = check_rename(ext, partial, {"total": "acc"})
    assert not result.alpha_equivalent and not result.ok
    assert any("should have become 'acc'" in r for r in result.reasons)

    edited = C_PROGRAM.replace("i < n", "i <= n")
    assert not check_rename(ext, edited, {}).alpha_equivalent

    program = "struct s { int len; };\nint f(struct s *p) { int len = p->len; return len; }\n"
    by_text = program.replace("len", "size")  # what text-search renaming does
    result = check_rename(program, by_text, {"len": "size"}, language="c")
    assert not result.ok
    assert any("not an occurrence of a renamed variable" in r for r in result.reasons)


def test_check_accepts_a_valid_rename_and_reports_new_parse_errors():
    mapping = {"total": "acc", "i": "k"}
    renamed = rename(C_PROGRAM, "c", mapping)
    result = check_rename(C_PROGRAM, renamed, mapping, language="c")
    assert result.ok and result.parses and result.alpha_equivalent
    assert result.compiles is None  # no compiler is run for C here: unknown, not false

    broken = renamed.replace("return acc;", "return acc")
    result = check_rename(C_PROGRAM, broken, mapping, language="c")
    assert not result.parses and result.new_parse_errors >= 1


def test_python_compile_check_is_unknown_when_the_original_does_not_compile():
    py2 = "def f(x):\n    print x\n    return x\n"
    mapping = {"x": "value"}
    result = check_rename(py2, rename(py2, "python", mapping), mapping, language="python")
    assert result.alpha_equivalent and result.compiles is None
    py3 = "def f(x):\n    return x + 1\n"
    result = check_rename(py3, rename(py3, "python", mapping), mapping, language="python")
    assert result.compiles is True


@pytest.mark.parametrize("language", ["c", "java", "python"])
def test_empty_and_whitespace_input_give_an_empty_result(language):
    for program in ("", "\n\n   \n"):
        ext = extract(program, language)
        assert ext.identifiers == {} and ext.parse_errors == 0


def test_non_utf8_bytes_give_a_clear_error_with_offset():
    with pytest.raises(CodeInputError, match=r"not valid UTF-8: byte 0xe9 at offset 12 \(line 1\)"):
        extract(b"int f() { /*\xe9*/ return 0; }", "c")


def test_large_input_is_handled():
    body = "".join(f"    int v{i} = {i};\n    total += v{i};\n" for i in range(25000))
    program = "int big(void)\n{\n    int total = 0;\n" + body + "    return total;\n}\n"
    assert len(program) > 1_000_000
    ext = extract(program, "c")
    assert ext.parse_errors == 0
    assert len(ext.identifiers) == 25001
    assert len(ext.identifiers["total"].spans) == 25002


def test_unknown_language_and_extension():
    with pytest.raises(CodeInputError, match="unknown language"):
        extract("x", "cobol")
    with pytest.raises(CodeInputError, match="pass --lang"):
        detect_language("prog.txt")
    assert detect_language("a/B.java") == "java" and detect_language("x.h") == "c"


def test_python_rejects_names_that_would_be_mangled_but_allows_dunder_shapes():
    ext = extract("def f(x):\n    return x\n", "python")
    assert [r.reason for r in validate(ext, {"x": "__hidden"})] == [
        "'__hidden' starts with two underscores, which Python name-mangles inside classes"
    ]
    assert validate(ext, {"x": "_x"}) == [] and validate(ext, {"x": "__"}) == []
    # Python gives dunder names meanings the program need not spell (`__class__` for super()).
    assert "special (dunder) name" in validate(ext, {"x": "__x__"})[0].reason
    assert [r.reason for r in validate(ext, {"x": "\ufb01le"})] == [
        "'\ufb01le' is not NFKC-normalised; Python would read it as 'file'"
    ]


def test_a_name_in_a_comment_inside_broken_code_does_not_exclude_a_variable():
    in_comment = "int f(int n) {\n  int k = n;\n  foo(@ /* k */ 1);\n  return k;\n}\n"
    in_code = "int f(int n) {\n  int k = n;\n  #if X\n  k = (k ]];\n  #endif\n  return k;\n}\n"
    assert set(extract(in_comment, "c").identifiers) == {"k", "n"}
    broken = extract(in_code, "c")
    assert set(broken.identifiers) == {"n"}
    assert [(x.name, x.reason) for x in broken.exclusions] == [
        ("k", "also occurs at line 4 inside code that does not parse, where it cannot be renamed safely")
    ]


def test_unicode_identifiers_are_whole_words_for_collision_checks():
    program = "def f(größe, n):\n    return größe * n\n"
    ext = extract(program, "python")
    assert set(ext.identifiers) == {"größe", "n"} and "größe" in ext.names_in_program
    assert [r.reason for r in validate(ext, {"n": "größe"})] == ["'größe' is already used where 'n' is visible"]
    assert rename(program, "python", {"größe": "size"}) == "def f(size, n):\n    return size * n\n"


def test_attacks_apply_the_same_per_pair_rules_as_validate():
    from engine.code.rename import pair_rejection  # what the attack constraint (AttackContext.name_ok) calls

    ext = extract("def f(x, y):\n    return x + y\n", "python")
    for new in ("__hidden", "\ufb01le", "len", "y", "class", "1x", "fresh"):
        expected = [r.reason for r in validate(ext, {"x": new})]
        assert ([pair_rejection(ext, "x", new)] if expected else [None]) == (expected or [None])
