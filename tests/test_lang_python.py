"""Python scope rules: the exact identifiers, exclusions and renamed text for each pitfall.

Each fixture names the identifiers it must yield (name -> kinds) and the text a rename must
produce; `check_rename` must accept every rename made here. The pitfalls are the ones the
reference extraction gets wrong (see ../shared/reference/reference-extraction-failures.md).
"""
from __future__ import annotations

import textwrap

import pytest

from engine.code import Renamer, check_rename, extract, rename, validate
from engine.code.rename import RenameError


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def kinds(program: str) -> dict[str, tuple[str, ...]]:
    return {name: ident.kinds for name, ident in extract(program, "python").identifiers.items()}


def excluded(program: str) -> dict[str, str]:
    """name -> reason of every excluded binding (the last one when a name has several)."""
    return {x.name: x.reason for x in extract(program, "python").exclusions}


def renamed_ok(program: str, mapping: dict[str, str], *, py3: bool = True) -> str:
    """Rename through the public API and require the checker to accept it."""
    new = rename(program, "python", mapping)
    result = check_rename(program, new, mapping, language="python")
    assert result.parses and result.alpha_equivalent, result.reasons
    assert result.compiles is (True if py3 else None)
    ext_new = extract(new, "python")
    back = Renamer(ext_new).apply({v: k for k, v in mapping.items()})
    assert back == program
    return new


# --------------------------------------------------------------------------- parameters


PARAMS = src(
    """
    def f(a, b=1, *args, c, d: int = 2, e: str, **kwargs):
        return a + b + c + d + len(e) + len(args) + len(kwargs)

    def g(p, /, q, *, r=None):
        return p, q, r
    """
)


def test_every_parameter_form_is_a_parameter():
    assert kinds(PARAMS) == {
        name: ("parameter",) for name in ["a", "b", "args", "c", "d", "e", "kwargs", "p", "q", "r"]
    }


def test_kwargs_and_annotated_parameters_are_renamed_everywhere():
    new = renamed_ok(PARAMS, {"kwargs": "options", "d": "depth", "args": "rest"})
    assert new == src(
        """
        def f(a, b=1, *rest, c, depth: int = 2, e: str, **options):
            return a + b + c + depth + len(e) + len(rest) + len(options)

        def g(p, /, q, *, r=None):
            return p, q, r
        """
    )


def test_defaults_and_annotations_belong_to_the_enclosing_scope():
    program = src(
        """
        n = 5
        def f(n=n, *, m: int = n):
            return n + m
        """
    )
    ext = extract(program, "python")
    assert kinds(program) == {"n": ("module_variable", "parameter"), "m": ("parameter",)}
    module_n = [b for b in ext.bindings if b.name == "n" and b.scope == "module"][0]
    lines = sorted(program.encode().count(b"\n", 0, s) + 1 for s, _ in module_n.spans)
    assert lines == [1, 2, 2]  # the defaults read the module variable, not the parameter


# --------------------------------------------------------------------------- with, lambda, for


def test_with_targets_including_tuples():
    program = src(
        """
        def copy(f, g):
            with open(f) as fh, open(g, "w") as (out):
                out.write(fh.read())
        """
    )
    assert kinds(program) == {"f": ("parameter",), "g": ("parameter",), "fh": ("with_target",), "out": ("with_target",)}
    assert renamed_ok(program, {"fh": "source", "f": "path"}) == src(
        """
        def copy(path, g):
            with open(path) as source, open(g, "w") as (out):
                out.write(source.read())
        """
    )


def test_lambda_parameters_and_defaults():
    program = src(
        """
        def make(x):
            return lambda u, v=x, *w, **z: u + v + len(w) + len(z)
        """
    )
    assert kinds(program) == {
        "x": ("parameter",), "u": ("lambda_parameter",), "v": ("lambda_parameter",),
        "w": ("lambda_parameter",), "z": ("lambda_parameter",),
    }
    assert renamed_ok(program, {"u": "first", "x": "base"}) == src(
        """
        def make(base):
            return lambda first, v=base, *w, **z: first + v + len(w) + len(z)
        """
    )


def test_for_else_and_unpacking_targets():
    program = src(
        """
        def find(rows, key):
            for i, (name, *rest) in enumerate(rows):
                if name == key:
                    break
            else:
                missing = True
                return missing, rest
            return i
        """
    )
    assert kinds(program) == {
        "rows": ("parameter",), "key": ("parameter",), "i": ("loop_variable",),
        "name": ("loop_variable",), "rest": ("loop_variable",), "missing": ("local",),
    }
    assert renamed_ok(program, {"missing": "absent", "rest": "tail"}) == src(
        """
        def find(rows, key):
            for i, (name, *tail) in enumerate(rows):
                if name == key:
                    break
            else:
                absent = True
                return absent, tail
            return i
        """
    )


def test_except_as_and_del_walrus_bindings():
    program = src(
        """
        def parse(text):
            try:
                value = int(text)
            except ValueError as err:
                print(err)
                value = 0
            if (size := len(text)) > 3:
                del value
                return size
            return value
        """
    )
    assert kinds(program) == {
        "text": ("parameter",), "value": ("local",), "err": ("catch_parameter",), "size": ("local",),
    }
    assert renamed_ok(program, {"err": "problem", "size": "length"}) == src(
        """
        def parse(text):
            try:
                value = int(text)
            except ValueError as problem:
                print(problem)
                value = 0
            if (length := len(text)) > 3:
                del value
                return length
            return value
        """
    )


# --------------------------------------------------------------------------- attributes & keywords


ATTRS = src(
    """
    import math
    import sys

    class Reader:
        def __init__(self, f):
            self.f = f
            stdin = f
            sys.stdin = stdin

    def root(x):
        sqrt = math.sqrt(x)
        return sqrt
    """
)


def test_attribute_names_are_never_occurrences():
    ext = extract(ATTRS, "python")
    assert {n: i.kinds for n, i in ext.identifiers.items()} == {
        "f": ("parameter",), "stdin": ("local",), "x": ("parameter",), "sqrt": ("local",),
    }
    new = renamed_ok(ATTRS, {"f": "handle", "stdin": "stream", "sqrt": "result"})
    assert new == src(
        """
        import math
        import sys

        class Reader:
            def __init__(self, handle):
                self.f = handle
                stream = handle
                sys.stdin = stream

        def root(x):
            result = math.sqrt(x)
            return result
        """
    )


def test_text_replacement_that_hits_an_attribute_is_rejected_by_the_checker():
    naive = ATTRS.replace("sqrt", "result")  # what renaming by text does: math.result
    result = check_rename(ATTRS, naive, {"sqrt": "result"}, language="python")
    assert not result.alpha_equivalent
    assert "changes a name that is not an occurrence of a renamed variable" in result.reasons[0]


def test_keyword_argument_names_are_not_renamed_and_keep_the_callee_parameter():
    program = src(
        """
        def area(n):
            return n * n

        def main():
            n = 3
            return area(n=n)
        """
    )
    assert kinds(program) == {"n": ("local",)}
    assert "passes 'n=' by keyword (line 6)" in excluded(program)["n"]
    assert renamed_ok(program, {"n": "side"}) == src(
        """
        def area(n):
            return n * n

        def main():
            side = 3
            return area(n=side)
        """
    )


def test_parameters_of_a_function_called_with_a_mapping_are_excluded():
    program = src(
        """
        def solve(a, b):
            return a + b

        def read():
            a, b = 1, 2
            return locals()

        def run(c):
            return solve(**read()) + c
        """
    )
    reasons = {(x.name, x.scope): x.reason for x in extract(program, "python").exclusions}
    assert reasons[("a", "function solve (line 1)")] == "solve(**mapping) at line 9 may pass it by keyword"
    assert reasons[("b", "function solve (line 1)")] == "solve(**mapping) at line 9 may pass it by keyword"
    assert reasons[("a", "function read (line 4)")].startswith("visible to locals() at line 6")
    assert kinds(program) == {"c": ("parameter",)}


def test_builtin_keyword_calls_do_not_exclude_parameters():
    program = "def show(items, end, x):\n    print(sorted(items, key=len), '{x}'.format(x=x), end=end)\n"
    assert kinds(program) == {"items": ("parameter",), "end": ("parameter",), "x": ("parameter",)}
    # A keyword passed to anything that may be a function of the program does exclude.
    assert "passes 'x=' by keyword" in excluded("def f(x):\n    return helper.run(x=x)\n")["x"]


# --------------------------------------------------------------------------- f-strings


def test_fstring_interpolations_are_occurrences():
    program = src(
        """
        def report(x, width):
            label = "x"
            return f"{label}: {x!r:>{width}} {x * 2}" + "{x}"
        """
    )
    assert kinds(program) == {"x": ("parameter",), "width": ("parameter",), "label": ("local",)}
    assert renamed_ok(program, {"x": "value", "width": "w"}) == src(
        """
        def report(value, w):
            label = "x"
            return f"{label}: {value!r:>{w}} {value * 2}" + "{x}"
        """
    )


def test_self_documenting_fstring_prints_the_name():
    program = 'def f(total):\n    return f"{total=}"\n'
    assert kinds(program) == {}
    assert excluded(program)["total"] == "printed by the self-documenting f-string {total=} at line 2"


# --------------------------------------------------------------------------- scopes


def test_comprehension_variable_that_shadows_is_a_separate_binding():
    program = src(
        """
        def f(x):
            squares = [x * x for x in range(x)]
            return x, squares
        """
    )
    ext = extract(program, "python")
    assert kinds(program) == {"x": ("parameter", "comprehension_variable"), "squares": ("local",)}
    by_scope = {b.scope: len(b.spans) for b in ext.bindings if b.name == "x"}
    # The first iterable `range(x)` is evaluated in the function: it reads the parameter.
    assert by_scope == {"function f (line 1)": 3, "comprehension (line 2)": 3}
    assert renamed_ok(program, {"x": "n"}) == src(
        """
        def f(n):
            squares = [n * n for n in range(n)]
            return n, squares
        """
    )


def test_walrus_in_a_comprehension_binds_in_the_function():
    program = src(
        """
        def f(data):
            kept = [y for v in data if (y := v * 2) > 3]
            return y, kept
        """
    )
    ext = extract(program, "python")
    y = [b for b in ext.bindings if b.name == "y"]
    assert [(b.kind, b.scope, len(b.spans)) for b in y] == [("local", "function f (line 1)", 3)]
    assert kinds(program)["v"] == ("comprehension_variable",)


def test_closure_reads_the_enclosing_variable_and_nonlocal_is_excluded():
    program = src(
        """
        def counter(start):
            count = start
            step = 1
            def bump():
                nonlocal count
                count += step
                return count
            return bump
        """
    )
    assert kinds(program) == {"start": ("parameter",), "step": ("local",)}
    assert excluded(program) == {"count": "declared nonlocal at line 5 (in function bump (line 4))"}
    assert renamed_ok(program, {"step": "delta", "start": "first"}) == src(
        """
        def counter(first):
            count = first
            delta = 1
            def bump():
                nonlocal count
                count += delta
                return count
            return bump
        """
    )


def test_global_names_are_excluded_and_other_module_variables_are_renamed_inside_functions():
    program = src(
        """
        limit = 10
        calls = 0

        def check(v):
            global calls
            calls += 1
            return v < limit

        def reset():
            global fresh
            fresh = 0
        """
    )
    assert kinds(program) == {"limit": ("module_variable",), "v": ("parameter",)}
    reasons = excluded(program)
    assert reasons == {
        "calls": "declared global at line 5 (in function check (line 4))",
        "fresh": "declared global at line 10 (in function reset (line 9))",
    }
    assert renamed_ok(program, {"limit": "bound"}) == program.replace("limit", "bound")


def test_class_attributes_are_excluded_and_invisible_from_methods():
    program = src(
        """
        size = 3

        class Grid:
            size = 5
            cells = [size for _ in range(size)]

            def area(self):
                return size * size
        """
    )
    ext = extract(program, "python")
    reasons = {(x.name, x.scope): x.reason for x in ext.exclusions}
    assert reasons[("size", "class Grid (line 3)")] == "class attribute of class Grid (line 3)"
    assert reasons[("cells", "class Grid (line 3)")] == "class attribute of class Grid (line 3)"
    assert reasons[("self", "function area (line 7)")].startswith("'self' is a method's conventional receiver")
    # The module `size` is read by the method (class scopes are skipped) but also shares its
    # name with a class attribute whose body reads `size`: left out to be safe.
    assert reasons[("size", "module")] == "also a class attribute of class Grid (line 3), whose body may read either"
    assert kinds(program) == {"_": ("comprehension_variable",)}


def test_imports_function_and_class_names_are_not_variables_and_shadow():
    program = src(
        """
        import os.path
        from collections import deque as dq
        path = 1

        def helper():
            import json
            return json, os, dq

        def use():
            json = path
            return json
        """
    )
    assert kinds(program) == {"path": ("module_variable",), "json": ("local",)}
    ext = extract(program, "python")
    json = [b for b in ext.bindings if b.name == "json"]
    assert [b.scope for b in json] == ["function use (line 9)"]
    assert renamed_ok(program, {"json": "data", "path": "origin"}) == src(
        """
        import os.path
        from collections import deque as dq
        origin = 1

        def helper():
            import json
            return json, os, dq

        def use():
            data = origin
            return data
        """
    )


def test_match_case_captures():
    program = src(
        """
        def describe(cmd):
            match cmd:
                case [first, *rest] if first:
                    return first, rest
                case {"k": value, **others}:
                    return value, others
                case Point(x=px, y=0) | [px, 0]:
                    return px
                case str() as alias:
                    return alias
                case Color.RED | _:
                    return None
        """
    )
    assert kinds(program) == {
        "cmd": ("parameter",), "first": ("pattern_variable",), "rest": ("pattern_variable",),
        "value": ("pattern_variable",), "others": ("pattern_variable",), "px": ("pattern_variable",),
        "alias": ("pattern_variable",),
    }
    new = renamed_ok(program, {"px": "x_pos", "first": "head", "cmd": "command"})
    assert "case Point(x=x_pos, y=0) | [x_pos, 0]:" in new
    assert "match command:" in new and "case [head, *rest] if head:" in new


# --------------------------------------------------------------------------- unsafe scopes


def test_eval_excludes_visible_variables_only():
    program = src(
        """
        base = 2

        def calc(expr):
            scale = 3
            return eval(expr) * scale

        def other(k):
            return k * base
        """
    )
    assert kinds(program) == {"k": ("parameter",)}
    reasons = excluded(program)
    assert set(reasons) == {"base", "expr", "scale"}
    assert all(r == "visible to eval() at line 5, which reads or writes variables by name" for r in reasons.values())


def test_locals_vars_globals_and_exec_are_unsafe_but_vars_of_an_object_is_not():
    assert excluded("def f(a):\n    b = 1\n    return locals()\n").keys() == {"a", "b"}
    assert excluded("def f(a):\n    return vars()\n").keys() == {"a"}
    assert excluded("def f(a):\n    return globals()\n").keys() == {"a"}
    assert excluded("def f(a):\n    exec('a = 1')\n").keys() == {"a"}
    assert kinds("def f(a):\n    return vars(a)\n") == {"a": ("parameter",)}
    nested = src(
        """
        def outer(a):
            def inner(b):
                return locals()
            c = 1
            return inner, c
        """
    )
    # locals() in `inner` sees inner's and the enclosing function's variables.
    assert excluded(nested).keys() == {"a", "b", "c"}


# --------------------------------------------------------------------------- Python 2


PY2 = src(
    """
    import sys

    def solve(line):
        words = line.split()
        try:
            n = int(words[0])
        except ValueError, e:
            print >>sys.stderr, "bad", e
            return 0
        return sum(int(w) for w in words[1:n + 1])

    T = int(raw_input())
    for case in xrange(1, T + 1):
        print "Case #%d: %d" % (case, solve(raw_input()))
    """
)


def test_python2_program():
    ext = extract(PY2, "python")
    assert ext.parse_errors == 0
    assert kinds(PY2) == {
        "line": ("parameter",), "words": ("local",), "n": ("local",), "e": ("catch_parameter",),
        "w": ("comprehension_variable",), "T": ("module_variable",), "case": ("module_variable",),
    }
    new = renamed_ok(PY2, {"e": "err", "case": "k", "T": "cases", "words": "parts"}, py3=False)
    assert new == src(
        """
        import sys

        def solve(line):
            parts = line.split()
            try:
                n = int(parts[0])
            except ValueError, err:
                print >>sys.stderr, "bad", err
                return 0
            return sum(int(w) for w in parts[1:n + 1])

        cases = int(raw_input())
        for k in xrange(1, cases + 1):
            print "Case #%d: %d" % (k, solve(raw_input()))
        """
    )


def test_python2_exec_statement_backticks_and_tuple_parameters():
    program = "def f(a, (b, c)):\n    exec 'x = 1'\n    return a\ndef g(d, e):\n    return `d` + e\n"
    reasons = excluded(program)
    assert set(reasons) == {"a", "b", "c", "d"}
    assert reasons["a"] == "visible to the exec statement at line 2, which reads or writes variables by name"
    assert reasons["d"] == "also occurs at line 5 inside Python 2 backticks, which the grammar reads as a string"
    assert kinds(program) == {"e": ("parameter",)}


def test_python2_except_comma_forms():
    program = src(
        """
        class Oops(Exception):
            pass

        def f(a):
            try:
                return a()
            except (ValueError, KeyError), err:
                return err
            except ValueError, Oops:
                return Oops
            except KeyError, TypeError:
                return None
        """
    )
    assert kinds(program) == {"a": ("parameter",), "err": ("catch_parameter",)}
    # In Python 3.14 `except A, B:` catches both types: a class of the program is not renamed,
    # and a builtin exception name is not taken as a binding at all.
    assert excluded(program)["Oops"].startswith("'except ..., Oops:' at line 9 names a class or import")
    assert "TypeError" not in excluded(program)


def test_python2_list_comprehension_leak_is_excluded():
    program = "def f(a):\n    b = [x for x in a]\n    return x, b\n"
    assert kinds(program) == {"a": ("parameter",), "b": ("local",)}
    assert excluded(program)["x"].startswith("a list-comprehension variable also used at line 3")
    # A generator expression does not leak, not even in Python 2.
    assert kinds("def f(a):\n    b = list(x for x in a)\n    return x, b\n")["x"] == ("comprehension_variable",)


def test_space_before_tab_in_indentation_excludes_the_affected_scopes():
    # Python reads " \t" as column 8, tree-sitter as column 9: `total` ends up outside `g`.
    program = "def f(a):\n    return a\n\ndef g(b):\n    if b:\n \ttotal = b\n        return total\n"
    assert kinds(program) == {"a": ("parameter",)}  # f ends before the line: unaffected
    reasons = excluded(program)
    assert set(reasons) == {"b", "total"}
    assert all(r.startswith("line 6 indents with a space before a tab") for r in reasons.values())
    # Tabs after tabs only (or spaces only) read the same in both: nothing is excluded.
    assert kinds("def g(b):\n\tif b:\n\t\ttotal = b\n\t\treturn total\n") == {
        "b": ("parameter",), "total": ("local",),
    }


# --------------------------------------------------------------------------- module level


def test_module_variables_all_and_dunders():
    program = src(
        """
        __all__ = ["public"]
        __author__ = "me"
        public = 1
        private = 2
        for i in range(3):
            private += i
        print(public, private)
        """
    )
    assert kinds(program) == {"private": ("module_variable",), "i": ("module_variable",)}
    reasons = excluded(program)
    assert reasons["public"] == "listed in __all__ (part of the module's public interface)"
    assert reasons["__author__"] == "a special module attribute (dunder name)"


def test_a_module_variable_renamed_to_underscores_only_stays_renameable():
    """`___` is no dunder: the rename constraints admit it, so the extraction must not exclude it
    (it did, and an ALERT success on gcjpy renamed a module variable to `___` and was not
    alpha-equivalent). `____` likewise; `__x__` stays excluded and refused."""
    from engine.code import Renamer, check_rename, extract, validate

    program = "size = 3\nfor i in range(size):\n    print(i * size)\n"
    before = extract(program, "python")
    for new in ("___", "____"):
        assert validate(before, {"size": new}) == []
        renamed = Renamer(before).apply({"size": new})
        assert new in extract(renamed, "python").identifiers
        assert check_rename(before, renamed, {"size": new}).alpha_equivalent
    assert validate(before, {"size": "__x__"}) and "__x__" not in kinds("__x__ = 3\nprint(__x__)\n")


def test_star_import_excludes_the_names_it_may_define():
    program = "from math import *\ne = 3\ncount = 2\nprint(e * count * pi)\n"
    assert kinds(program) == {"count": ("module_variable",)}
    assert excluded(program)["e"] == "'from math import *' (line 1) may also define it"
    assert kinds("from mystery import *\ncount = 2\n") == {}


def test_name_bound_as_variable_and_function_is_excluded():
    program = "def step(x):\n    return x\nstep = 3\n"
    assert excluded(program)["step"] == "the same name is also bound as a function (line 1) in the same scope"


# --------------------------------------------------------------------------- broken and empty input


def test_syntax_error_still_returns_identifiers():
    program = "def f(a, b):\n    c = a + b\n    return c +\n\ndef g(d):\n    return d\n"
    ext = extract(program, "python")
    assert ext.parse_errors > 0
    # Only the function that parses keeps its variables: tree-sitter's error recovery can change
    # with the length of a name, so the variables of a scope holding an error are left out.
    assert kinds(program) == {"d": ("parameter",)}
    unstable = "its scope has code that does not parse (line 3); tree-sitter's error recovery there can change with the length of a name"
    assert excluded(program) == {
        "a": unstable,
        "b": unstable,
        "c": "also occurs at line 3 inside code that does not parse, where it cannot be renamed safely",
    }
    new = rename(program, "python", {"d": "value"})
    assert new == "def f(a, b):\n    c = a + b\n    return c +\n\ndef g(value):\n    return value\n"
    result = check_rename(program, new, {"d": "value"}, language="python")
    assert result.parses and result.alpha_equivalent and result.compiles is None


def test_empty_input():
    ext = extract("", "python")
    assert ext.identifiers == {} and ext.exclusions == [] and ext.parse_errors == 0


# --------------------------------------------------------------------------- validation


VALIDATE = src(
    """
    import math

    def hyp(a, b):
        sq = a * a + b * b
        return round(math.sqrt(sq), ndigits=2)
    """
)


@pytest.mark.parametrize(
    "new, reason",
    [
        ("if", "keyword"),
        ("print", "keyword"),  # in Python 2, which most of the real data is
        ("round", "already used"),  # a builtin the function calls
        ("math", "already used"),  # a module the function reads
        ("a", "already used"),
        ("hyp", "already used"),  # the function's own name, in its definition
        ("__name__", "dunder"),
        ("2x", "not a valid python identifier"),
    ],
)
def test_validate_rejects_bad_new_names(new, reason):
    ext = extract(VALIDATE, "python")
    rejections = validate(ext, {"sq": new})
    assert len(rejections) == 1 and reason in rejections[0].reason


@pytest.mark.parametrize("new", ["match", "case", "type", "_", "len", "list", "xrange", "sqrt", "ndigits"])
def test_validate_accepts_soft_keywords_unused_builtins_attributes_and_builtin_keywords(new):
    # soft keywords are names outside their statements; builtins the function does not call;
    # `math.sqrt`'s attribute; `ndigits=` passed to the builtin `round`
    ext = extract(VALIDATE, "python")
    assert validate(ext, {"sq": new}) == []


def test_validate_rejects_two_variables_to_one_name_and_non_variables():
    ext = extract(VALIDATE, "python")
    assert {r.old for r in validate(ext, {"a": "side", "b": "side"})} == {"a", "b"}
    assert "not a variable" in validate(ext, {"math": "m2"})[0].reason
    assert "not a variable" in validate(ext, {"hyp": "h2"})[0].reason
    with pytest.raises(RenameError):
        rename(VALIDATE, "python", {"sq": "math"})


def test_all_renames_of_the_validation_program_check_out():
    new = renamed_ok(VALIDATE, {"a": "x_side", "b": "y_side", "sq": "total"})
    assert new == src(
        """
        import math

        def hyp(x_side, y_side):
            total = x_side * x_side + y_side * y_side
            return round(math.sqrt(total), ndigits=2)
        """
    )


def test_renamer_candidates_match_apply():
    ext = extract(PY2, "python")
    renamer = Renamer(ext)
    candidates = renamer.candidates("words", ["toks", "items_"])
    assert candidates == [renamer.apply({"words": "toks"}), renamer.apply({"words": "items_"})]
