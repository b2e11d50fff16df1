"""Java scope rules (`engine/code/lang_java.py`): exactly which names are renameable, and where.

Every fixture states the exact identifiers (names and kinds) and the exact renamed text, and
checks that `check_rename` accepts the rename. Several fixtures are the pitfalls that the
published attack pipelines get wrong on BigCloneBench (catch parameters missed; the method
name, fields and `System.out` / `in.read` renamed along with a local).
"""
from __future__ import annotations

import pytest

from engine.code import Renamer, check_rename, extract, rename, validate
from engine.code.parsing import parse
from engine.code.lang_java import collect_bindings


def kinds(source: str) -> dict[str, tuple[str, ...]]:
    return {name: ident.kinds for name, ident in extract(source, "java").identifiers.items()}


def renamed(source: str, mapping: dict[str, str]) -> str:
    """Rename through the public API and assert that the check accepts it."""
    text = rename(source, "java", mapping)
    result = check_rename(source, text, mapping, language="java")
    assert result.ok and result.alpha_equivalent and result.parses, result.reasons
    assert result.compiles is None  # no Java compiler is run: unknown, not false
    # Renaming back (by spans: old names may be keywords or library names) restores the original.
    back = Renamer(extract(text, "java")).apply({new: old for old, new in mapping.items()})
    assert back == source
    return text


def occurrences(source: str, name: str) -> list[tuple[int, str]]:
    """(line, text) of every occurrence of identifier `name`."""
    ext = extract(source, "java")
    data = ext.source
    return [(data.count(b"\n", 0, s) + 1, data[s:e].decode()) for s, e in ext.identifiers[name].spans]


# --- declarations of every kind ------------------------------------------------------------

def test_bare_method_parameters_locals_and_loops():
    src = """\
public static int sum(int[] xs, String... labels) {
    int total = 0, count;
    var scale = 2;
    for (int i = 0, j = xs.length; i < j; i++) total += xs[i] * scale;
    for (final String label : labels) System.out.println(label);
    count = labels.length;
    return total + count;
}
"""
    assert kinds(src) == {
        "xs": ("parameter",),
        "labels": ("parameter",),
        "total": ("local",),
        "count": ("local",),
        "scale": ("local",),
        "i": ("loop_variable",),
        "j": ("loop_variable",),
        "label": ("loop_variable",),
    }
    assert "sum" not in kinds(src)  # the method's own name is never a variable
    mapping = {"xs": "a", "labels": "b", "total": "t", "i": "k", "j": "m", "label": "s", "scale": "f"}
    assert renamed(src, mapping) == """\
public static int sum(int[] a, String... b) {
    int t = 0, count;
    var f = 2;
    for (int k = 0, m = a.length; k < m; k++) t += a[k] * f;
    for (final String s : b) System.out.println(s);
    count = b.length;
    return t + count;
}
"""


def test_catch_parameters_including_multi_catch():
    src = """\
void load(String path) {
    try {
        Files.readString(Path.of(path));
    } catch (NoSuchFileException e) {
        log(e.getMessage());
    } catch (IOException | SecurityException e) {
        throw new RuntimeException(path, e);
    }
}
"""
    assert kinds(src) == {"path": ("parameter",), "e": ("catch_parameter",)}
    ext = extract(src, "java")
    # Two catch clauses: two bindings of `e`, each visible in its own catch clause only.
    data = ext.source
    clauses = sorted(b.scope_span for b in ext.bindings if b.name == "e")
    headers = [data[s:e].split(b"{")[0] for s, e in clauses]
    assert headers == [b"NoSuchFileException e) ", b"IOException | SecurityException e) "]
    assert clauses[0][1] < clauses[1][0]
    assert renamed(src, {"e": "failure"}) == """\
void load(String path) {
    try {
        Files.readString(Path.of(path));
    } catch (NoSuchFileException failure) {
        log(failure.getMessage());
    } catch (IOException | SecurityException failure) {
        throw new RuntimeException(path, failure);
    }
}
"""


def test_try_with_resources_variables_and_an_existing_resource():
    src = """\
String first(File file, Reader shared) throws IOException {
    try (FileReader in = new FileReader(file); BufferedReader reader = new BufferedReader(in); shared) {
        return reader.readLine();
    } finally {
        file.delete();
    }
}
"""
    assert kinds(src) == {
        "file": ("parameter",),
        "shared": ("parameter",),
        "in": ("resource",),
        "reader": ("resource",),
    }
    assert renamed(src, {"in": "source", "reader": "lines", "shared": "other"}) == """\
String first(File file, Reader other) throws IOException {
    try (FileReader source = new FileReader(file); BufferedReader lines = new BufferedReader(source); other) {
        return lines.readLine();
    } finally {
        file.delete();
    }
}
"""


def test_lambda_parameters_in_all_three_forms():
    src = """\
void sort(List<String> names, Map<String, Integer> ages) {
    names.removeIf(n -> n.isEmpty());
    ages.forEach((k, v) -> System.out.println(k + v));
    names.sort((String a, String b) -> a.compareTo(b));
}
"""
    assert kinds(src) == {
        "names": ("parameter",),
        "ages": ("parameter",),
        "n": ("lambda_parameter",),
        "k": ("lambda_parameter",),
        "v": ("lambda_parameter",),
        "a": ("lambda_parameter",),
        "b": ("lambda_parameter",),
    }
    assert extract(src, "java").identifiers["k"].scopes == ("lambda (line 3)",)
    assert renamed(src, {"n": "s", "k": "key", "v": "val", "a": "x", "b": "y"}) == """\
void sort(List<String> names, Map<String, Integer> ages) {
    names.removeIf(s -> s.isEmpty());
    ages.forEach((key, val) -> System.out.println(key + val));
    names.sort((String x, String y) -> x.compareTo(y));
}
"""


def test_pattern_variables_instanceof_record_and_switch():
    src = """\
static String show(Object o) {
    if (o instanceof String s && !s.isEmpty()) return s;
    if (!(o instanceof Integer n)) return "?";
    if (o instanceof Point(int x, var y)) return x + "," + y;
    return switch (o) {
        case Long l when l > 0 -> "+" + l;
        case Point(int px, int py) -> px + ":" + py;
        default -> "n=" + n;
    };
}
"""
    assert kinds(src) == {
        "o": ("parameter",),
        "s": ("pattern_variable",),
        "n": ("pattern_variable",),
        "x": ("pattern_variable",),
        "y": ("pattern_variable",),
        "l": ("pattern_variable",),
        "px": ("pattern_variable",),
        "py": ("pattern_variable",),
    }
    # Flow scoping: `n` is used after the `if` that introduces it.
    assert occurrences(src, "n") == [(3, "n"), (8, "n")]
    assert renamed(src, {"s": "str", "n": "num", "x": "a", "l": "big", "px": "p"}) == """\
static String show(Object o) {
    if (o instanceof String str && !str.isEmpty()) return str;
    if (!(o instanceof Integer num)) return "?";
    if (o instanceof Point(int a, var y)) return a + "," + y;
    return switch (o) {
        case Long big when big > 0 -> "+" + big;
        case Point(int p, int py) -> p + ":" + py;
        default -> "n=" + num;
    };
}
"""


def test_switch_statement_group_local_is_visible_in_later_groups():
    src = """\
int code(int k) {
    switch (k) {
        case 1:
            int z = 10;
            return z;
        default:
            z = 20;
            return z;
    }
}
"""
    assert kinds(src) == {"k": ("parameter",), "z": ("local",)}
    assert renamed(src, {"z": "r"}) == src.replace("z", "r")


def test_bare_case_label_variable_is_excluded_with_a_reason():
    src = """\
int pick(int k) {
    final int LOW = 1;
    switch (k) { case LOW: return 0; default: return LOW + k; }
}
"""
    ext = extract(src, "java")
    assert set(ext.identifiers) == {"k"}
    [excluded] = ext.exclusions
    assert excluded.name == "LOW" and "case label" in excluded.reason and "enum" in excluded.reason
    assert "not renameable" in validate(ext, {"LOW": "x"})[0].reason


# --- what is never renamed -----------------------------------------------------------------

def test_local_out_is_renamed_but_not_system_out():
    src = """\
void report(int errors) {
    int out = errors * 2;
    System.out.println(out);
    System.err.println(out);
}
"""
    assert kinds(src) == {"errors": ("parameter",), "out": ("local",)}
    assert occurrences(src, "out") == [(2, "out"), (3, "out"), (4, "out")]
    assert renamed(src, {"out": "doubled"}) == """\
void report(int errors) {
    int doubled = errors * 2;
    System.out.println(doubled);
    System.err.println(doubled);
}
"""


def test_local_read_is_renamed_but_not_the_method_read_nor_the_calls():
    src = """\
public int read(InputStream in, byte[] buf) throws IOException {
    int read = in.read(buf);
    if (read < 0) return read();
    return read + this.read(buf, read);
}
"""
    assert kinds(src) == {"in": ("parameter",), "buf": ("parameter",), "read": ("local",)}
    assert occurrences(src, "read") == [(2, "read"), (3, "read"), (4, "read"), (4, "read")]
    assert renamed(src, {"read": "count", "in": "stream"}) == """\
public int read(InputStream stream, byte[] buf) throws IOException {
    int count = stream.read(buf);
    if (count < 0) return read();
    return count + this.read(buf, count);
}
"""


def test_fields_are_never_renamed_even_when_assigned_without_this():
    src = """\
class Counter {
    private int count;
    private int total;
    Counter(int count) { this.count = count; total = count; }
    void add(int delta) { count += delta; total = count; }
    int peek() { int count = this.count; return count + total; }
}
"""
    assert kinds(src) == {"count": ("parameter", "local"), "delta": ("parameter",)}
    assert occurrences(src, "count") == [(4, "count"), (4, "count"), (4, "count"), (6, "count"), (6, "count")]
    assert renamed(src, {"count": "n", "delta": "d"}) == """\
class Counter {
    private int count;
    private int total;
    Counter(int n) { this.count = n; total = n; }
    void add(int d) { count += d; total = count; }
    int peek() { int n = this.count; return n + total; }
}
"""


def test_labels_annotations_enum_constants_types_and_imports_are_not_variables():
    src = """\
package demo.scan;
import java.util.List;
import static java.lang.Math.max;

enum Mode { FAST, SLOW }

class Scanner2 {
    @SuppressWarnings(value = "unchecked")
    int scan(List<String> lines, Mode mode) {
        @Deprecated int best = 0;
        outer:
        for (String line : lines) {
            for (int i = 0; i < line.length(); i++) {
                if (line.charAt(i) == '#') continue outer;
                if (mode == Mode.FAST) break outer;
                best = max(best, i);
            }
        }
        return best;
    }
}
"""
    assert kinds(src) == {
        "lines": ("parameter",),
        "mode": ("parameter",),
        "best": ("local",),
        "line": ("loop_variable",),
        "i": ("loop_variable",),
    }
    ext = extract(src, "java")
    for name in ("outer", "FAST", "Mode", "List", "demo", "max", "value", "SuppressWarnings", "scan"):
        assert name not in ext.identifiers
    assert renamed(src, {"line": "text", "mode": "m", "best": "top"}) == """\
package demo.scan;
import java.util.List;
import static java.lang.Math.max;

enum Mode { FAST, SLOW }

class Scanner2 {
    @SuppressWarnings(value = "unchecked")
    int scan(List<String> lines, Mode m) {
        @Deprecated int top = 0;
        outer:
        for (String text : lines) {
            for (int i = 0; i < text.length(); i++) {
                if (text.charAt(i) == '#') continue outer;
                if (m == Mode.FAST) break outer;
                top = max(top, i);
            }
        }
        return top;
    }
}
"""


def test_qualified_this_and_super_are_not_variables():
    src = """\
class Inner extends Base {
    int x;
    void set(int x, Outer Outer) {
        Outer.this.x = x;
        Outer.super.reset();
        Outer.reset();
        super.x = x;
    }
}
"""
    # `Outer.this` / `Outer.super` name a type; a bare `Outer.reset()` is the variable (JLS 6.4.2).
    assert occurrences(src, "Outer") == [(3, "Outer"), (6, "Outer")]
    assert occurrences(src, "x") == [(3, "x"), (4, "x"), (7, "x")]


def test_method_references_rename_the_receiver_variable_only():
    src = """\
void collect(List<String> sink, Stream<String> items) {
    items.map(String::trim).forEach(sink::add);
}
"""
    assert kinds(src) == {"sink": ("parameter",), "items": ("parameter",)}
    assert renamed(src, {"sink": "out2", "items": "xs"}) == """\
void collect(List<String> out2, Stream<String> xs) {
    xs.map(String::trim).forEach(out2::add);
}
"""


def test_enhanced_for_iterable_is_outside_the_loop_variable_scope():
    # `for (String items : items)`: the iterated `items` is the field, only the body sees the local.
    src = """\
class Bag {
    List<String> items;
    void dump() { for (String items : items) print(items); }
}
"""
    assert occurrences(src, "items") == [(3, "items"), (3, "items")]
    assert renamed(src, {"items": "it"}) == """\
class Bag {
    List<String> items;
    void dump() { for (String it : items) print(it); }
}
"""


# --- nested classes and lambdas ------------------------------------------------------------

def test_captured_locals_in_anonymous_classes_and_shadowing_by_inner_members():
    src = """\
void start(final Timer timer, int limit) {
    int ticks = 0;
    Runnable counter = () -> System.out.println(ticks + limit);
    TimerTask task = new TimerTask() {
        int ticks = 5;
        public void run() {
            int left = ticks - limit;
            if (left < 0) timer.cancel();
            counter.run();
        }
        void reset(int limit) { ticks = limit; }
    };
    timer.schedule(task, ticks);
}
"""
    assert kinds(src) == {
        "timer": ("parameter",),
        "limit": ("parameter",),
        "ticks": ("local",),
        "counter": ("local",),
        "task": ("local",),
        "left": ("local",),
    }
    # Inside the anonymous class `ticks` is its own field; `limit` is the captured parameter
    # except in reset(), whose parameter shadows it (a separate binding of the same name).
    assert occurrences(src, "ticks") == [(2, "ticks"), (3, "ticks"), (13, "ticks")]
    ext = extract(src, "java")
    limits = sorted(b.scope for b in ext.bindings if b.name == "limit")
    assert limits == ["method reset (line 11)", "method start (line 1)"]
    assert ext.identifiers["left"].scopes == ("method run (line 6)",)
    assert renamed(src, {"ticks": "n", "limit": "cap", "timer": "t", "left": "rest"}) == """\
void start(final Timer t, int cap) {
    int n = 0;
    Runnable counter = () -> System.out.println(n + cap);
    TimerTask task = new TimerTask() {
        int ticks = 5;
        public void run() {
            int rest = ticks - cap;
            if (rest < 0) t.cancel();
            counter.run();
        }
        void reset(int cap) { ticks = cap; }
    };
    t.schedule(task, n);
}
"""


def test_lambda_captures_but_anonymous_class_method_shadows():
    src = """\
IntUnaryOperator make(int x) {
    IntUnaryOperator add = y -> x + y;
    return new IntUnaryOperator() {
        public int applyAsInt(int x) {
            IntUnaryOperator inner = z -> x * z;
            return inner.applyAsInt(x) + add.applyAsInt(1);
        }
    };
}
"""
    ext = extract(src, "java")
    outer, inner = sorted((b for b in ext.bindings if b.name == "x"), key=lambda b: b.spans[0])
    data = ext.source
    lines = [[data.count(b"\n", 0, s) + 1 for s, _ in b.spans] for b in (outer, inner)]
    assert lines == [[1, 2], [4, 5, 6]]
    assert (outer.scope, inner.scope) == ("method make (line 1)", "method applyAsInt (line 4)")
    assert kinds(src)["y"] == kinds(src)["z"] == ("lambda_parameter",)
    assert renamed(src, {"x": "n", "add": "plus"}) == """\
IntUnaryOperator make(int n) {
    IntUnaryOperator plus = y -> n + y;
    return new IntUnaryOperator() {
        public int applyAsInt(int n) {
            IntUnaryOperator inner = z -> n * z;
            return inner.applyAsInt(n) + plus.applyAsInt(1);
        }
    };
}
"""


def test_fields_inherited_by_anonymous_and_local_classes_shadow_outer_locals():
    # Inside `new Scope(env) { ... }` a bare `env` is the field inherited from Scope (declared in
    # the program); inside `new FilterInputStream(in) { ... }` a bare `in` is FilterInputStream's
    # protected field. Renaming the outer parameter there would change what the name refers to.
    src = """\
class Scope {
    protected final Env env;
    Scope(Env env) { this.env = env; }
    static Scope create(Env env, InputStream in, int limit) {
        Scope scope = new Scope(env) { Object top() { return env.top; } };
        InputStream capped = new FilterInputStream(in) {
            public int read() throws IOException { return count < limit ? in.read() : -1; }
            int count;
        };
        Runnable r = new Runnable() { public void run() { use(env, in, limit); } };
        return scope;
    }
}
"""
    assert occurrences(src, "env") == [(3, "env"), (3, "env"), (4, "env"), (5, "env"), (10, "env")]
    assert occurrences(src, "in") == [(4, "in"), (6, "in"), (10, "in")]
    assert occurrences(src, "limit") == [(4, "limit"), (7, "limit"), (10, "limit")]
    out = renamed(src, {"env": "e", "in": "source"})
    assert "Scope scope = new Scope(e) { Object top() { return env.top; } };" in out
    assert "new FilterInputStream(source) {" in out and "in.read()" in out
    assert "use(e, source, limit);" in out


def test_local_class_fields_and_initializer_blocks():
    src = """\
class Outer {
    int value = 3;
    static { int boot = 1; System.setProperty("b", "" + boot); }
    Comparator<String> byLength = (s1, s2) -> s1.length() - s2.length();
    int sum(int value) {
        class Local { int value; int twice() { return value * 2; } }
        Local local = new Local();
        local.value = value;
        return local.twice();
    }
}
"""
    assert kinds(src) == {
        "boot": ("local",),
        "s1": ("lambda_parameter",),
        "s2": ("lambda_parameter",),
        "value": ("parameter",),
        "local": ("local",),
    }
    assert occurrences(src, "value") == [(5, "value"), (8, "value")]
    ext = extract(src, "java")
    assert ext.identifiers["boot"].scopes == ("static initializer (line 3)",)
    assert renamed(src, {"value": "v", "local": "obj"}) == """\
class Outer {
    int value = 3;
    static { int boot = 1; System.setProperty("b", "" + boot); }
    Comparator<String> byLength = (s1, s2) -> s1.length() - s2.length();
    int sum(int v) {
        class Local { int value; int twice() { return value * 2; } }
        Local obj = new Local();
        obj.value = v;
        return obj.twice();
    }
}
"""


def test_record_components_are_fields_and_canonical_constructor_parameters_are_excluded():
    src = """\
record Range(int lo, int hi) {
    Range {
        if (lo > hi) throw new IllegalArgumentException();
    }
    Range(int lo, int hi) { this.lo = lo; this.hi = hi; }
    Range(int size) { this(0, size); }
    boolean contains(int x) { return lo <= x && x < hi; }
}
"""
    # The canonical constructor's parameters must keep the component names (javac rejects
    # `Range(int a, int b)` as an invalid canonical constructor).
    assert kinds(src) == {"size": ("parameter",), "x": ("parameter",)}
    ext = extract(src, "java")
    assert sorted(x.name for x in ext.exclusions) == ["hi", "lo"]
    assert all("canonical constructor" in x.reason for x in ext.exclusions)


# --- scopes, labels, bad input -------------------------------------------------------------

def test_scope_labels_and_spans():
    src = "int f(int a) {\n  { int b = a; }\n  int b = 2;\n  return b;\n}\n"
    bindings = collect_bindings(parse(src, "java"))
    by_start = {b.spans[0][0]: b for b in bindings}
    data = src.encode()
    first_b = by_start[data.index(b"b = a")]
    second_b = by_start[data.index(b"b = 2")]
    assert first_b.scope == second_b.scope == "method f (line 1)"
    assert first_b.scope_span == (data.index(b"b = a"), data.index(b"}") + 1)  # to the end of the inner block
    assert second_b.scope_span[1] == len(data) - 1  # to the end of the method body
    assert [data[s:e] for s, e in second_b.spans] == [b"b", b"b"]
    assert all(b.excluded is None for b in bindings)


def test_contextual_keywords_and_non_ascii_names_are_ordinary_variables():
    src = "void f(List<String> record) {\n    int var = 1, yield2 = 2;\n    String größe = record.get(var);\n}\n"
    assert kinds(src) == {"record": ("parameter",), "var": ("local",), "yield2": ("local",), "größe": ("local",)}
    assert renamed(src, {"record": "rs", "var": "v", "größe": "size"}) == (
        "void f(List<String> rs) {\n    int v = 1, yield2 = 2;\n    String size = rs.get(v);\n}\n"
    )


def test_unnamed_variable_is_excluded():
    ext = extract("void f(List<String> xs) { xs.forEach(_ -> count()); }", "java")
    assert set(ext.identifiers) == {"xs"}
    assert [x.name for x in ext.exclusions] == ["_"]


def test_syntax_error_still_returns_what_parses():
    src = """\
public static String hash(String text, int rounds) {
    MessageDigest md = MessageDigest.getInstance("SHA-1");
    byte[] data = text.getBytes(;
    for (int i = 0; i < rounds; i++) {
        data = md.digest(data);
    }
    return toHex(data)
}
"""
    ext = extract(src, "java")
    assert ext.parse_errors > 0
    assert {n: i.kinds for n, i in ext.identifiers.items()} == {
        "text": ("parameter",),
        "rounds": ("parameter",),
        "md": ("local",),
        "data": ("local",),
        "i": ("loop_variable",),
    }
    mapping = {"data": "bytes", "md": "digest"}
    out = Renamer(ext).apply(mapping)
    assert "bytes = digest.digest(bytes);" in out and "return toHex(bytes)\n" in out
    result = check_rename(ext, out, mapping)
    assert result.alpha_equivalent and result.parses


def test_a_name_inside_unparseable_text_is_excluded():
    src = "void f(int n) {\n    int total = n;\n    total = ) total n;\n    g(total);\n}\n"
    ext = extract(src, "java")
    assert ext.parse_errors > 0
    # `total` also occurs in the ERROR node (as a stray type name): renaming it is unsafe.
    assert set(ext.identifiers) == {"n"}
    [excluded] = ext.exclusions
    assert excluded.name == "total" and "does not parse" in excluded.reason


def test_a_declaration_next_to_unparseable_text_is_excluded_and_missing_names_are_ignored():
    # `enum` cannot be a type name: tree-sitter wraps it in an ERROR right before `handle`, and
    # how it recovers depends on the spelling of the neighbouring names. `int = 5;` gets a
    # zero-width MISSING identifier, which must not become a variable named "".
    src = """\
static boolean cas(VarHandle ob, int index) {
    Array enum handle = (Array) ob;
    int = 5;
    return handle.check(index);
}
"""
    ext = extract(src, "java")
    assert ext.parse_errors == 2
    assert kinds(src) == {"ob": ("parameter",), "index": ("parameter",)}
    [excluded] = ext.exclusions
    assert excluded.name == "handle" and "does not parse cleanly" in excluded.reason
    assert all(b.name for b in ext.bindings)


def test_top_level_statements_are_a_scope_of_their_own():
    src = "int x = 1;\nSystem.out.println(x);\nfor (String s : args) use(s, x);\n"
    ext = extract(src, "java")
    assert ext.parse_errors == 0
    assert kinds(src) == {"x": ("local",), "s": ("loop_variable",)}
    assert ext.identifiers["x"].scopes == ("top level",)
    assert renamed(src, {"x": "y"}) == "int y = 1;\nSystem.out.println(y);\nfor (String s : args) use(s, y);\n"


@pytest.mark.parametrize("src", ["", "\n  \n", "// just a comment\n", "class Empty {}\n"])
def test_empty_input(src):
    ext = extract(src, "java")
    assert ext.identifiers == {} and ext.exclusions == [] and ext.parse_errors == 0


def test_deeply_nested_expression_does_not_hit_the_recursion_limit():
    terms = " + ".join(["x"] * 5000)
    src = f"int f(int x) {{ return {terms}; }}"
    ext = extract(src, "java")
    assert len(ext.identifiers["x"].spans) == 5001


# --- validation ----------------------------------------------------------------------------

VALIDATE_SRC = """\
class Store {
    int size;
    int put(String key, int value) {
        int slot = key.hashCode() % size;
        return slot + value;
    }
}
"""


@pytest.mark.parametrize("new", ["var", "yield", "_", "int", "true", "null"])
def test_validate_rejects_keywords_and_restricted_identifiers(new):
    ext = extract(VALIDATE_SRC, "java")
    [rejection] = validate(ext, {"slot": new})
    assert "keyword" in rejection.reason


@pytest.mark.parametrize("new", ["size", "key", "value"])
def test_validate_rejects_names_used_in_the_method(new):
    # a field read unqualified, a parameter (declared before), another parameter
    ext = extract(VALIDATE_SRC, "java")
    [rejection] = validate(ext, {"slot": new})
    assert "already used where 'slot' is visible" in rejection.reason


@pytest.mark.parametrize("new", ["put", "hashCode", "Store", "record", "when", "to", "System", "in", "out"])
def test_validate_accepts_method_names_unused_types_and_contextual_keywords(new):
    # methods are a namespace of their own; the class name and `System` are not used in the
    # method; `record`, `when`, `to` are legal local names (javac 17 and 25 compile them)
    ext = extract(VALIDATE_SRC, "java")
    assert validate(ext, {"slot": new}) == []


def test_validate_rejects_two_variables_to_one_name_and_non_variables():
    ext = extract(VALIDATE_SRC, "java")
    shared = validate(ext, {"slot": "h", "value": "h"})
    assert {r.old for r in shared} == {"slot", "value"} and all("also given to" in r.reason for r in shared)
    reasons = {r.old: r.reason for r in validate(ext, {"size": "n", "put": "m", "hashCode": "k"})}
    assert all("not a variable or parameter" in reason for reason in reasons.values()) and len(reasons) == 3
    assert validate(ext, {"slot": "$bucket", "value": "v2"}) == []
    assert "not a valid java identifier" in validate(ext, {"slot": "2x"})[0].reason
