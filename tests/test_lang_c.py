"""C scope rules (`engine/code/lang_c.py`): what is a variable, which occurrences are its own.

Every fixture states the exact renameable identifiers and the exact renamed text, and checks
that `check_rename` accepts the rename as alpha-equivalent.
"""
from __future__ import annotations

import pytest

from engine.code import Renamer, check_rename, extract, rename, validate
from engine.code.rename import RenameError


def kinds(program: str) -> dict[str, tuple[str, ...]]:
    return {name: ident.kinds for name, ident in extract(program, "c").identifiers.items()}


def renamed(program: str, mapping: dict[str, str]) -> str:
    """Rename through the public API and check the result is the same program."""
    out = rename(program, "c", mapping)
    result = check_rename(program, out, mapping, language="c")
    assert result.ok and result.alpha_equivalent and result.parses, result.reasons
    return out


def bindings(program: str, name: str):
    return [b for b in extract(program, "c").bindings if b.name == name]


# --- declarations -------------------------------------------------------------------------

def test_locals_with_initializers_pointers_and_arrays():
    program = """\
int f(void)
{
    int n = 0;
    char *p = buf, **q;
    int a[N], m;
    q = &p;
    a[n] = m;
    return n + a[0];
}
"""
    assert kinds(program) == {"n": ("local",), "p": ("local",), "q": ("local",), "a": ("local",), "m": ("local",)}
    assert renamed(program, {"n": "count", "p": "ptr", "a": "arr"}) == """\
int f(void)
{
    int count = 0;
    char *ptr = buf, **q;
    int arr[N], m;
    q = &ptr;
    arr[count] = m;
    return count + arr[0];
}
"""


def test_parameters_through_pointer_array_and_function_pointer_declarators():
    program = """\
int apply(int (*cb)(int x), const char *s, int v[], int n)
{
    return cb(n) + s[0] + v[n];
}
"""
    # `x` names a parameter of the pointed-to function type: not a variable of this program.
    assert kinds(program) == {"cb": ("parameter",), "s": ("parameter",), "v": ("parameter",), "n": ("parameter",)}
    assert renamed(program, {"cb": "fn", "n": "len", "v": "vals"}) == """\
int apply(int (*fn)(int x), const char *s, int vals[], int len)
{
    return fn(len) + s[0] + vals[len];
}
"""


def test_own_parameters_of_unusual_function_declarators():
    # `getfn` returns a function pointer: `a` is its parameter, `b` belongs to the pointed-to
    # prototype. `HELPER(mvc)(...)` is QEMU's macro-made name: the parameters are the outer list.
    program = """\
int (*getfn(int a))(int b)
{
    int g(int q);
    return a ? g : 0;
}

void HELPER(mvc)(CPUState *env, uint32_t l)
{
    env->x = l;
}
"""
    assert kinds(program) == {"a": ("parameter",), "env": ("parameter",), "l": ("parameter",)}
    assert renamed(program, {"a": "k", "env": "cpu", "l": "len"}) == program.replace("int a)", "int k)").replace(
        "a ? g", "k ? g"
    ).replace("CPUState *env, uint32_t l", "CPUState *cpu, uint32_t len").replace("env->x = l;", "cpu->x = len;")


def test_k_and_r_parameters_include_their_declarations():
    program = """\
int old(a, b)
    int a;
    char *b;
{
    return a + b[0];
}
"""
    assert kinds(program) == {"a": ("parameter",), "b": ("parameter",)}
    assert renamed(program, {"a": "x", "b": "y"}) == """\
int old(x, y)
    int x;
    char *y;
{
    return x + y[0];
}
"""


def test_for_loop_variable_is_scoped_to_the_loop():
    program = """\
int sum(const int *xs, int n)
{
    int total = 0;
    for (int i = 0, j = n; i < j; i++)
        total += xs[i];
    return total;
}
"""
    assert kinds(program) == {
        "xs": ("parameter",), "n": ("parameter",), "total": ("local",),
        "i": ("loop_variable",), "j": ("loop_variable",),
    }
    ext = extract(program, "c")
    (i,) = [b for b in ext.bindings if b.name == "i"]
    loop_end = program.index("xs[i];") + len("xs[i];")
    assert i.scope_span == (program.index("int i"), loop_end)  # the for statement, not beyond
    assert i.scope == "for loop (line 4) in function sum (line 1)"
    assert renamed(program, {"i": "k", "total": "acc"}) == """\
int sum(const int *xs, int n)
{
    int acc = 0;
    for (int k = 0, j = n; k < j; k++)
        acc += xs[k];
    return acc;
}
"""


def test_shadowing_in_a_nested_block_is_a_separate_binding():
    program = """\
int f(int x)
{
    int y = x;
    {
        int x = y * 2;
        y += x;
    }
    return x + y;
}
"""
    xs = bindings(program, "x")
    assert [(b.kind, b.scope) for b in xs] == [
        ("parameter", "function f (line 1)"),
        ("local", "block (line 4) in function f (line 1)"),
    ]
    spans = [[program.count("\n", 0, s) + 1 for s, _ in b.spans] for b in xs]
    assert spans == [[1, 3, 8], [5, 6]]
    assert kinds(program) == {"x": ("parameter", "local"), "y": ("local",)}
    assert renamed(program, {"x": "v", "y": "w"}) == """\
int f(int v)
{
    int w = v;
    {
        int v = w * 2;
        w += v;
    }
    return v + w;
}
"""


def test_a_name_is_in_scope_from_the_end_of_its_declarator():
    # `int n[n]`: the size is the outer `n`; in `int m = n[0], k = m;` `k` sees the new `m`.
    program = """\
void f(int n)
{
    {
        int n[n];
        int m = n[0], k = m;
        use(n, k);
    }
}
"""
    outer, inner = bindings(program, "n")
    line = lambda b: [program.count("\n", 0, s) + 1 for s, _ in b.spans]
    assert line(outer) == [1, 4] and line(inner) == [4, 5, 6]
    assert program[outer.spans[1][0] - 2 : outer.spans[1][1] + 1] == "n[n]"


def test_block_scope_typedef_enum_constant_extern_and_prototype_are_not_variables():
    program = """\
int f(int a, int b, int c, int d)
{
    {
        typedef int a;
        enum { b = 1 };
        extern int c;
        int d(int);
        a v = b + c + d(0);
        return v;
    }
}
"""
    # Inside the block the four names no longer denote the parameters.
    assert kinds(program) == {"a": ("parameter",), "b": ("parameter",), "c": ("parameter",), "d": ("parameter",), "v": ("local",)}
    for name in "abcd":
        param = bindings(program, name)[0]
        assert param.kind == "parameter" and len(param.spans) == 1  # the declaration only
    # The extern declaration is a variable, but one defined elsewhere: excluded, with its use.
    (extern,) = [x for x in extract(program, "c").exclusions]
    assert (extern.name, extern.kind) == ("c", "local") and "extern" in extern.reason
    assert len(bindings(program, "c")[1].spans) == 2
    assert renamed(program, {"a": "p", "v": "w"}) == program.replace("int a,", "int p,").replace(" v ", " w ").replace("return v", "return w")


def test_file_scope_names_fields_enum_constants_typedefs_and_functions_are_not_returned():
    program = """\
#include <stdio.h>
typedef struct node { int len; struct node *next; } node_t;
enum color { RED, GREEN };
static int counter = 0;
int helper(int);

int walk(node_t *head)
{
    int len = 0;
    for (node_t *p = head; p; p = p->next)
        len += p->len + RED + counter + helper(len);
    return len;
}
"""
    assert kinds(program) == {"head": ("parameter",), "len": ("local",), "p": ("loop_variable",)}
    assert renamed(program, {"len": "size", "p": "it"}) == program.replace(
        "int len = 0;", "int size = 0;"
    ).replace(
        "for (node_t *p = head; p; p = p->next)", "for (node_t *it = head; it; it = it->next)"
    ).replace(
        "len += p->len + RED + counter + helper(len);", "size += it->len + RED + counter + helper(size);"
    ).replace("return len;", "return size;")


# --- occurrences that are not the variable ------------------------------------------------

def test_struct_fields_beside_a_local_of_the_same_name():
    program = """\
void bump(struct s *p, struct s q)
{
    int n = p->n;
    p->n++;
    q.n = n;
    n = q.n + p->n;
}
"""
    assert kinds(program) == {"p": ("parameter",), "q": ("parameter",), "n": ("local",)}
    assert renamed(program, {"n": "count"}) == """\
void bump(struct s *p, struct s q)
{
    int count = p->n;
    p->n++;
    q.n = count;
    count = q.n + p->n;
}
"""


def test_a_called_function_is_not_a_local_of_another_function():
    program = """\
int reader(int fd)
{
    char buf[16];
    return read(fd, buf, sizeof buf);
}

int other(void)
{
    int read = 3;
    return read + 1;
}
"""
    (binding,) = bindings(program, "read")
    assert binding.scope == "function other (line 7)" and len(binding.spans) == 2
    assert renamed(program, {"read": "nread"}) == program.replace("int read = 3;", "int nread = 3;").replace(
        "return read + 1;", "return nread + 1;"
    )


def test_calling_a_function_pointer_local_is_an_occurrence():
    program = """\
int run(int (*op)(int), int v)
{
    int (*f)(int) = op;
    return f(v) + op(v);
}
"""
    assert kinds(program) == {"op": ("parameter",), "f": ("local",), "v": ("parameter",)}
    assert renamed(program, {"f": "g", "op": "fn"}) == """\
int run(int (*fn)(int), int v)
{
    int (*g)(int) = fn;
    return g(v) + fn(v);
}
"""


def test_designated_initializer_field_is_not_the_local():
    program = """\
struct pt make(int x)
{
    int y = x * 2;
    struct pt r = { .x = x, .y = y, [0] = y };
    return r;
}
"""
    assert kinds(program) == {"x": ("parameter",), "y": ("local",), "r": ("local",)}
    assert renamed(program, {"x": "a", "y": "b"}) == """\
struct pt make(int a)
{
    int b = a * 2;
    struct pt r = { .x = a, .y = b, [0] = b };
    return r;
}
"""


def test_goto_label_named_like_a_variable_stays():
    program = """\
int f(int fail)
{
    if (fail)
        goto fail;
    return 0;
fail:
    return fail;
}
"""
    assert kinds(program) == {"fail": ("parameter",)}
    assert renamed(program, {"fail": "err"}) == """\
int f(int err)
{
    if (err)
        goto fail;
    return 0;
fail:
    return err;
}
"""


def test_strings_comments_struct_tags_and_macros_stay():
    program = """\
int f(int size)
{
    struct size *s = 0; /* size of the thing */
    printf("size=%d\\n", size);
    return SIZE_MAX - size;
}
"""
    assert kinds(program) == {"size": ("parameter",), "s": ("local",)}
    # `n` occurs only in the escape `\\n` and `s` is another variable.
    assert validate(extract(program, "c"), {"size": "n"}) == []
    assert "already used" in validate(extract(program, "c"), {"size": "s"})[0].reason
    assert renamed(program, {"size": "count"}) == """\
int f(int count)
{
    struct size *s = 0; /* size of the thing */
    printf("size=%d\\n", count);
    return SIZE_MAX - count;
}
"""


def test_local_used_in_sizeof():
    program = """\
void clear(int *p)
{
    char buf[64];
    memset(buf, 0, sizeof(buf));
    memset(p, 0, sizeof *p + sizeof buf);
}
"""
    assert kinds(program) == {"p": ("parameter",), "buf": ("local",)}
    assert renamed(program, {"buf": "b", "p": "q"}) == """\
void clear(int *q)
{
    char b[64];
    memset(b, 0, sizeof(b));
    memset(q, 0, sizeof *q + sizeof b);
}
"""


def test_type_identifier_that_names_a_variable_is_an_occurrence():
    # tree-sitter reads the expression statement `n * p;` as a declaration of `p` with type
    # `n`; with `n` a variable in scope it can only be the multiplication.
    program = """\
void f(int n, int *p)
{
    n * p;
    n = *p;
}
"""
    ext = extract(program, "c")
    assert ext.parse_errors == 0
    assert kinds(program) == {"n": ("parameter",), "p": ("parameter",)}
    assert [program.count("\n", 0, s) + 1 for s, _ in ext.identifiers["n"].spans] == [1, 3, 4]
    assert [program.count("\n", 0, s) + 1 for s, _ in ext.identifiers["p"].spans] == [1, 3, 4]
    assert renamed(program, {"n": "k", "p": "q"}) == """\
void f(int k, int *q)
{
    k * q;
    k = *q;
}
"""


def test_asm_symbolic_operand_names_are_not_variables():
    program = """\
int f(int v)
{
    int out;
    __asm__ ("mov %[v], %0" : "=r"(out) : [v] "r"(v));
    return out;
}
"""
    assert renamed(program, {"v": "x"}) == program.replace("int v)", "int x)").replace('"r"(v)', '"r"(x)')


# --- macros and code that does not parse ---------------------------------------------------

def test_local_in_a_macro_body_inside_the_function_is_excluded():
    program = """\
int f(int a, int b)
{
    int c = a;
#define ADD(x) ((x) + c)
    return ADD(b);
}
"""
    ext = extract(program, "c")
    assert set(ext.identifiers) == {"a", "b"}
    (exclusion,) = ext.exclusions
    assert exclusion.name == "c" and "macro body" in exclusion.reason
    assert "not renameable" in validate(ext, {"c": "d"})[0].reason
    assert renamed(program, {"b": "y"}) == program.replace("int b)", "int y)").replace("ADD(b)", "ADD(y)")


def test_macro_defined_before_the_declaration_still_excludes():
    # A macro body is resolved where it is expanded, so one defined earlier (even at file
    # scope) that uses `ret` may refer to the local `ret` declared later.
    program = """\
#define CHECK(e) do { if ((ret = (e)) < 0) goto fail; } while (0)
int f(int x)
{
    int ret;
    CHECK(g(x));
    return 0;
fail:
    return ret;
}
"""
    ext = extract(program, "c")
    assert set(ext.identifiers) == {"x"}
    assert [(x.name, x.kind) for x in ext.exclusions] == [("ret", "local")]
    assert "macro body" in ext.exclusions[0].reason


def test_preprocessor_conditions_are_not_occurrences_and_branches_are_code():
    program = """\
int f(int n)
{
#if n > 0
    int k = n;
#else
    int k = -n;
#endif
#ifdef k
    k++;
#endif
    return k;
}
"""
    assert kinds(program) == {"n": ("parameter",), "k": ("local",)}
    assert renamed(program, {"n": "m", "k": "j"}) == """\
int f(int m)
{
#if n > 0
    int j = m;
#else
    int j = -m;
#endif
#ifdef k
    j++;
#endif
    return j;
}
"""


def test_macro_qualified_declaration_is_not_renamed_whatever_the_recovery():
    # `av_unused` is a macro: tree-sitter cannot tell it from the declared name, and which
    # of the two lands in an ERROR node depends on their lengths. Neither is renameable.
    program = """\
int f(int h)
{
    uint8_t av_unused end_bit = (h & 0x40) >> 6;
    return h;
}
"""
    ext = extract(program, "c")
    assert ext.parse_errors > 0
    assert kinds(program) == {"h": ("parameter",)}
    assert sorted(x.name for x in ext.exclusions) == ["av_unused", "end_bit"]
    assert all("does not parse" in x.reason for x in ext.exclusions)
    assert "not renameable" in validate(ext, {"end_bit": "e"})[0].reason
    for new in ("v", "a_much_longer_name"):
        out = renamed(program, {"h": new})
        assert out == program.replace("h", new)


def test_function_with_a_syntax_error_still_gives_its_identifiers():
    program = """\
int f(int a)
{
    int b = a +;
    int c = b * 2;
    return c;
}
"""
    ext = extract(program, "c")
    assert ext.parse_errors > 0
    assert kinds(program) == {"a": ("parameter",), "b": ("local",), "c": ("local",)}
    assert renamed(program, {"c": "d"}) == program.replace("int c", "int d").replace("return c", "return d")


def test_function_whose_whole_body_fails_to_parse():
    # A missing `}` makes tree-sitter return the function flat, with loose braces.
    program = """\
static int f(int a, int *p)
{
    int b = a;
    if (b) {
        int c = *p;
        b += c;
    return b;
}
"""
    ext = extract(program, "c")
    assert ext.parse_errors > 0
    assert kinds(program) == {"a": ("parameter",), "p": ("parameter",), "b": ("local",), "c": ("local",)}
    assert renamed(program, {"a": "x", "c": "y"}) == program.replace("int a", "int x").replace("= a;", "= x;").replace(
        "int c", "int y"
    ).replace("+= c", "+= y")


def test_function_without_return_type_recovers_its_parameters():
    # Devign extracts often start at the function name; the header then reads as a call.
    program = """\
e1000_can_receive(void *opaque, int n)
{
    E1000State *s = opaque;
    return s->n + n;
}
"""
    ext = extract(program, "c")
    assert ext.parse_errors > 0
    assert kinds(program) == {"opaque": ("parameter",), "n": ("parameter",), "s": ("local",)}
    assert ext.bindings[0].scope == "function e1000_can_receive (line 1)"
    assert renamed(program, {"n": "k", "opaque": "o"}) == """\
e1000_can_receive(void *o, int k)
{
    E1000State *s = o;
    return s->n + k;
}
"""


@pytest.mark.parametrize("program", ["", "\n", "int", "int f(", "}}}", "#define X(a) a\n", "struct { int a; } s;", "{ int x; x++; }"])
def test_fragments_never_crash(program):
    ext = extract(program, "c")
    renamed = Renamer(ext).apply({name: name + "_r" for name in ext.identifiers})
    # every occurrence, and nothing else, gained the suffix
    assert len(renamed) == len(program) + 2 * sum(len(ident.spans) for ident in ext.identifiers.values())
    assert renamed.replace("_r", "") == program


def test_empty_input():
    ext = extract("", "c")
    assert ext.identifiers == {} and ext.exclusions == [] and ext.bindings == [] and ext.parse_errors == 0


def test_deeply_nested_expression_does_not_hit_the_recursion_limit():
    program = "int f(int a)\n{\n    return " + " + ".join(["a"] * 5000) + ";\n}\n"
    ext = extract(program, "c")
    assert len(ext.identifiers["a"].spans) == 5001


# --- validation ------------------------------------------------------------------------------

VALIDATE_PROGRAM = """\
struct buf { int len; };
int size_of(struct buf *b)
{
    int n = b->len;
    int m = n;
    return m;
}
"""


@pytest.mark.parametrize(
    "new, reason",
    [
        ("int", "keyword"),
        ("while", "keyword"),
        ("NULL", "standard c macro"),
        ("errno", "standard c macro"),
        ("size_of", "already used"),  # the function's own name (in its definition)
        ("b", "already used"),  # a parameter
        ("m", "already used"),  # another variable
        ("1x", "not a valid"),
    ],
)
def test_validate_rejects_unsafe_new_names(new, reason):
    ext = extract(VALIDATE_PROGRAM, "c")
    (rejection,) = validate(ext, {"n": new})
    assert reason in rejection.reason


@pytest.mark.parametrize("new", ["len", "buf", "printf", "string", "class", "new"])
def test_validate_accepts_fields_tags_unused_library_names_and_cpp_keywords(new):
    # a field after `->`, a struct tag, a library function the program does not use, a C++
    # name, C++ keywords (the data is C, and names its variables `class` and `new`)
    ext = extract(VALIDATE_PROGRAM, "c")
    assert validate(ext, {"n": new}) == []


def test_validate_rejects_two_variables_to_one_name_and_non_variables():
    ext = extract(VALIDATE_PROGRAM, "c")
    assert {r.old for r in validate(ext, {"n": "k", "m": "k"})} == {"n", "m"}
    assert "not a variable" in validate(ext, {"len": "k"})[0].reason
    assert "not a variable" in validate(ext, {"size_of": "k"})[0].reason
    with pytest.raises(RenameError):
        rename(VALIDATE_PROGRAM, "c", {"b": "m"})
    assert validate(ext, {"n": "k", "m": "j", "b": "p"}) == []


def test_scope_spans_cover_where_references_may_appear():
    program = """\
int f(int a)
{
    int b = a;
    {
        int c = b;
        b = c;
    }
    return b;
}
"""
    ext = extract(program, "c")
    spans = {b.name: b.scope_span for b in ext.bindings}
    assert spans["a"] == (0, len(program) - 1)
    assert spans["b"] == (program.index("int b"), len(program) - 1)
    assert spans["c"] == (program.index("int c"), program.index("}") + 1)
