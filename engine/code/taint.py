"""Names whose occurrences the parser did not understand belong to no renameable binding.

Tree-sitter always returns a tree. Where the text is not the language (a lost ``}`` line, a
macro used as a statement, a constructor outside its class) error recovery still produces
plausible nodes: a later assignment read as a declaration, a macro name read as a variable, a
call read as a declaration of its argument. A binding built from such nodes is wrong in a way
that renaming it *consistently* cannot reveal: the rename rewrites some occurrences of a name
and leaves others, and the renamed program re-extracts to the same (wrong) structure.

So this module marks the *unclear regions* of a program, the statements that contain or stand
next to one of:

- an ``ERROR`` node or a ``MISSING`` node (tree-sitter's own admission), except the ones a
  collector understands (a C function whose return type was cut off, `lang_c.is_headerless`);
- a keyword standing where a name should be (``else`` as a C type, ``throws`` as a Java type);
- in C, a statement at file scope (a lost ``}`` ended the function early), or one shaped like
  a macro: a bare name as a statement (``CHECK_END;``), a declaration whose type stands on an
  earlier line than its declarator (``FOO`` on its own line glued to the next statement), a
  declarator that is a parenthesised name (``g(x);`` read as a declaration), and a ``#define``
  whose continuation was lost or whose braces do not balance (then the rest of its block).

A neighbouring statement longer than a few rows is unclear only on its row next to the sign.

A *spelling* is unclear when one of its code occurrences (a name that could be a use of a
variable: not in a comment or a string, not a member name after ``.``/``->``, not a keyword
argument's name) lies in an unclear region, or, in a program with any sign, when one of its code
occurrences is claimed by no binding (a lost brace moves every later scope end). Every binding of an unclear spelling is excluded,
with a reason, unless the rename is provably a plain substitution: every binding of the
spelling is renameable and declared in a statement with no sign of misparsing, and every code
occurrence of the spelling anywhere in the program is a span of one of them. A rename renames
all renameable bindings of a name together, so it then replaces the spelling wherever it could
denote anything, however the parser distributed the occurrences among the bindings; and the
new name occurs nowhere. `check.check_rename` counts the same occurrences in the renamed
program (`code_occurrences`) and refuses a rename that left any.
"""
from __future__ import annotations

import bisect
import keyword
from collections import defaultdict
from functools import lru_cache

from tree_sitter import Node, Query, QueryCursor

from engine.code.languages import grammar
from engine.code.model import Binding, Span
from engine.code.parsing import WORD, Parsed

# Token kinds whose words may be a use of a variable. A name after `.`/`->` in C is a
# `field_identifier`; comments, strings and labels have kinds of their own. `gap` is text the
# grammar left uncovered.
_CODE_TOKEN_KINDS = {
    "c": frozenset({"identifier", "type_identifier", "gap"}),
    "java": frozenset({"identifier", "type_identifier", "gap"}),
    "python": frozenset({"identifier", "gap"}),
}

# Node types whose children are statements: a statement is a child of one of these.
_CONTAINERS = {
    "c": frozenset(
        {
            "translation_unit",
            "compound_statement",
            "case_statement",
            "declaration_list",
            "preproc_if",
            "preproc_ifdef",
            "preproc_else",
            "preproc_elif",
            "preproc_elifdef",
            "ERROR",
        }
    ),
    "java": frozenset(
        {
            "program",
            "block",
            "class_body",
            "interface_body",
            "enum_body_declarations",
            "constructor_body",
            "switch_block",
            "switch_block_statement_group",
            "ERROR",
        }
    ),
    "python": frozenset({"module", "block", "ERROR"}),
}

# Reserved words that can never be a name (contextual keywords such as Java's `var` or
# Python's `match` can, and are left out).
_HARD_KEYWORDS = {
    "c": frozenset(
        """
        auto break case char const continue default do double else enum extern float for goto
        if inline int long register restrict return short signed sizeof static struct switch
        typedef union unsigned void volatile while
        """.split()
    ),
    "java": frozenset(
        """
        abstract assert boolean break byte case catch char class const continue default do
        double else enum extends final finally float for goto if implements import instanceof
        int interface long native new package private protected public return short static
        strictfp super switch synchronized this throw throws transient try void volatile while
        true false null
        """.split()
    ),
    "python": frozenset(keyword.kwlist),
}

# A stray-punctuation ERROR right after one of these ends its initializer (`int b = a +;`).
_DECLARATORS_WITH_VALUE = frozenset({"init_declarator", "variable_declarator"})

_C_MACRO_DEFS = frozenset({"preproc_def", "preproc_function_def"})
# Statements, which C only allows inside a function: one at file scope means a lost `}` (or a
# macro) ended the function early, and the scopes after it are the parser's invention.
_C_STATEMENTS = frozenset(
    {
        "expression_statement",
        "compound_statement",
        "if_statement",
        "for_statement",
        "while_statement",
        "do_statement",
        "return_statement",
        "switch_statement",
        "case_statement",
        "break_statement",
        "continue_statement",
        "goto_statement",
        "labeled_statement",
    }
)


# Name leaves that are never a variable: member names, names of keyword arguments, struct
# tags (a namespace of their own), method names.
_NOT_A_VARIABLE = {
    "c": """
        (struct_specifier name: (type_identifier) @member)
        (union_specifier name: (type_identifier) @member)
        (enum_specifier name: (type_identifier) @member)
    """,
    "java": """
        (field_access field: (identifier) @member)
        (method_invocation name: (identifier) @member)
        (method_declaration name: (identifier) @member)
        (constructor_declaration name: (identifier) @member)
        (method_reference (identifier) @member .)
    """,
    "python": """
        (attribute attribute: (identifier) @member)
        (keyword_argument name: (identifier) @member)
    """,
}


def code_occurrences(parsed: Parsed) -> dict[str, list[int]]:
    """Start offset of every code occurrence of every spelling: a name leaf (or uncovered text)
    that could be a use of a variable, wherever it is (inside ``ERROR`` nodes included)."""
    kinds = _CODE_TOKEN_KINDS[parsed.language]
    members = _member_positions(parsed)
    source = parsed.source
    found: dict[str, list[int]] = defaultdict(list)
    for start, end, kind in parsed.tokens:
        if kind in kinds and start not in members:
            found[source[start:end].decode("utf-8", "surrogateescape")].append(start)
    return found


def _member_positions(parsed: Parsed) -> set[int]:
    captures = QueryCursor(_member_query(parsed.language)).captures(parsed.root)
    return {node.start_byte for nodes in captures.values() for node in nodes}


@lru_cache(maxsize=None)
def _member_query(language: str) -> Query:
    return Query(grammar(language), _NOT_A_VARIABLE[language])


def exclude_unclear(bindings: list[Binding], parsed: Parsed) -> tuple[list[Binding], frozenset[str]]:
    """`bindings` with every binding of an unclear spelling excluded unless proven (see module
    docstring), and the set of unclear spellings."""
    if parsed.language != "c" and not parsed.parse_errors:
        return bindings, frozenset()  # only C has misparses that tree-sitter does not flag
    regions, suspects = unclear_regions(parsed)
    if not regions:
        return bindings, frozenset()
    occurrences = code_occurrences(parsed)
    starts = [start for start, _, _ in regions]
    unclear: dict[str, tuple[int, str]] = {}  # spelling -> (first unclear occurrence, where)
    for name, positions in occurrences.items():
        for position in positions:
            what = _region_at(regions, starts, position)
            if what is not None:
                unclear[name] = (position, f"in or next to {what}")
                break
    by_name: dict[str, list[int]] = defaultdict(list)
    for index, binding in enumerate(bindings):
        by_name[binding.name].append(index)
    # A lost brace moves the end of every scope after it, far from the sign itself: there, an
    # occurrence that no binding claims may well belong to the variable of that name.
    first_sign = regions[0][2]
    for name, indices in by_name.items():
        if name in unclear or name not in occurrences:
            continue
        claimed = {start for i in indices for start, _ in bindings[i].spans}
        loose = [position for position in occurrences[name] if position not in claimed]
        if loose:
            unclear[name] = (loose[0], f"where no declaration claims it, in a program with {first_sign}")
    if not unclear:
        return bindings, frozenset()
    result = list(bindings)
    for name, (position, where) in unclear.items():
        indices = by_name.get(name, [])
        if not indices or all(bindings[i].excluded for i in indices):
            continue
        if _proven([bindings[i] for i in indices], occurrences[name], suspects, parsed):
            continue
        line = parsed.source.count(b"\n", 0, position) + 1
        reason = (
            f"its name also occurs at line {line}, {where}, where the parser's reading "
            "cannot be trusted to tell which variable each occurrence refers to"
        )
        for i in indices:
            if not result[i].excluded:
                b = result[i]
                result[i] = Binding(b.name, b.kind, b.scope, b.scope_span, b.spans, reason)
    return result, frozenset(unclear)


def _proven(group: list[Binding], positions: list[int], suspects: list[Span], parsed: Parsed) -> bool:
    """Renaming the spelling is a substitution of all its code occurrences, of real variables.

    Every binding of the spelling is renameable and declared in a statement with no sign of
    misparsing, and every code occurrence of the spelling is one of their spans: then a rename
    (which renames all renameable bindings of a name together) replaces the spelling
    everywhere it could denote anything, whichever binding the parser gave each occurrence.
    """
    if any(b.excluded for b in group):
        return False
    if {start for b in group for start, _ in b.spans} != set(positions):
        return False
    containers = _CONTAINERS[parsed.language]
    for binding in group:
        name = _leaf_at(parsed, binding.spans[0][0])
        unit = _declaring_unit(name, parsed.language)
        low, high = _header(_statement(unit, containers), containers)
        low, high = min(low, unit.start_byte), max(high, unit.end_byte)
        value = _initializer(name, unit)
        for start, end in suspects:
            if low <= start and end <= high and not (value and value[0] <= start and end <= value[1]):
                return False
    return True


def _before_declarator(node: Node) -> bool:
    parent = node.parent
    if parent is None or parent.type not in ("function_definition", "declaration"):
        return False
    declarator = parent.child_by_field_name("declarator")
    return declarator is not None and node.end_byte <= declarator.start_byte


def _header(statement: Node, containers: frozenset[str]) -> Span:
    """The statement without its body (a function's declarator, a loop's head, a whole
    declaration): where a sign of misparsing makes its declarations doubtful. A function's
    return type and specifiers are left out: a macro there (`int av_cold f(...)`) does not
    change what the parameter list declares."""
    if statement.type == "function_definition":
        declarator = statement.child_by_field_name("declarator")
        body = statement.child_by_field_name("body")
        if declarator is not None:
            return declarator.start_byte, body.start_byte if body is not None else statement.end_byte
    for i, child in enumerate(statement.children):
        if statement.field_name_for_child(i) == "body" or (child.type in containers and child.type != "ERROR"):
            return statement.start_byte, child.start_byte
    return statement.start_byte, statement.end_byte


# (node type, field) of the initializer next to a declared name: broken code in the value
# (``int b = a +;``) does not make the declaration a misreading.
_VALUES = {
    "c": ("init_declarator", "value"),
    "java": ("variable_declarator", "value"),
    "python": ("assignment", "right"),
}


def _initializer(name: Node, unit: Node) -> Span | None:
    node = name
    while node is not None and node != unit.parent:
        for kind, value_field in _VALUES.values():
            if node.type == kind:
                value = node.child_by_field_name(value_field)
                if value is not None and not (value.start_byte <= name.start_byte < value.end_byte):
                    return value.start_byte, value.end_byte
        node = node.parent
    return None


def _region_at(regions: list[tuple[int, int, str]], starts: list[int], position: int) -> str | None:
    # Regions may overlap and nest; they are few, so scan the ones starting at or before it.
    for i in range(bisect.bisect_right(starts, position) - 1, -1, -1):
        start, end, what = regions[i]
        if start <= position < end:
            return what
    return None


def unclear_regions(parsed: Parsed) -> tuple[list[tuple[int, int, str]], list[Span]]:
    """(start, end, what) of every unclear region, sorted, and the spans of the misparse
    signs themselves (the statements a proven binding must not be declared in)."""
    language = parsed.language
    containers = _CONTAINERS[language]
    keywords = _HARD_KEYWORDS[language]
    source = parsed.source
    regions: list[tuple[int, int, str]] = []
    suspects: list[Span] = []

    def mark(node: Node, what: str) -> None:
        what = f"{what} (line {node.start_point[0] + 1})"
        statement = _statement(node, containers)
        suspects.append((node.start_byte, node.end_byte))
        regions.append((statement.start_byte, statement.end_byte, what))
        for step in (-1, +1):
            neighbour = _sibling(statement, step)
            if neighbour is not None:
                regions.append((*_near_part(neighbour, step, source), what))

    def classify(node: Node) -> None:
        kind = node.type
        if kind == "ERROR":
            if _before_declarator(node):
                # `int attribute_align_arg f(...)`: a macro among a function's specifiers.
                regions.append((*_span(node), f"code that does not parse (line {node.start_point[0] + 1})"))
            elif _has_word(node, source):
                mark(node, "code that does not parse")
            else:  # stray punctuation: the names around it are still read right ...
                statement = _statement(node, containers)
                regions.append((*_span(statement), f"code that does not parse (line {node.start_point[0] + 1})"))
                previous = node.prev_named_sibling
                if previous is None or previous.type not in _DECLARATORS_WITH_VALUE:
                    suspects.append(_span(node))  # ... unless it splits a declaration
        elif node.is_missing:
            if not (language == "c" and _understood_missing(node)):
                mark(node, f"a missing {kind!r} the parser inserted")
        elif kind in ("identifier", "type_identifier"):
            if source[node.start_byte : node.end_byte].decode("utf-8", "surrogateescape") in keywords:
                mark(node, "a keyword read as a name")
        elif language != "c":
            return
        elif kind in _C_STATEMENTS and node.parent is not None and node.parent.type == "translation_unit":
            if not _headerless_part(node):
                mark(node, "a statement outside any function (a lost brace ended the function early)")
        elif kind in _C_MACRO_DEFS:
            if _broken_macro(node, source):
                # Its body's remaining lines were read as code, or it took a brace of the code
                # with it: nothing after it in the block can be trusted.
                what = "a #define whose body was cut off or takes a brace with it"
                mark(node, what)
                parent = node.parent or node
                suspects.append((node.start_byte, parent.end_byte))
                regions.append((node.start_byte, parent.end_byte, f"{what} (line {node.start_point[0] + 1})"))
        else:
            what = _c_macro_shape(node, source)
            if what is not None:
                mark(node, what)

    # The few node kinds that can be a sign, found by tree-sitter itself (a walk over every
    # node in Python would cost more than the rest of extraction).
    for nodes in QueryCursor(_sign_query(language)).captures(parsed.root).values():
        for node in nodes:
            if language == "c" and _in_headerless_header(node):
                continue  # `lang_c` reads that header from its tokens, whatever recovery made of it
            classify(node)
    regions.sort()
    return regions, suspects


@lru_cache(maxsize=None)
def _sign_query(language: str) -> Query:
    """Every node in which `unclear_regions` can find a sign of misparsing."""
    words = " ".join(f'"{word}"' for word in sorted(_HARD_KEYWORDS[language]))
    patterns = [
        "(ERROR) @error",
        "(MISSING) @missing",
        f"((identifier) @name (#any-of? @name {words}))",
    ]
    if language != "python":
        patterns.append(f"((type_identifier) @name (#any-of? @name {words}))")
    if language == "c":
        statements = " ".join(f"({kind})" for kind in sorted(_C_STATEMENTS))
        patterns += [
            f"(translation_unit [{statements}] @file_scope)",
            "(expression_statement . (identifier) .) @bare",
            "(declaration type: (type_identifier)) @declaration",
            "(declaration declarator: (parenthesized_declarator)) @declaration",
            "(preproc_def) @define",
            "(preproc_function_def) @define",
        ]
    return Query(grammar(language), "\n".join(patterns))


def _in_headerless_header(node: Node) -> bool:
    top = node
    while top.parent is not None and top.parent.type != "translation_unit":
        top = top.parent
    return top is not node and top.type == "expression_statement" and _headerless_part(top)


def _c_macro_shape(node: Node, source: bytes) -> str | None:
    kind = node.type
    if kind == "expression_statement":
        named = node.named_children
        if len(named) == 1 and named[0].type == "identifier":
            return "a statement that is a bare name (a macro)"
    elif kind == "declaration":
        type_node = node.child_by_field_name("type")
        declarator = node.child_by_field_name("declarator")
        if type_node is None or declarator is None:
            return None
        if type_node.type == "type_identifier" and type_node.end_point[0] < declarator.start_point[0]:
            return "a declaration whose type stands on an earlier line (a macro line glued to the next statement)"
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "declarator" and child.type == "parenthesized_declarator":
                return "a declaration of a parenthesised name (a call read as a declaration)"
    return None


def _span(node: Node) -> Span:
    return node.start_byte, node.end_byte


def _has_word(node: Node, source: bytes) -> bool:
    return WORD.search(source, node.start_byte, node.end_byte) is not None


def _broken_macro(node: Node, source: bytes) -> bool:
    """A #define whose body ends in a line continuation (its next lines were lost) or whose
    braces do not balance (so the block structure of the code around it is not what it seems)."""
    value = node.child_by_field_name("value")
    if value is None:
        return False
    body = source[value.start_byte : value.end_byte]
    return body.rstrip().endswith(b"\\") or body.count(b"{") != body.count(b"}")


def _understood_missing(node: Node) -> bool:
    parent = node.parent
    return parent is not None and parent.type == "expression_statement" and _headerless_part(parent)


def _headerless_part(statement: Node) -> bool:
    """Whether a file-scope statement is the header or the body of a C function whose return
    type was cut off, which `lang_c` reads as a function (`lang_c.is_headerless`)."""
    from engine.code.lang_c import is_headerless

    if statement.parent is None or statement.parent.type != "translation_unit":
        return False
    if statement.type == "compound_statement":
        header = statement.prev_named_sibling
        return header is not None and header.type == "expression_statement" and _headerless_part(header)
    following = statement.next_named_sibling
    return (
        statement.type == "expression_statement"
        and following is not None
        and following.type == "compound_statement"
        and is_headerless(statement)
    )


# The node that declares a variable, for the proof that the declaration itself is not a
# misreading: the nearest of these around the declared name, else its statement.
_DECLARING = {
    "c": frozenset({"declaration", "parameter_declaration", "parameter_list"}),
    "java": frozenset(
        {
            "local_variable_declaration",
            "formal_parameter",
            "spread_parameter",
            "catch_formal_parameter",
            "resource",
            "inferred_parameters",
        }
    ),
    "python": frozenset({"parameters", "lambda_parameters", "assignment", "augmented_assignment", "for_in_clause", "with_item"}),
}


def _declaring_unit(node: Node, language: str) -> Node:
    units, containers = _DECLARING[language], _CONTAINERS[language]
    while node.parent is not None and node.type not in units and node.parent.type not in containers:
        node = node.parent
    return node


def _statement(node: Node, containers: frozenset[str]) -> Node:
    while node.parent is not None and node.parent.type not in containers:
        node = node.parent
    return node


def _sibling(node: Node, step: int) -> Node | None:
    sibling = node.prev_named_sibling if step < 0 else node.next_named_sibling
    while sibling is not None and "comment" in sibling.type:
        sibling = sibling.prev_named_sibling if step < 0 else sibling.next_named_sibling
    return sibling


# A neighbouring statement longer than this many rows (a whole function or class next to a
# broken line) is unclear only on its row next to the sign, not in its entire body.
_NEIGHBOUR_ROWS = 4


def _near_part(node: Node, step: int, source: bytes) -> Span:
    if node.end_point[0] - node.start_point[0] <= _NEIGHBOUR_ROWS:
        return node.start_byte, node.end_byte
    if step < 0:  # the row the previous statement ends on
        return source.rfind(b"\n", node.start_byte, node.end_byte) + 1, node.end_byte
    row_end = source.find(b"\n", node.start_byte, node.end_byte)
    return node.start_byte, row_end if row_end >= 0 else node.end_byte


def _leaf_at(parsed: Parsed, position: int) -> Node:
    return parsed.root.descendant_for_byte_range(position, position)
