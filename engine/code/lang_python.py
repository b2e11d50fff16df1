"""Python scope rules: which names are variables, and which occurrences refer to which variable.

One walk of the tree-sitter-python tree (an explicit stack, no recursion) records, per scope, the
names it binds, the names it declares ``global``/``nonlocal``, the names bound by ``def``,
``class`` and ``import`` (not variables, but they shadow), and every name it reads. A second
pass resolves the reads the way CPython's symbol table does:

- scopes are the module, each ``def``/``async def``, each ``lambda``, each comprehension or
  generator expression (its first iterable is evaluated in the enclosing scope), and class
  bodies. Defaults, annotations, decorators and base classes belong to the enclosing scope;
- a name is local to a scope when the scope binds it anywhere (parameter, assignment target,
  augmented or annotated assignment, ``for``/``with``/``except`` target, ``del``, walrus, match
  capture, import, ``def``, ``class``), unless declared ``global`` or ``nonlocal`` there. A walrus
  inside a comprehension binds in the nearest enclosing non-comprehension scope;
- a free name resolves to the nearest enclosing function-like scope that binds it, else the
  module; class bodies are skipped (a method does not see class attributes), and an enclosing
  ``global x`` sends nested functions to the module too.

Occurrences are identifiers in expression or target position that resolve to a variable. Never
occurrences: attribute names after ``.``, keyword-argument names (``f(n=n)``: only the value),
function/class names, imported names, keyword names in class patterns, and text in strings or
comments -- except f-string interpolations, which the grammar parses and which are occurrences.

Returned bindings (kinds from `model.KINDS`): parameters, locals, ``for`` targets
(``loop_variable``), ``with ... as`` targets, ``except ... as`` targets (``catch_parameter``,
including Python 2 ``except E, e``), comprehension variables, lambda parameters, match captures
(``pattern_variable``), and module-level variables of a script (``module_variable``, whatever
binds them). Excluded, each with its reason:

- class attributes (names bound in a class body are fields);
- names declared ``global`` or ``nonlocal`` anywhere (the binding they refer to);
- every variable visible in a scope that uses ``eval``, ``exec`` (call or Python 2 statement),
  ``locals()``, ``globals()`` or ``vars()`` (its own, the enclosing functions' and the module's);
  a local ``from m import *`` (Python 2) counts the same way;
- module variables listed in ``__all__``, dunder module names (``__author__``), and module
  variables that a module-level ``from m import *`` may also define;
- parameters that a call may pass by keyword: a parameter named ``n`` when some call (other
  than to a builtin) passes ``n=...``, and the parameters of a function called with
  ``**mapping`` (every parameter when the callee cannot be told by name). Renaming them would
  break the call, because keyword names are not renamed;
- ``self``/``cls`` as the first parameter of a method: renaming it is legal but unidiomatic, so
  it is left out (a conventional receiver, not an author's choice);
- a name bound both as a variable and by ``def``/``class``/``import`` in the same scope;
- names printed by a self-documenting f-string ``f"{x=}"`` (renaming changes the output);
- names inside Python 2 backticks, which the grammar reads as a string;
- a list-comprehension variable whose name is also read or bound outside the comprehension
  where it would not resolve to a renameable variable: Python 2 (most of the real data) leaks
  list-comprehension variables into the enclosing scope, Python 3 does not, and the rename must
  be right under both;
- Python 2 ``except E, name`` where ``name`` is a class or import of the program (in Python
  3.14 ``except A, B:`` catches two exception types); a builtin name there is not bound at all;
- every variable of a scope that reaches past a line indented with a space before a tab:
  Python advances a tab to the next multiple of 8 columns, the tree-sitter scanner adds 8, so
  the tree's blocks can differ from Python's from that line on (found in real GCJ programs);
- every variable of a scope that holds an ``ERROR``/``MISSING`` node: tree-sitter's error
  recovery depends on token lengths, so renaming can change what it swallows.

``input()`` is not treated as ``eval``: under Python 2 it evaluates the input line, but in the
programs we attack that line holds data (numbers), not names. Frame inspection
(``sys._getframe().f_locals``) and string-keyed access (``getattr``, ``"%(n)s" % d``) are out
of scope, as for every language.

Identifiers inside ``ERROR`` nodes are not taken as occurrences; `extract` then excludes every
variable whose name also occurs in such a region of its scope (and gives that reason first).

The Python 3 rules were checked occurrence by occurrence against CPython's ``symtable`` on the
224 GCJ programs that compile under Python 3 (no difference).
"""
from __future__ import annotations

import builtins
import re
from importlib import import_module

from tree_sitter import Node

from engine.code.model import Binding
from engine.code.parsing import WORD, Parsed
from engine.code.reserved import is_python_dunder

_UNSAFE_CALLS = frozenset({"eval", "exec", "locals", "globals", "vars", "execfile"})
_RECEIVERS = frozenset({"self", "cls"})
_BUILTINS = frozenset(dir(builtins)) | frozenset(
    "xrange raw_input unicode long basestring unichr reduce file cmp execfile reload apply "
    "buffer intern coerce".split()
)
_UNSAFE_WORDS = re.compile(rb"\b(?:eval|exec|execfile|locals|globals|vars)\b")
# Modules whose public names a module-level `from m import *` may bring in, when the module is
# one of these side-effect-free standard modules; any other star import excludes every
# module variable.
_STAR_SAFE_MODULES = frozenset(
    "math cmath itertools functools collections string random fractions decimal heapq bisect "
    "operator re sys os copy time datetime array struct statistics".split()
)

_COMPREHENSIONS = frozenset(
    {"list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression"}
)
_TARGET_CONTAINERS = frozenset(
    {
        "pattern_list",
        "tuple_pattern",
        "list_pattern",
        "tuple",
        "list",
        "expression_list",
        "parenthesized_expression",
        "as_pattern_target",
        "list_splat_pattern",
        "list_splat",
    }
)
_SKIP = frozenset(
    {
        "comment",
        "string_content",
        "escape_sequence",
        "string_start",
        "string_end",
        "integer",
        "float",
        "true",
        "false",
        "none",
        "ellipsis",
        "keyword_separator",
        "positional_separator",
        "type_conversion",
        "wildcard_import",
        "future_import_statement",
        "line_continuation",
        "import_prefix",
        "pass_statement",
        "break_statement",
        "continue_statement",
    }
)

# Stack operations.
_EXPR = 0  # an expression or statement: identifiers are reads
_TARGET = 1  # an assignment target: identifiers are bindings (extra = kind)
_PATTERN = 2  # a match-case pattern: bare names are captures


class _Scope:
    __slots__ = (
        "kind", "parent", "label", "span", "row", "binds", "nonvars", "globals", "nonlocals",
        "refs", "unsafe", "receiver", "leaky", "def_name", "class_name", "vars",
    )

    def __init__(self, kind: str, parent, label: str, span, row: int):
        self.kind = kind  # "module", "function", "lambda", "comprehension", "class"
        self.parent = parent
        self.label = label
        self.span = span
        self.row = row
        self.binds: dict[str, list] = {}  # name -> [kind, first start, [spans]]
        self.nonvars: dict[str, tuple[str, int]] = {}  # name -> (what, line): def/class/import
        self.globals: dict[str, list] = {}  # name -> [(span, line)] of `global name`
        self.nonlocals: dict[str, list] = {}
        self.refs: list[tuple[str, int, int]] = []
        self.unsafe: list[tuple[str, int]] = []  # (construct, line)
        self.receiver: str | None = None  # `self`/`cls` as a method's first parameter
        self.leaky = False  # a list comprehension (its variables leak in Python 2)
        self.def_name: str | None = None
        self.class_name: str | None = None  # for a method: the class it is defined in
        self.vars: dict[str, _Var] = {}

    def ancestors(self):
        scope = self
        while scope is not None:
            yield scope
            scope = scope.parent


class _Var:
    __slots__ = ("name", "kind", "scope", "start", "spans", "excluded")

    def __init__(self, name: str, kind: str, scope: _Scope, start: int):
        self.name = name
        self.kind = kind
        self.scope = scope
        self.start = start
        self.spans: list[tuple[int, int]] = []
        self.excluded: str | None = None

    def exclude(self, reason: str) -> None:
        if self.excluded is None:
            self.excluded = reason


class _Call:
    __slots__ = ("callee_kind", "callee", "keywords", "splat_line", "line")

    def __init__(self, callee_kind, callee, keywords, splat_line, line):
        self.callee_kind = callee_kind  # "name", "attribute", "str method" or "other"
        self.callee = callee
        self.keywords = keywords  # [(name, line)]
        self.splat_line = splat_line  # line of a `**mapping` argument, or None
        self.line = line


def collect_bindings(parsed: Parsed) -> list[Binding]:
    bindings = _Collector(parsed).run()
    mismatch = _indentation_mismatch(parsed)
    if mismatch is not None:
        line = parsed.source.count(b"\n", 0, mismatch) + 1
        reason = (
            f"line {line} indents with a space before a tab, which tree-sitter reads as a different "
            "block structure than Python does; scopes from there on are unreliable"
        )
        bindings = [
            Binding(b.name, b.kind, b.scope, b.scope_span, b.spans, b.excluded or reason)
            if b.scope_span[1] > mismatch
            else b
            for b in bindings
        ]
    if parsed.parse_errors:
        bindings = _exclude_near_parse_errors(parsed, bindings)
    return bindings


def _exclude_near_parse_errors(parsed: Parsed, bindings: list[Binding]) -> list[Binding]:
    """Exclude the variables of every scope that holds an ERROR or MISSING node.

    Tree-sitter's error recovery is cost-based and the cost depends on token lengths, so a
    rename elsewhere in the same scope can change which tokens the recovery swallows (seen on
    real data: renaming `surprising` moved an occurrence of `maxScore` out of an ERROR node).
    A variable whose name occurs in the ERROR text itself is left to `extract`, whose reason
    names the line.
    """
    regions = [(start, end, parsed.source[start:end]) for start, end in parsed.opaque]
    if parsed.parse_errors > len(regions):
        regions.extend((p, p, b"") for p in _missing_positions(parsed.root))
    out = []
    for b in bindings:
        if b.excluded is None:
            lo, hi = b.scope_span
            name = b.name.encode("utf-8", "surrogateescape")
            for start, end, text in regions:
                if start <= hi and end >= lo and start < end and name in _word_set(text):
                    break  # extract's opaque-region check gives the precise reason
                if start <= hi and end >= lo:
                    line = parsed.source.count(b"\n", 0, start) + 1
                    b = Binding(
                        b.name, b.kind, b.scope, b.scope_span, b.spans,
                        f"its scope has code that does not parse (line {line}); tree-sitter's error "
                        "recovery there can change with the length of a name",
                    )
                    break
        out.append(b)
    return out


def _word_set(text: bytes) -> set[bytes]:
    return set(WORD.findall(text))


def _missing_positions(root: Node) -> list[int]:
    positions = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing:
            positions.append(node.start_byte)
        elif node.has_error:
            stack.extend(node.children)
    return positions


class _Collector:
    def __init__(self, parsed: Parsed):
        self.source = parsed.source
        self.root = parsed.root
        self.scopes: list[_Scope] = []
        self.calls: list[_Call] = []
        self.backtick_words: list[tuple[int, str]] = []
        self.printed: list[tuple[int, int, int]] = []  # f"{x=}" expression spans (start, end, line)
        self.star_imports: list[tuple[_Scope, str, int]] = []
        self.all_names: set[str] | None = None
        self.py2_catches: list[tuple[_Scope, str, int]] = []  # `except E, name:` targets
        self.module = self._new_scope("module", None, "module", self.root, 0)
        self.module.span = (0, len(self.source))  # the root node starts at the first token

    # ----------------------------------------------------------------- the walk

    def _new_scope(self, kind, parent, label, node, row) -> _Scope:
        scope = _Scope(kind, parent, label, (node.start_byte, node.end_byte), row)
        self.scopes.append(scope)
        return scope

    def _text(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", errors="surrogateescape")

    def run(self) -> list[Binding]:
        stack = self.stack = [(_EXPR, self.root, self.module, None)]
        handlers = _HANDLERS
        source = self.source
        pop, push = stack.pop, stack.append
        while stack:
            op, node, scope, extra = pop()
            if op == _EXPR:
                handler = handlers.get(node.type)
                if handler is not None:
                    handler(self, node, scope)
                    continue
                # A plain expression or statement: reads are recorded here, without a stack
                # round trip (their order does not matter), other children are walked.
                refs = None
                for child in reversed(node.named_children):
                    kind = child.type
                    if kind == "identifier":
                        if refs is None:
                            refs = scope.refs
                        start, end = child.start_byte, child.end_byte
                        refs.append((source[start:end].decode("utf-8", "surrogateescape"), start, end))
                    elif kind not in _SKIP:
                        push((_EXPR, child, scope, None))
            elif op == _TARGET:
                self._target(node, scope, extra)
            else:
                self._pattern(node, scope)
        self._resolve()
        self._exclude()
        return self._bindings()

    def _push(self, node, scope, op=_EXPR, extra=None) -> None:
        if node is not None:
            self.stack.append((op, node, scope, extra))

    def _push_all(self, nodes, scope, op=_EXPR, extra=None) -> None:
        self.stack.extend([(op, n, scope, extra) for n in reversed(nodes)])

    def _bind(self, scope: _Scope, node: Node, kind: str) -> None:
        name = self._text(node)
        span = (node.start_byte, node.end_byte)
        entry = scope.binds.get(name)
        if entry is None:
            scope.binds[name] = [kind, span[0], [span]]
        else:
            if span[0] < entry[1]:
                entry[0], entry[1] = kind, span[0]
            entry[2].append(span)

    def _nonvar(self, scope: _Scope, node: Node, what: str) -> None:
        scope.nonvars.setdefault(self._text(node), (what, node.start_point[0] + 1))

    # Expressions and statements ------------------------------------------------

    def _identifier(self, node, scope):
        scope.refs.append((self._text(node), node.start_byte, node.end_byte))

    def _attribute(self, node, scope):
        self._push(node.child_by_field_name("object"), scope)

    def _keyword_argument(self, node, scope):
        self._push(node.child_by_field_name("value"), scope)

    def _call(self, node, scope):
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        line = node.start_point[0] + 1
        callee_kind, callee = "other", None
        if function is not None:
            if function.type == "identifier":
                callee_kind, callee = "name", self._text(function)
            elif function.type == "attribute":
                attr = function.child_by_field_name("attribute")
                owner = function.child_by_field_name("object")
                if owner is not None and owner.type in ("string", "concatenated_string"):
                    callee_kind = "str method"  # "{x}".format(x=1) reaches no function of ours
                elif attr is not None:
                    callee_kind, callee = "attribute", self._text(attr)
        keywords, splat_line = [], None
        if arguments is not None and arguments.type == "argument_list":
            named = arguments.named_children
            for arg in named:
                if arg.type == "keyword_argument":
                    name = arg.child_by_field_name("name")
                    if name is not None:
                        keywords.append((self._text(name), arg.start_point[0] + 1))
                elif arg.type == "dictionary_splat":
                    splat_line = arg.start_point[0] + 1
            if callee_kind == "name" and callee in _UNSAFE_CALLS and (callee != "vars" or not named):
                scope.unsafe.append((f"{callee}()", line))
        elif callee_kind == "name" and callee in _UNSAFE_CALLS:
            scope.unsafe.append((f"{callee}()", line))
        if keywords or splat_line is not None:
            self.calls.append(_Call(callee_kind, callee, keywords, splat_line, line))
        self._push(arguments, scope)
        self._push(function, scope)

    def _exec_statement(self, node, scope):
        scope.unsafe.append(("the exec statement", node.start_point[0] + 1))
        self._push_all(node.named_children, scope)

    def _assignment(self, node, scope):
        self._push(node.child_by_field_name("right"), scope)
        self._push(node.child_by_field_name("type"), scope)
        left = node.child_by_field_name("left")
        self._push(left, scope, _TARGET, "local")
        if scope is self.module and left is not None and left.type == "identifier" and self._text(left) == "__all__":
            right = node.child_by_field_name("right")
            if right is not None:
                names = self.all_names = self.all_names or set()
                for start, end in _strings(right):
                    names.update(m.group().decode() for m in WORD.finditer(self.source[start:end]))

    def _augmented_assignment(self, node, scope):
        self._push(node.child_by_field_name("right"), scope)
        self._push(node.child_by_field_name("left"), scope, _TARGET, "local")

    def _named_expression(self, node, scope):
        target = scope
        while target.kind == "comprehension":
            target = target.parent
        name = node.child_by_field_name("name")
        if name is not None:
            self._bind(target, name, "local")
        self._push(node.child_by_field_name("value"), scope)

    def _for(self, node, scope):
        left = node.child_by_field_name("left")
        rest = [c for c in node.named_children if c != left]
        self._push_all(rest, scope)
        self._push(left, scope, _TARGET, "loop_variable")

    def _with_item(self, node, scope):
        value = node.child_by_field_name("value")
        if value is not None and value.type == "as_pattern":
            self._as_target(value, scope, "with_target")
        else:
            self._push_all(node.named_children, scope)

    def _as_target(self, node, scope, kind):
        """`expr as target`: the expression is read, the alias is bound with `kind`."""
        alias = node.child_by_field_name("alias")
        rest = [c for c in node.named_children if c != alias]
        self._push_all(rest, scope)
        self._push(alias, scope, _TARGET, kind)

    def _as_pattern(self, node, scope):
        self._as_target(node, scope, "local")

    def _except(self, node, scope):
        values = node.children_by_field_name("value")
        others = [c for c in node.named_children if c not in values]
        self._push_all(others, scope)
        if len(values) == 1 and values[0].type == "as_pattern":
            self._as_target(values[0], scope, "catch_parameter")
        elif len(values) == 2:
            # Python 2 `except E, e:` binds e. In Python 3.14 `except A, B:` catches both: a
            # builtin name there is read, a class or import name is excluded after the walk.
            target = values[1]
            if target.type == "identifier" and self._text(target) in _BUILTINS:
                self._push_all(values, scope)
            else:
                if target.type == "identifier":
                    self.py2_catches.append((scope, self._text(target), target.start_point[0] + 1))
                self._push(target, scope, _TARGET, "catch_parameter")
                self._push(values[0], scope)
        else:
            self._push_all(values, scope)

    def _delete(self, node, scope):
        self._push_all(node.named_children, scope, _TARGET, "local")

    def _global(self, node, scope):
        for child in node.named_children:
            if child.type == "identifier":
                scope.globals.setdefault(self._text(child), []).append(
                    ((child.start_byte, child.end_byte), child.start_point[0] + 1)
                )

    def _nonlocal(self, node, scope):
        for child in node.named_children:
            if child.type == "identifier":
                scope.nonlocals.setdefault(self._text(child), []).append(
                    ((child.start_byte, child.end_byte), child.start_point[0] + 1)
                )

    def _import(self, node, scope):
        line = node.start_point[0] + 1
        for child in node.children_by_field_name("name"):
            if child.type == "aliased_import":
                alias = child.child_by_field_name("alias")
                if alias is not None:
                    self._nonvar(scope, alias, f"an import (line {line})")
            elif child.type == "dotted_name" and child.named_child_count:
                first = child.named_children[0]
                self._nonvar(scope, first, f"an import (line {line})")
        if node.type == "import_from_statement" and any(c.type == "wildcard_import" for c in node.children):
            module = node.child_by_field_name("module_name")
            self.star_imports.append((scope, self._text(module) if module is not None else "?", line))

    def _type_alias(self, node, scope):
        left = node.child_by_field_name("left")
        if left is not None:
            for ident in _identifiers(left):
                self._nonvar(scope, ident, f"a type alias (line {ident.start_point[0] + 1})")
        self._push(node.child_by_field_name("right"), scope)

    def _string(self, node, scope):
        children = node.children
        opening = children[0] if children else None
        if opening is not None and opening.type == "string_start" and self.source[opening.end_byte - 1] == 0x60:
            # Python 2 backticks (`x` is repr(x)): the grammar reads them as a string.
            start, end = children[0].end_byte, children[-1].start_byte
            for m in WORD.finditer(self.source[start:end]):
                self.backtick_words.append((start + m.start(), m.group().decode()))
            return
        self._push_all([c for c in children if c.type == "interpolation"], scope)

    def _interpolation(self, node, scope):
        if any(c.type == "=" for c in node.children):
            expression = node.child_by_field_name("expression")
            if expression is not None:
                self.printed.append((expression.start_byte, expression.end_byte, node.start_point[0] + 1))
        self._push_all([c for c in node.named_children if c.type != "type_conversion"], scope)

    def _error(self, node, scope):
        # Nothing inside is an occurrence (extract excludes variables named there); but a call
        # to eval() & co. that did not parse still makes the scope unsafe.
        match = _UNSAFE_WORDS.search(self.source[node.start_byte : node.end_byte])
        if match:
            construct = f"{match.group().decode()} (in code that does not parse)"
            scope.unsafe.append((construct, node.start_point[0] + 1))

    # Definitions -----------------------------------------------------------------

    def _function(self, node, scope):
        name = node.child_by_field_name("name")
        row = node.start_point[0]
        label = f"function {self._text(name) if name is not None else '?'} (line {row + 1})"
        function = self._new_scope("function", scope, label, node, row)
        if name is not None:
            self._nonvar(scope, name, f"a function (line {row + 1})")
            function.def_name = self._text(name)
        if scope.kind == "class":
            function.class_name = scope.def_name
        self._push(node.child_by_field_name("body"), function)
        self._push(node.child_by_field_name("return_type"), scope)
        parameters = node.child_by_field_name("parameters")
        if parameters is not None:
            self._parameters(parameters, function, scope, "parameter")
        self._type_parameters(node, function)

    def _type_parameters(self, node, scope):
        params = node.child_by_field_name("type_parameters")
        if params is not None:
            for child in params.named_children:
                for ident in _identifiers(child, first_only=True):
                    self._nonvar(scope, ident, f"a type parameter (line {ident.start_point[0] + 1})")

    def _lambda(self, node, scope):
        row = node.start_point[0]
        function = self._new_scope("lambda", scope, f"lambda (line {row + 1})", node, row)
        self._push(node.child_by_field_name("body"), function)
        parameters = node.child_by_field_name("parameters")
        if parameters is not None:
            self._parameters(parameters, function, scope, "lambda_parameter")

    def _parameters(self, parameters, function, outer, kind):
        first = True
        for child in parameters.named_children:
            t = child.type
            name = None
            if t == "identifier":
                name = child
            elif t in ("default_parameter", "typed_default_parameter"):
                name = child.child_by_field_name("name")
                self._push(child.child_by_field_name("value"), outer)
                self._push(child.child_by_field_name("type"), outer)
            elif t == "typed_parameter":
                self._push(child.child_by_field_name("type"), outer)
                inner = [c for c in child.named_children if c.type != "type"]
                name = inner[0] if inner else None
            elif t in ("list_splat_pattern", "dictionary_splat_pattern"):
                name = child
            elif t in ("tuple_pattern", "list_pattern"):  # Python 2 `def f(a, (b, c)):`
                self._push(child, function, _TARGET, kind)
                first = False
                continue
            else:
                continue
            if name is not None and name.type in ("list_splat_pattern", "dictionary_splat_pattern"):
                inner = [c for c in name.named_children if c.type == "identifier"]
                name = inner[0] if inner else None
            if name is None:
                continue
            if name.type == "identifier":
                self._bind(function, name, kind)
                if first and outer.kind == "class" and kind == "parameter":
                    text = self._text(name)
                    if text in _RECEIVERS:
                        function.receiver = text
            else:
                self._push(name, function, _TARGET, kind)
            first = False

    def _class(self, node, scope):
        name = node.child_by_field_name("name")
        row = node.start_point[0]
        class_name = self._text(name) if name is not None else "?"
        body_scope = self._new_scope("class", scope, f"class {class_name} (line {row + 1})", node, row)
        body_scope.def_name = class_name
        if name is not None:
            self._nonvar(scope, name, f"a class (line {row + 1})")
        self._push(node.child_by_field_name("body"), body_scope)
        self._push(node.child_by_field_name("superclasses"), scope)
        self._type_parameters(node, body_scope)

    def _comprehension(self, node, scope):
        row = node.start_point[0]
        inner = self._new_scope("comprehension", scope, f"comprehension (line {row + 1})", node, row)
        inner.leaky = node.type == "list_comprehension"
        first = True
        actions = []
        for child in node.named_children:
            if child.type == "for_in_clause":
                left = child.child_by_field_name("left")
                rights = child.children_by_field_name("right")
                actions.append((_TARGET, left, inner, "comprehension_variable"))
                for right in rights:
                    actions.append((_EXPR, right, scope if first else inner, None))
                first = False
            else:
                actions.append((_EXPR, child, inner, None))
        self.stack.extend(a for a in reversed(actions) if a[1] is not None)

    # Targets and patterns ----------------------------------------------------------

    def _target(self, node, scope, kind):
        t = node.type
        if t == "identifier":
            self._bind(scope, node, kind)
        elif t in _TARGET_CONTAINERS:
            self._push_all(node.named_children, scope, _TARGET, kind)
        elif t == "attribute":
            self._push(node.child_by_field_name("object"), scope)
        elif t == "comment":
            pass
        else:  # subscripts, and anything else, are read
            self._push(node, scope)

    def _case_clause(self, node, scope):
        children = node.named_children
        self._push_all([c for c in children if c.type != "case_pattern"], scope)
        self._push_all([c for c in children if c.type == "case_pattern"], scope, _PATTERN)

    def _pattern(self, node, scope):
        t = node.type
        if t == "dotted_name":
            parts = node.named_children
            if len(parts) == 1:
                if self._text(parts[0]) != "_":
                    self._bind(scope, parts[0], "pattern_variable")
            elif parts:
                self._push(parts[0], scope)  # a value pattern such as Color.RED reads Color
        elif t == "identifier":  # `as name`, `*name`, `**name`
            if self._text(node) != "_":
                self._bind(scope, node, "pattern_variable")
        elif t == "class_pattern":
            children = node.named_children
            if children and children[0].type == "dotted_name":
                self._push_dotted(children[0], scope)
                children = children[1:]
            self._push_all(children, scope, _PATTERN)
        elif t == "keyword_pattern":
            children = node.named_children
            self._push_all(children[1:], scope, _PATTERN)  # the first is an attribute name
        elif t == "dict_pattern":
            for child, field in _fields(node):
                if field == "key":
                    if child.type == "dotted_name":
                        self._push_dotted(child, scope)
                    else:
                        self._push(child, scope)
                elif child.is_named:
                    self._push(child, scope, _PATTERN)
        elif t in ("string", "concatenated_string", "integer", "float", "true", "false", "none"):
            self._push(node, scope)
        else:
            self._push_all(node.named_children, scope, _PATTERN)

    def _push_dotted(self, node, scope):
        parts = node.named_children
        if parts:
            self._push(parts[0], scope)

    # ----------------------------------------------------------------- resolution

    def _resolve(self) -> None:
        module = self.module
        self.vars: list[_Var] = []
        # 1. One variable per (scope, name) that the scope binds and does not declare away.
        for scope in self.scopes:
            declared = scope.globals.keys() | scope.nonlocals.keys()
            for name, (kind, start, spans) in scope.binds.items():
                if name in declared:
                    continue
                if scope is module:
                    kind = "module_variable"
                var = _Var(name, kind, scope, start)
                var.spans.extend(spans)
                scope.vars[name] = var
                self.vars.append(var)
        # 2. `global x` in a function that assigns x makes x a module variable.
        for scope in self.scopes:
            for name in scope.globals:
                if name in scope.binds and name not in module.vars:
                    _, start, _ = scope.binds[name]
                    var = _Var(name, "module_variable", module, start)
                    module.vars[name] = var
                    self.vars.append(var)
        # 3. Declarations, binding occurrences in declaring scopes, and reads.
        self.occurrences: list[tuple[str, _Scope, _Var | None, int, int]] = []
        for scope in self.scopes:
            for table, word in ((scope.globals, "global"), (scope.nonlocals, "nonlocal")):
                for name, decls in table.items():
                    target = self._lookup(scope, name)
                    if target is None:
                        continue
                    target.exclude(f"declared {word} at line {decls[0][1]} (in {scope.label})")
                    target.spans.extend(span for span, _ in decls)
                    if name in scope.binds:
                        target.spans.extend(scope.binds[name][2])
            for name, start, end in scope.refs:
                target = self._lookup(scope, name)
                self.occurrences.append((name, scope, target, start, end))
                if target is not None:
                    target.spans.append((start, end))

    def _lookup(self, scope: _Scope, name: str) -> _Var | None:
        """The variable `name` denotes in `scope` (None: a builtin, import, def or undefined)."""
        first = True
        while scope is not None:
            if name in scope.globals:
                return self.module.vars.get(name)
            if name in scope.nonlocals:
                scope = scope.parent
                while scope is not None and scope.kind == "class":
                    scope = scope.parent
                first = False
                continue
            if scope.kind != "class" or first:
                if name in scope.vars:
                    return scope.vars[name]
                if name in scope.nonvars:
                    return None
            scope = scope.parent
            first = False
        return None

    # ----------------------------------------------------------------- exclusions

    def _exclude(self) -> None:
        module = self.module
        for var in self.vars:
            scope = var.scope
            if scope.kind == "class":
                var.exclude(f"class attribute of {scope.label}")
                outer = self._lookup(scope.parent, var.name) if scope.parent is not None else None
                if outer is not None:
                    outer.exclude(f"also a class attribute of {scope.label}, whose body may read either")
            if var.name in scope.nonvars:
                what = scope.nonvars[var.name][0]
                var.exclude(f"the same name is also bound as {what} in the same scope")
            if var.kind == "parameter" and scope.receiver == var.name:
                var.exclude(f"'{var.name}' is a method's conventional receiver (renaming it is legal but unidiomatic)")
        for name, var in module.vars.items():
            if is_python_dunder(name):
                var.exclude("a special module attribute (dunder name)")
            elif self.all_names and name in self.all_names:
                var.exclude("listed in __all__ (part of the module's public interface)")
        for scope, module_name, line in self.star_imports:
            if scope is module:
                names = _star_names(module_name)
                for name, var in module.vars.items():
                    if names is None or name in names:
                        var.exclude(f"'from {module_name} import *' (line {line}) may also define it")
            else:
                scope.unsafe.append((f"'from {module_name} import *'", line))
        for scope in self.scopes:
            if scope.unsafe:
                construct, line = scope.unsafe[0]
                reason = f"visible to {construct} at line {line}, which reads or writes variables by name"
                for visible in scope.ancestors():
                    for var in visible.vars.values():
                        var.exclude(reason)
        if self.py2_catches:
            nonvars = {name for scope in self.scopes for name in scope.nonvars}
            for scope, name, line in self.py2_catches:
                var = scope.vars.get(name)
                if var is not None and name in nonvars:
                    var.exclude(
                        f"'except ..., {name}:' at line {line} names a class or import of the program: "
                        "in Python 3.14 that clause catches it instead of binding it"
                    )
        self._exclude_keyword_parameters()
        if self.printed:
            for name, scope, target, start, end in self.occurrences:
                if target is not None:
                    for p_start, p_end, line in self.printed:
                        if p_start <= start and end <= p_end:
                            target.exclude(f"printed by the self-documenting f-string {{{name}=}} at line {line}")
        if self.backtick_words:
            for var in self.vars:
                lo, hi = var.scope.span
                for position, word in self.backtick_words:
                    if word == var.name and lo <= position < hi:
                        line = self.source.count(b"\n", 0, position) + 1
                        var.exclude(
                            f"also occurs at line {line} inside Python 2 backticks, which the grammar reads as a string"
                        )
                        break
        self._exclude_leaking_comprehension_variables()

    def _exclude_keyword_parameters(self) -> None:
        if not self.calls:
            return
        bound = set()
        defs: dict[str, list[_Scope]] = {}
        classes = set()
        for scope in self.scopes:
            bound.update(scope.binds)
            bound.update(scope.nonvars)
            if scope.kind == "function" and scope.def_name:
                defs.setdefault(scope.def_name, []).append(scope)
            if scope.kind == "class":
                classes.add(scope.def_name)
        by_keyword: dict[str, int] = {}
        splatted: list[tuple[list[_Scope] | None, str, int]] = []
        for call in self.calls:
            if call.callee_kind == "str method" or (
                call.callee_kind == "name" and call.callee in _BUILTINS and call.callee not in bound
            ):
                continue
            for name, line in call.keywords:
                by_keyword.setdefault(name, line)
            if call.splat_line is None:
                continue
            if call.callee_kind == "name" and call.callee in classes:
                targets = [
                    s for name in ("__init__", "__new__") for s in defs.get(name, []) if s.class_name == call.callee
                ]
            elif call.callee_kind in ("name", "attribute") and call.callee in defs:
                targets = defs[call.callee]
            elif call.callee_kind == "attribute" or call.callee_kind == "name" and call.callee not in bound:
                targets = []  # a method or function this program does not define
            else:
                targets = None  # cannot tell which function: all of them
            splatted.append((targets, call.callee or "a call", call.splat_line))
        for var in self.vars:
            if var.kind not in ("parameter", "lambda_parameter"):
                continue
            if var.name in by_keyword:
                var.exclude(
                    f"a call passes '{var.name}=' by keyword (line {by_keyword[var.name]}); "
                    "the keyword would not be renamed"
                )
                continue
            for targets, callee, line in splatted:
                if targets is None or var.scope in targets:
                    var.exclude(f"{callee}(**mapping) at line {line} may pass it by keyword")
                    break

    def _exclude_leaking_comprehension_variables(self) -> None:
        leaky = [var for var in self.vars if var.scope.leaky]
        if not leaky:
            return
        by_name: dict[str, list] = {}
        for occurrence in self.occurrences:
            by_name.setdefault(occurrence[0], []).append(occurrence)
        for var in leaky:
            if var.excluded:
                continue
            enclosing = var.scope.parent
            while enclosing.leaky:
                enclosing = enclosing.parent
            chain = set(map(id, enclosing.ancestors()))
            for name, scope, target, start, end in by_name.get(var.name, ()):
                if target is var or not _inside(scope, enclosing):
                    continue
                if target is None or (id(target.scope) in chain and target.excluded):
                    line = self.source.count(b"\n", 0, start) + 1
                    var.exclude(
                        f"a list-comprehension variable also used at line {line}, outside the comprehension; "
                        "Python 2 leaks list-comprehension variables, so there it would be the same variable"
                    )
                    break
            else:
                other = enclosing.vars.get(var.name)
                if other is not None and other.excluded:
                    var.exclude(
                        "Python 2 leaks list-comprehension variables into the enclosing scope, "
                        "where this name is excluded"
                    )

    # ----------------------------------------------------------------- output

    def _bindings(self) -> list[Binding]:
        out = []
        for var in self.vars:
            spans = tuple(sorted(set(var.spans)))
            out.append(Binding(var.name, var.kind, var.scope.label, var.scope.span, spans, var.excluded))
        return out


_HANDLERS = {
    "identifier": _Collector._identifier,
    "attribute": _Collector._attribute,
    "call": _Collector._call,
    "keyword_argument": _Collector._keyword_argument,
    "assignment": _Collector._assignment,
    "augmented_assignment": _Collector._augmented_assignment,
    "named_expression": _Collector._named_expression,
    "for_statement": _Collector._for,
    "with_item": _Collector._with_item,
    "except_clause": _Collector._except,
    "except_group_clause": _Collector._except,
    "as_pattern": _Collector._as_pattern,
    "function_definition": _Collector._function,
    "lambda": _Collector._lambda,
    "class_definition": _Collector._class,
    "global_statement": _Collector._global,
    "nonlocal_statement": _Collector._nonlocal,
    "import_statement": _Collector._import,
    "import_from_statement": _Collector._import,
    "delete_statement": _Collector._delete,
    "case_clause": _Collector._case_clause,
    "string": _Collector._string,
    "interpolation": _Collector._interpolation,
    "exec_statement": _Collector._exec_statement,
    "type_alias_statement": _Collector._type_alias,
    "dotted_name": _Collector._push_dotted,  # `a.b.c` outside imports: only `a` is a name
    "ERROR": _Collector._error,
}
_HANDLERS.update(dict.fromkeys(_COMPREHENSIONS, _Collector._comprehension))


_MIXED_INDENT = re.compile(rb"(?m)^[ \t]* \t")
_OPENERS = frozenset({"(", "[", "{"})
_CLOSERS = frozenset({")", "]", "}"})


def _indentation_mismatch(parsed: Parsed) -> int | None:
    """Where tree-sitter's block structure starts to differ from Python's, or None.

    Python advances a tab to the next multiple of 8 columns; the tree-sitter-python scanner adds
    8, so `" \\t"` is column 8 for Python and 9 for tree-sitter. That only matters where the
    INDENT/DEDENT events differ, which this replays for both readings on the lines that start
    a logical line (outside brackets, strings and backslash continuations); on a difference it
    returns the start of the first line whose width differs, since that line's block may already
    extend differently.
    """
    source = parsed.source
    if not _MIXED_INDENT.search(source):
        return None
    python_stack, ts_stack = [0], [0]
    depth = strings = 0
    previous_end = 0
    continued = False
    first_difference = None  # the first line where the two widths differ
    for start, end, kind in parsed.tokens:
        if kind == "comment":
            continue
        if depth == 0 and strings == 0 and not continued:
            line_start = source.rfind(b"\n", 0, start) + 1
            if line_start >= previous_end:
                indent = source[line_start:start]
                if not indent.strip(b" \t\f"):
                    python_width = ts_width = 0
                    for char in indent:
                        if char == 9:
                            python_width = (python_width // 8 + 1) * 8
                            ts_width += 8
                        elif char == 32:
                            python_width += 1
                            ts_width += 1
                    if python_width != ts_width and first_difference is None:
                        first_difference = line_start
                    if _indent_event(python_stack, python_width) != _indent_event(ts_stack, ts_width):
                        return first_difference
        if kind in _OPENERS:
            depth += 1
        elif kind in _CLOSERS:
            depth = max(0, depth - 1)
        elif kind == "string_start":
            strings += 1
        elif kind == "string_end":
            strings = max(0, strings - 1)
        continued = kind == "line_continuation"
        previous_end = end
    return None


def _indent_event(stack: list[int], width: int) -> tuple[int, bool]:
    """Replay one logical line on an indentation stack: (+1 indent | 0 | -n dedents, consistent)."""
    if width > stack[-1]:
        stack.append(width)
        return (1, True)
    pops = 0
    while width < stack[-1]:
        stack.pop()
        pops += 1
    return (-pops, width == stack[-1])


def _inside(scope: _Scope, ancestor: _Scope) -> bool:
    while scope is not None:
        if scope is ancestor:
            return True
        scope = scope.parent
    return False


def _fields(node: Node):
    for i, child in enumerate(node.children):
        yield child, node.field_name_for_child(i)


def _identifiers(node: Node, first_only: bool = False):
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "identifier":
            yield current
            if first_only:
                return
        else:
            stack.extend(reversed(current.named_children))


def _strings(node: Node):
    """Spans of the string contents directly in a list/tuple literal (for `__all__`)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "string_content":
            yield (current.start_byte, current.end_byte)
        else:
            stack.extend(current.named_children)


_STAR_CACHE: dict[str, frozenset[str] | None] = {}


def _star_names(module_name: str) -> frozenset[str] | None:
    """Names `from module_name import *` binds, for a few safe standard modules; else None."""
    if module_name not in _STAR_CACHE:
        names = None
        if module_name in _STAR_SAFE_MODULES:
            try:
                module = import_module(module_name)
                exported = getattr(module, "__all__", None)
                if exported is None:
                    exported = [n for n in dir(module) if not n.startswith("_")]
                names = frozenset(exported)
            except Exception:  # noqa: BLE001 - an unimportable module is treated as unknown
                names = None
        _STAR_CACHE[module_name] = names
    return _STAR_CACHE[module_name]
