"""The collision rule of `validate` (engine/code/collisions.py): a new name is refused only where
it would capture or be captured, per language, and every refused class stays refused."""
from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest

from bench import shared_data
from bench.back_rename import back_rename, measure
from engine.code import Renamer, check_rename, extract, validate


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def accepted(program: str, language: str, old: str, new: str) -> None:
    ext = extract(program, language)
    assert validate(ext, {old: new}) == []
    renamed = Renamer(ext).apply({old: new})
    result = check_rename(ext, renamed, {old: new})
    assert result.ok, result.reasons


def refused(program: str, language: str, old: str, new: str) -> str:
    ext = extract(program, language)
    assert old in ext.identifiers, (old, ext.exclusions)
    [rejection] = validate(ext, {old: new})
    return rejection.reason


# ----------------------------------------------------------------------------------------- C

C_GLOBALS = src(
    """
    #define LIMIT (count + 1)
    typedef struct node { int type; struct node *next; } node_t;
    static int helper(int v) { return v + BUF_MAX; }
    int walk(node_t *s, const char *label)
    {
        int k = 0, m = 1;
        printf("%s\\n", label);
        for (node_t *p = s; p; p = p->next) {
            int t = p->type;
            k += helper(t) + m;
        }
        {
            int j = k;
            m = j;
        }
    again:
        if (k > LIMIT) goto again;
        return k;
    }
    """
)


@pytest.mark.parametrize(
    "old, new, reason",
    [
        ("t", "k", "already used where 't' is visible"),  # another variable in scope
        ("k", "m", "already used where 'k' is visible"),  # declared before in the same declaration
        ("t", "helper", "already used where 't' is visible"),  # a function the scope calls
        ("label", "printf", "already used where 'label' is visible"),  # a library function the scope calls
        ("k", "node_t", "already used where 'k' is visible"),  # a typedef name the scope uses
        ("label", "BUF_MAX", "preprocessor substitutes"),  # used elsewhere, declared nowhere: a macro?
        ("t", "LIMIT", "preprocessor substitutes"),  # a macro of the program
        ("t", "count", "preprocessor substitutes"),  # a word of a macro body
        ("t", "while", "c keyword"),
        ("t", "errno", "standard c macro"),
        ("t", "and", "c keyword"),  # <iso646.h> macro
        ("t", "TRUE", "standard c macro"),  # tree-sitter-c reads it as `true`
    ],
)
def test_c_refuses_names_in_scope_and_scope_blind_names(old, new, reason):
    assert reason in refused(C_GLOBALS, "c", old, new)


C_ACCEPTED = [
        ("k", "n"),  # occurs only in the string's `\n`
        ("t", "type"),  # a field: `p->type`
        ("t", "next"),  # a field, also a struct member declaration
        ("j", "node"),  # a struct tag
        ("j", "again"),  # a label: a namespace of its own
        ("j", "string"),  # a C++ library name the program does not use
        ("j", "class"),  # a C++ keyword: the data is C
        ("t", "j"),  # a variable of a sibling block
        ("j", "t"),
]


@pytest.mark.parametrize("old, new", C_ACCEPTED)
def test_c_accepts_strings_fields_tags_labels_and_sibling_blocks(old, new):
    accepted(C_GLOBALS, "c", old, new)


@pytest.mark.parametrize("language", ["c", "python"])
def test_every_word_the_grammar_reads_as_a_keyword_is_refused(language):
    import re

    from engine.code.languages import grammar, spec
    from engine.code.reserved import SCOPE_BLIND

    g = grammar(language)
    words = {g.node_kind_for_id(i) for i in range(g.node_kind_count)
             if not g.node_kind_is_named(i) and g.node_kind_is_visible(i)}
    words = {w for w in words if re.fullmatch(r"[A-Za-z_]\w*", w)}
    # Python's soft keywords are names outside their statements (compile() checks each rename);
    # Java's contextual keywords are read as names where a variable can stand (javac agrees);
    # `__future__` is refused as a dunder name.
    allowed = {"c": set(), "python": {"match", "case", "type", "_", "__future__"}}[language]
    assert words - spec(language).keywords - SCOPE_BLIND[language] - allowed == set()


def test_c_redeclaration_in_the_same_block_or_beside_a_parameter_is_refused():
    program = "int f(int a)\n{\n    int b = a;\n    {\n        int c = 0;\n        b += c;\n    }\n    return b;\n}\n"
    assert "already used" in refused(program, "c", "b", "a")  # the parameter (also read)
    unused = "int f(int a)\n{\n    int b = 1;\n    return b;\n}\n"
    assert "already used" in refused(unused, "c", "b", "a")  # beside an unused parameter: C forbids it
    accepted(program, "c", "c", "a")  # shadows `a` in a nested block where `a` is not used


def test_c_local_may_shadow_an_outer_name_used_before_its_declaration_only_when_declared():
    program = "int f(int a)\n{\n    int r = a;\n    {\n        r += a;\n        int c = r;\n        r = c;\n    }\n    return r;\n}\n"
    accepted(program, "c", "c", "a")  # `a` is read in the block, but before `c` is declared


# -------------------------------------------------------------------------------------- Java

JAVA = src(
    """
    class Buffer {
        private int size;
        private int[] data;
        int fill(java.util.List<Integer> in, int limit) {
            int count = 0;
            for (int value : in) {
                if (count >= size) break;
                data[count++] = value;
            }
            Runnable r = () -> System.out.println(limit);
            outer:
            for (int i = 0; i < count; i++) {
                int copy = this.data[i];
                if (copy < 0) continue outer;
            }
            return count;
        }
        int other(int x) {
            int y = x * 2;
            java.util.Objects.hash(y);
            return y + this.size + length();
        }
        int length() { return data.length; }
    }
    """
)


@pytest.mark.parametrize(
    "old, new, reason",
    [
        ("count", "size", "already used"),  # a field read unqualified in the method
        ("copy", "count", "already used"),  # an enclosing local
        ("copy", "limit", "already used"),  # a parameter declared before (Java forbids shadowing it)
        ("count", "System", "already used"),  # a type the method uses
        ("y", "java", "already used"),  # the first part of a qualified name
        ("count", "data", "already used"),  # a field read unqualified (data[count++])
        ("count", "var", "keyword"),
        ("count", "_", "keyword"),
    ],
)
def test_java_refuses_names_used_or_declared_in_the_method(old, new, reason):
    assert reason in refused(JAVA, "java", old, new)


JAVA_ACCEPTED = [
        ("y", "size"),  # a field read only as `this.size`
        ("y", "data"),  # a field of the class, not used in `other`
        ("y", "length"),  # a method: its own namespace
        ("y", "println"),  # a method name after `.`
        ("y", "outer"),  # a label of another method
        ("y", "in"),  # a parameter of another method
        ("x", "out"),  # `System.out`'s field name
        ("y", "count"),  # a local of another method
        ("y", "record"),  # a contextual keyword, a legal local name
]


@pytest.mark.parametrize("old, new", JAVA_ACCEPTED)
def test_java_accepts_fields_methods_labels_and_other_methods_locals(old, new):
    accepted(JAVA, "java", old, new)


def _compiles(command: list[str], path, code: str) -> bool:
    path.write_text(code)
    done = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=120)
    return done.returncode == 0


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_accepted_c_renames_still_compile(tmp_path):
    header = "#include <stdio.h>\n#define BUF_MAX 8\nint count;\n"
    command = ["gcc", "-std=c11", "-c", "-o", str(tmp_path / "out.o")]
    assert _compiles(command, tmp_path / "f.c", header + C_GLOBALS)
    ext = extract(header + C_GLOBALS, "c")
    for old, new in C_ACCEPTED:
        assert _compiles(command, tmp_path / "f.c", Renamer(ext).apply({old: new})), (old, new)


@pytest.mark.skipif(shutil.which("javac") is None, reason="no javac")
def test_accepted_java_renames_still_compile(tmp_path):
    command = ["javac", "-d", str(tmp_path)]
    renamer = Renamer(extract(JAVA, "java"))
    program = "\n".join([JAVA] + [renamer.apply({old: new}).replace("class Buffer", f"class Buffer{i}")
                                   for i, (old, new) in enumerate(JAVA_ACCEPTED)])
    assert _compiles(command, tmp_path / "Buffer.java", program)


def test_java_locals_named_in_and_out():
    program = src(
        """
        void copy(java.io.InputStream source, java.io.OutputStream sink) throws java.io.IOException {
            int b;
            while ((b = source.read()) >= 0) sink.write(b);
        }
        """
    )
    ext = extract(program, "java")
    assert validate(ext, {"source": "in", "sink": "out"}) == []


# ------------------------------------------------------------------------------------ Python

PYTHON = src(
    """
    import sys

    def solve(case, data, **options):
        total = 0
        best = [v for v in data if v]
        def show(item):
            return str(item) + suffix
        for item in best:
            total += item.size * len(item)
        print(show(total))
        return total

    suffix = "\\n"
    for n in range(int(sys.stdin.readline())):
        solve(n, [], verbose=True)
    """
)


@pytest.mark.parametrize(
    "old, new, reason",
    [
        ("total", "best", "already used where 'total' is visible"),  # another variable
        ("total", "len", "already used"),  # a builtin the function calls
        ("total", "suffix", "already used"),  # a global read by a nested function
        ("item", "str", "already used"),  # a builtin read in a nested scope
        ("v", "total", "already used"),  # Python 2 leaks the comprehension variable
        ("data", "verbose", "keyword-argument name"),  # **options would receive it
        ("n", "sys", "already used"),  # module-level: the whole module is its scope
        ("total", "print", "keyword"),  # Python 2
        ("total", "None", "keyword"),
        ("total", "__class__", "dunder"),
    ],
)
def test_python_refuses_captures_of_free_names_and_keyword_arguments(old, new, reason):
    assert reason in refused(PYTHON, "python", old, new)


@pytest.mark.parametrize(
    "old, new",
    [
        ("total", "size"),  # an attribute: `item.size`
        ("total", "n"),  # in the module scope and in a string's `\n`, not in `solve`
        ("total", "match"),  # soft keywords are names outside their statements
        ("best", "type"),
        ("total", "_"),
        ("total", "max"),  # a builtin the function does not use
        ("total", "readline"),  # an attribute
    ],
)
def test_python_accepts_attributes_strings_soft_keywords_and_unused_builtins(old, new):
    accepted(PYTHON, "python", old, new)


# ------------------------------------------------------------------------ back-rename (always)

BACK_RENAME_PROGRAMS = [
    ("c", 'int f(struct s *s, int n) {\n  int type = s->type, size = s->size;\n  printf("n=%d\\n", n);\n  return type + size;\n}\n'),
    ("c", "char *dup(const char *string, int new) {\n  char *class = malloc(new);\n  strcpy(class, string);\n  return class;\n}\n"),
    ("java", "int read(java.io.InputStream in, byte[] out) throws java.io.IOException {\n  int length = in.read(out);\n  return length + out.length;\n}\n"),
    ("java", "int size(java.util.List<String> to) { int record = to.size(); int when = record; return when; }\n"),
    ("python", "def f(match, case):\n    type = match.type\n    for _ in case:\n        type += 1\n    return type\n"),
    ("python", "def g(data, size):\n    index = data.index(size)\n    print 'n=%d\\n' % index\n    return index\n"),
]


@pytest.mark.parametrize("language, program", BACK_RENAME_PROGRAMS)
def test_renaming_back_to_the_original_names_is_accepted(language, program):
    assert extract(program, language).identifiers
    assert back_rename(program, language) is None


# ------------------------------------------------------------------- back-rename on real data

REAL = [
    ("devign (C)", shared_data.devign_functions, shared_data.DEVIGN.is_file()),
    ("gcj (Python)", shared_data.gcj_programs, all(path.is_file() for path in shared_data.GCJ)),
    ("JDK methods (Java)", lambda: shared_data.jdk_methods(600), shared_data.jdk_source() is not None),
]


@pytest.mark.shared_data
@pytest.mark.parametrize("label, reader, present", REAL, ids=[label for label, _, _ in REAL])
def test_renaming_back_is_accepted_on_98_percent_of_real_programs(label, reader, present):
    if not present:
        pytest.skip(f"no {label} data here")
    summary = measure(reader())
    assert summary.programs >= 300, summary.programs
    assert summary.share >= 0.98, (summary.share, summary.reasons.most_common(5), summary.examples[:5])
