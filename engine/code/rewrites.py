"""Semantics-preserving structure rewrites on the syntax tree (CODA's "equivalent transformations").

CODA rewrote programs by splitting text on `for` and `;`; here every rewrite is found and built
on the tree-sitter tree, one parse per program, and applied by re-rendering the tree with the
chosen nodes replaced (nested choices compose: a `for` turned into a `while` keeps the rewrites
chosen inside its body). The rewrites and where each is allowed:

| kind | from → to | languages | only when |
|---|---|---|---|
| `for_to_while` | `for (I; C; U) B` → `{ I; while (C) { B U; } }` | C, Java | no `continue` in `B` binds to this loop (it would skip `U`); no labelled `continue` in `B` at all |
| `while_to_for` | `while (C) B` → `for (; C; ) B` | C, Java | always |
| `augmented_to_expanded` | `x op= y` → `x = x op (y)` | C, Java, Python | `x` is a plain variable (no double evaluation of `a[f()]`); Java: `x` is declared `int`/`long`/`float`/`double` (or `String` for `+=`), since `op=` casts implicitly; Python: `y` is a number literal (for lists and arrays `+=` mutates in place, `= … +` does not) |
| `expanded_to_augmented` | `x = x op y` → `x op= y` | C, Java, Python | the right side parses as `x op y` with `x` its left operand (`x = x - a - b` is `(x - a) - b`: not rewritten); Python: `y` is a number literal |
| `increment_to_assignment` | `i++`, `++i`, `i--`, `--i` → `i = i + 1`, `i = i - 1` | C, Java | the value is unused (an expression statement or a `for` update); Java: `i` is `int`/`long`/`float`/`double` |
| `assignment_to_increment` | `i = i + 1`, `i = i - 1` → `i++`, `i--` | C, Java | the value is unused (as above) |

Python has no C-style `for` and no `++`, so only the assignment pair applies to it. A `for`
with an initializer becomes a braced block, so the loop variable keeps its scope and the
rewrite is one statement wherever the `for` was one.

    >>> sites = find_sites(code, "c")              # every rewritable node, each with its kind
    >>> style_counts(code, "c")                    # how often each form occurs (CODA's style)
    >>> rewrite(code, "c", [s for s in sites if s.kind == "for_to_while"])
    >>> check_rewrite(code, new_code, "c")         # no new parse errors; Python: still compiles

The rewritten program is checked by re-parsing (no new parse errors) and, for Python, by
`compile()`; running a dataset's tests is the attack's job (it knows the tests).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tree_sitter import Node

from engine.code.check import _python_compiles
from engine.code.parsing import parse, to_bytes, to_text

KINDS = (
    "for_to_while",
    "while_to_for",
    "augmented_to_expanded",
    "expanded_to_augmented",
    "increment_to_assignment",
    "assignment_to_increment",
)
# Each family is a pair of opposite kinds: (towards form B, towards form A).
FAMILIES = {
    "loop": ("for_to_while", "while_to_for"),
    "compound": ("expanded_to_augmented", "augmented_to_expanded"),
    "increment": ("assignment_to_increment", "increment_to_assignment"),
}
_LOOPS = {"for_statement", "while_statement", "do_statement", "enhanced_for_statement", "for_in_statement"}
_JAVA_NUMERIC = {"int", "long", "float", "double"}
_ARITHMETIC = {"+", "-", "*", "/", "%", "<<", ">>", ">>>", "&", "|", "^", "//", "**"}
_PRIMARY = {"identifier", "number_literal", "decimal_integer_literal", "decimal_floating_point_literal",
            "hex_integer_literal", "integer", "float", "string_literal", "char_literal", "string", "true", "false",
            "parenthesized_expression", "character_literal"}
_NUMBER = {"integer", "float"}


@dataclass(frozen=True)
class Site:
    """A node that one rewrite applies to: its byte span, node type and the rewrite's kind."""

    kind: str
    start: int
    end: int
    node_type: str
    line: int

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.node_type)


@dataclass
class RewriteCheck:
    parse_errors_before: int
    parse_errors_after: int
    compiles: bool | None  # Python only; None: unknown (other languages, or the original does not compile)

    @property
    def ok(self) -> bool:
        return self.parse_errors_after <= self.parse_errors_before and self.compiles is not False


# --------------------------------------------------------------------------- finding sites


def find_sites(source: str | bytes, language: str) -> list[Site]:
    """Every rewritable node of the program, in document order (a node may carry two kinds)."""
    parsed = parse(source, language)
    return _sites(parsed.root, parsed.source, language)


def _sites(root: Node, source: bytes, language: str) -> list[Site]:
    found: list[Site] = []
    types = _declared_types(root, source) if language == "java" else {}
    stack = [root]
    while stack:
        node = stack.pop()
        for kind in _kinds(node, source, language, types):
            found.append(Site(kind, node.start_byte, node.end_byte, node.type, node.start_point[0] + 1))
        stack.extend(reversed(node.children))
    return found


def _kinds(node: Node, source: bytes, language: str, types: dict[str, set[str]]) -> list[str]:
    kinds = []
    t = node.type
    if language in ("c", "java"):
        if t == "for_statement" and node.child_by_field_name("body") is not None and _continue_safe(node):
            kinds.append("for_to_while")
        elif t == "while_statement" and node.child_by_field_name("body") is not None:
            kinds.append("while_to_for")
        elif t == "update_expression" and _value_unused(node):
            operand = _update_operand(node)
            if operand is not None and operand.type == "identifier" and _numeric_ok(language, types, _text(operand, source), "+"):
                kinds.append("increment_to_assignment")
        elif t == "assignment_expression":
            kinds.extend(_assignment_kinds(node, source, language, types))
    elif language == "python" and t in ("augmented_assignment", "assignment"):
        kinds.extend(_assignment_kinds(node, source, language, types))
    return kinds


def _assignment_kinds(node: Node, source: bytes, language: str, types: dict[str, set[str]]) -> list[str]:
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    operator = _operator(node, source)
    if left is None or right is None or left.type != "identifier" or operator is None:
        return []
    name = _text(left, source)
    kinds = []
    if operator != "=" and operator.endswith("=") and operator[:-1] in _ARITHMETIC:
        if language == "python" and right.type not in _NUMBER:
            return []
        if _numeric_ok(language, types, name, operator[:-1]):
            kinds.append("augmented_to_expanded")
        return kinds
    if operator != "=" or right.type not in ("binary_expression", "binary_operator"):
        return []
    if language == "python" and node.child_by_field_name("type") is not None:
        return []
    inner_left, inner_right = right.child_by_field_name("left"), right.child_by_field_name("right")
    inner_op = _operator(right, source)
    if inner_left is None or inner_right is None or inner_left.type != "identifier" or _text(inner_left, source) != name:
        return []
    if inner_op not in _ARITHMETIC or (language == "python" and inner_right.type not in _NUMBER):
        return []
    kinds.append("expanded_to_augmented")
    if language in ("c", "java") and inner_op in ("+", "-") and _text(inner_right, source) == "1" and _value_unused(node):
        kinds.append("assignment_to_increment")
    return kinds


def _operator(node: Node, source: bytes) -> str | None:
    operator = node.child_by_field_name("operator")
    if operator is not None:
        return _text(operator, source)
    for child in node.children:  # Python's `assignment` has an unnamed `=`
        if not child.is_named:
            return _text(child, source)
    return None


def _update_operand(node: Node) -> Node | None:
    argument = node.child_by_field_name("argument")
    if argument is not None:
        return argument
    named = [child for child in node.children if child.is_named]
    return named[0] if len(named) == 1 else None


def _update_operator(node: Node, source: bytes) -> tuple[str, bool]:
    """('++' or '--', prefix?)."""
    first = node.children[0]
    if not first.is_named:
        return _text(first, source), True
    return _text(node.children[-1], source), False


def _value_unused(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "expression_statement":
        return True
    if parent.type == "for_statement":  # a for update (Java: each update is a child; C: the one update)
        for i, child in enumerate(parent.children):
            if child.id == node.id:
                return parent.field_name_for_child(i) == "update"
    return False


def _continue_safe(loop: Node) -> bool:
    """No `continue` in the body binds to `loop` (outside nested loops), and no labelled `continue` at all."""
    body = loop.child_by_field_name("body")
    stack = [(body, False)]
    while stack:
        node, nested = stack.pop()
        if node is None:
            continue
        if node.type == "continue_statement":
            labelled = any(child.type in ("identifier", "statement_identifier") for child in node.children)
            if labelled or not nested:
                return False
        inner = nested or node.type in _LOOPS
        stack.extend((child, inner) for child in node.children)
    return True


def _declared_types(root: Node, source: bytes) -> dict[str, set[str]]:
    """Java: each declared name's type texts (locals, parameters, fields, loop variables)."""
    types: dict[str, set[str]] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type in ("local_variable_declaration", "field_declaration"):
            type_node = node.child_by_field_name("type")
            for child in node.children:
                if child.type == "variable_declarator":
                    name = child.child_by_field_name("name")
                    dims = child.child_by_field_name("dimensions")
                    if name is not None and type_node is not None:
                        suffix = _text(dims, source) if dims is not None else ""
                        types.setdefault(_text(name, source), set()).add(_text(type_node, source) + suffix)
        elif node.type in ("formal_parameter", "enhanced_for_statement", "catch_formal_parameter"):
            type_node, name = node.child_by_field_name("type"), node.child_by_field_name("name")
            if type_node is not None and name is not None:
                types.setdefault(_text(name, source), set()).add(_text(type_node, source))
    return types


def _numeric_ok(language: str, types: dict[str, set[str]], name: str, operator: str) -> bool:
    if language != "java":
        return True
    declared = types.get(name)
    if not declared:
        return False  # unknown type (e.g. a field of another class): the implicit cast might matter
    allowed = _JAVA_NUMERIC | ({"String"} if operator == "+" else set())
    return declared <= allowed


# --------------------------------------------------------------------------- style


def style_counts(source: str | bytes, language: str) -> dict[str, int]:
    """How many sites of each kind the program has (a `for_to_while` site is a rewritable `for`, …)."""
    counts = dict.fromkeys(KINDS, 0)
    for site in find_sites(source, language):
        counts[site.kind] += 1
    return counts


def style_probabilities(counts: dict[str, int], default: float = 0.5) -> dict[str, float]:
    """CODA's rule: apply a rewrite with the probability that the references use its target form.

    For a family (A, B): P(rewrite A→B) = share of form B among the references' sites of the
    family, where a site of kind `A_to_B` is an instance of form A. `default` when the references
    have none of the family.
    """
    probabilities = {}
    for to_b, to_a in FAMILIES.values():
        form_a, form_b = counts.get(to_b, 0), counts.get(to_a, 0)  # sites that *can* go to b are written as a
        total = form_a + form_b
        share_b = form_b / total if total else default
        probabilities[to_b] = share_b
        probabilities[to_a] = 1.0 - share_b if total else default
    return probabilities


# --------------------------------------------------------------------------- applying


def rewrite(source: str | bytes, language: str, sites: Iterable[Site]) -> str:
    """The program with each chosen site rewritten (one kind per node: the first chosen wins)."""
    data = to_bytes(source)
    chosen: dict[tuple[int, int, str], str] = {}
    for site in sites:
        chosen.setdefault(site.key, site.kind)
    if not chosen:
        return to_text(data)
    root = parse(data, language).root
    return to_text(_Renderer(data, language, chosen).render(root))


def apply_sampled(source: str | bytes, language: str, probabilities: dict[str, float],
                  uniform: Callable[[], float]) -> tuple[str, list[Site]]:
    """Rewrite each site with `probabilities[kind]`, independently (`uniform()` draws in [0, 1)).

    A node with two kinds (`i = i + 1`) is decided once per kind in order; the first kind
    drawn wins. Returns the program and the sites applied.
    """
    applied: list[Site] = []
    taken: set[tuple[int, int, str]] = set()
    for site in find_sites(source, language):
        if site.key in taken:
            continue
        if uniform() < probabilities.get(site.kind, 0.0):
            applied.append(site)
            taken.add(site.key)
    return rewrite(source, language, applied), applied


class _Renderer:
    def __init__(self, source: bytes, language: str, chosen: dict[tuple[int, int, str], str]):
        self.source = source
        self.language = language
        self.chosen = chosen
        self.spans = sorted(chosen)

    def render(self, node: Node | None) -> bytes:
        if node is None:
            return b""
        kind = self.chosen.get((node.start_byte, node.end_byte, node.type))
        if kind is not None:
            return getattr(self, kind)(node)
        if not self._contains_choice(node):
            return self.source[node.start_byte:node.end_byte]
        pieces, position = [], node.start_byte
        for child in node.children:
            pieces.append(self.source[position:child.start_byte])
            pieces.append(self.render(child))
            position = child.end_byte
        pieces.append(self.source[position:node.end_byte])
        return b"".join(pieces)

    def _contains_choice(self, node: Node) -> bool:
        return any(node.start_byte <= start and end <= node.end_byte for start, end, _ in self.spans)

    def _indent(self, node: Node) -> bytes:
        line_start = self.source.rfind(b"\n", 0, node.start_byte) + 1
        line = self.source[line_start:node.start_byte]
        return line[:len(line) - len(line.lstrip(b" \t"))]

    # -- loops (C, Java)

    def for_to_while(self, node: Node) -> bytes:
        indent = self._indent(node)
        step = indent + b"    "
        field = "initializer" if self.language == "c" else "init"
        inits = [child for i, child in enumerate(node.children) if node.field_name_for_child(i) == field]
        updates = [child for i, child in enumerate(node.children) if node.field_name_for_child(i) == "update"]
        condition = node.child_by_field_name("condition")
        body = node.child_by_field_name("body")
        true = b"1" if self.language == "c" else b"true"
        head = b"while (" + (self.render(condition) if condition is not None else true) + b") "
        update_text = b"".join(self.render(u) + b"; " for u in updates).rstrip()
        rendered_body = self.render(body)
        if updates:
            if body.type in ("compound_statement", "block"):
                inner = rendered_body[:rendered_body.rfind(b"}")].rstrip()
                rendered_body = inner + b"\n" + step + update_text + b"\n" + indent + b"}"
            else:
                rendered_body = b"{\n" + step + rendered_body + b"\n" + step + update_text + b"\n" + indent + b"}"
        loop = head + rendered_body
        if not inits:
            return loop
        # Braces keep the initializer's scope; lines are not re-indented (a multi-line string
        # literal in the body must keep its exact text).
        init_text = b" ".join(self.render(i) + (b"" if i.type.endswith("declaration") else b";") for i in inits)
        return b"{ " + init_text + b"\n" + indent + loop + b" }"

    def while_to_for(self, node: Node) -> bytes:
        condition = node.child_by_field_name("condition")
        inner = condition
        if condition.type == "parenthesized_expression":
            named = [child for child in condition.children if child.is_named]
            inner = named[0] if len(named) == 1 else condition
        body = node.child_by_field_name("body")
        return b"for (; " + self.render(inner) + b"; ) " + self.render(body)

    # -- assignments (C, Java, Python)

    def augmented_to_expanded(self, node: Node) -> bytes:
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        operator = _operator(node, self.source)[:-1].encode()
        value = self.render(right)
        if right.type not in _PRIMARY:
            value = b"(" + value + b")"
        name = self.render(left)
        return name + b" = " + name + b" " + operator + b" " + value

    def expanded_to_augmented(self, node: Node) -> bytes:
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        operator = _operator(right, self.source).encode()
        return self.render(left) + b" " + operator + b"= " + self.render(right.child_by_field_name("right"))

    def increment_to_assignment(self, node: Node) -> bytes:
        operator, _ = _update_operator(node, self.source)
        name = self.render(_update_operand(node))
        return name + b" = " + name + (b" + 1" if operator == "++" else b" - 1")

    def assignment_to_increment(self, node: Node) -> bytes:
        right = node.child_by_field_name("right")
        operator = _operator(right, self.source)
        return self.render(node.child_by_field_name("left")) + (b"++" if operator == "+" else b"--")


# --------------------------------------------------------------------------- checking


def check_rewrite(original: str | bytes, rewritten: str | bytes, language: str) -> RewriteCheck:
    """Re-parse the rewritten program (no new parse errors) and, for Python, compile it."""
    before, after = parse(original, language), parse(rewritten, language)
    compiles = None
    if language == "python" and _python_compiles(before.source):
        compiles = _python_compiles(after.source)
    return RewriteCheck(before.parse_errors, after.parse_errors, compiles)


def _text(node: Node, source: bytes) -> str:
    return to_text(source[node.start_byte:node.end_byte])
