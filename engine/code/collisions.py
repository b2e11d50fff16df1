"""What a new name would capture or be captured by: the collision rule of `validate`, per language.

Renaming `old` to `new` changes meaning only where `new` already means something that the
renamed variable could hide (a variable, function, type or builtin the code there reads) or
that could hide it (an inner declaration of `new`), or where the language forbids a second
declaration of `new`. So a new name collides with a name used, *in the namespace of
variables*, inside the variable's **region** (its scope), with a declaration the language
forbids beside it, and, per language, with names whose meaning ignores scope:

- C: the region is the variable's scope (its declaration to the end of its block);
  declarations earlier in that block collide (for the function's own block the parameters
  too, for a `for` body the header too: C++, which C code is often compiled as, forbids
  those). Every name the program uses that is not one of its variables (macros, functions,
  types, globals, enumeration constants), every `#define`d name and every word of a macro
  body collide wherever the variable is: the preprocessor substitutes a macro whatever the
  scope, and without headers a macro cannot be told from the rest. Member names after
  ``.``/``->``, labels, struct/union/enum tags, strings and comments are other namespaces
  or not code.
- Java: the region is the variable's scope; every declaration earlier in its class member
  (method, constructor, initializer, field) collides, because a local may not redeclare a
  local or parameter of its method even in a nested block or lambda. Field names after
  ``.``, method names (their own namespace), labels and names after ``::`` do not collide;
  a field used unqualified, a type or the first part of a qualified name does.
- Python: the region is the variable's scope (function, lambda, module), widened for a
  comprehension variable to the enclosing function, class or module, because Python 2 leaks
  list-comprehension variables. Attribute names after ``.`` do not collide; keyword-argument
  names do for parameters (a parameter named `n` would receive ``n=...`` passed to a
  ``**kwargs`` function), except those passed to a builtin.

Everywhere an identifier-shaped word inside code that does not parse (ERROR regions, text the
grammar leaves between tokens) counts as a use at its position. Keywords and the names the
compiler or preprocessor gives meaning to without the program spelling them (`reserved.SCOPE_BLIND`,
Python dunders) are refused by `rename.pair_rejection` before this module is asked.

The index is built once per extraction, on first use (one parse of the source and one walk
of its name tokens); the names of each variable's region are computed on first use and cached,
so each check during an attack is a few set lookups.
"""
from __future__ import annotations

import bisect
import builtins
import re
from dataclasses import dataclass, field

from tree_sitter import Node

from engine.code.model import Extraction, Span
from engine.code.parsing import Parsed, parse

# Leaves whose text cannot be a use of a variable, even inside code that does not parse.
_INERT_LEAF = re.compile(r"comment|string|char|escape_sequence|field_identifier|property_identifier")

_NAME_LEAVES = {
    "c": frozenset({"identifier", "type_identifier", "primitive_type"}),
    "java": frozenset({"identifier", "type_identifier"}),
    "python": frozenset({"identifier"}),
}
_C_TAGGED = frozenset({"struct_specifier", "union_specifier", "enum_specifier"})
_C_BLOCKS = frozenset({"compound_statement", "for_statement", "function_definition", "translation_unit"})
_C_BLOCK_OWNERS = frozenset({"for_statement", "function_definition"})
_C_MACRO_DEFS = frozenset({"preproc_def", "preproc_function_def"})
# Java nodes whose children are class members: a member is the region of its locals.
_JAVA_MEMBER_PARENTS = frozenset(
    {"class_body", "interface_body", "enum_body", "enum_body_declarations", "annotation_type_body", "program"}
)
_JAVA_LABELLED = frozenset({"labeled_statement", "break_statement", "continue_statement"})
_PYTHON_SCOPES = frozenset({"function_definition", "lambda", "class_definition", "module"})
_PYTHON_BUILTINS = frozenset(dir(builtins))
_PARAMETER_KINDS = frozenset({"parameter", "lambda_parameter"})


@dataclass
class CollisionIndex:
    """The name uses of one program, by position, and the regions of its renameable variables."""

    positions: list[int]  # start of each use in the namespace of variables, sorted
    names: list[str]  # the name used at positions[i]
    declaration_positions: list[int]  # start of each variable's declaration, sorted
    declaration_names: list[str]
    # renameable name -> (merged byte ranges where any use of a name collides, merged byte
    # ranges where a declaration of a name collides: the block before the variable's own one)
    regions: dict[str, tuple[list[Span], list[Span]]]
    program_wide: frozenset[str]  # C: names whose meaning ignores scope
    keyword_arguments: frozenset[str]  # Python: keyword-argument names (collide for parameters)
    parameters: frozenset[str]  # renameable names with a parameter binding
    _region_names: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def region_names(self, old: str) -> frozenset[str]:
        cached = self._region_names.get(old)
        if cached is None:
            found: set[str] = set()
            uses, declarations = self.regions.get(old, ((), ()))
            for spans, positions, names in ((uses, self.positions, self.names),
                                            (declarations, self.declaration_positions, self.declaration_names)):
                for lo, hi in spans:
                    found.update(names[bisect.bisect_left(positions, lo) : bisect.bisect_left(positions, hi)])
            cached = self._region_names[old] = frozenset(found)
        return cached

    def collision(self, old: str, new: str) -> str | None:
        """Why `new` would capture or be captured where `old` is renamed (None when it would not)."""
        if new in self.region_names(old):
            return f"{new!r} is already used where {old!r} is visible"
        if new in self.program_wide:
            return (
                f"{new!r} is already used in the program as a name it does not declare (a macro, "
                "library function, type or global), which the preprocessor substitutes whatever the scope"
            )
        if new in self.keyword_arguments and old in self.parameters:
            return f"{new!r} is already used in the program as a keyword-argument name, which a parameter of that name would receive"
        return None


def collision_index(extraction: Extraction) -> CollisionIndex:
    """The extraction's index, built on first use and kept on the extraction."""
    index = extraction.collisions
    if index is None:
        index = extraction.collisions = build(parse(extraction.source, extraction.language), extraction)
    return index


def build(parsed: Parsed, extraction: Extraction) -> CollisionIndex:
    language = parsed.language
    root = parsed.root
    source = parsed.source
    name_leaves = _NAME_LEAVES[language]
    classify = _CLASSIFIERS[language]
    macro_bodies = [(s, e) for s, e in parsed.opaque if _opaque_type(root, s) == "preproc_arg"]
    errors = _merge([span for span in parsed.opaque if span not in macro_bodies])
    error_starts = [lo for lo, _ in errors]
    uses: list[tuple[int, str]] = []
    keyword_arguments: set[str] = set()
    macro_names: set[str] = set()
    for start, end, kind in parsed.tokens:
        if kind in name_leaves:
            node = root.descendant_for_byte_range(start, end)
            verdict = classify(node, source)
            if verdict is True:
                name = source[start:end].decode("utf-8", "surrogateescape")
                uses.append((start, name))
                if language == "c" and node.parent is not None and node.parent.type in _C_MACRO_DEFS:
                    macro_names.add(name)
            elif verdict:  # a keyword-argument name
                keyword_arguments.add(verdict)
        elif (kind == "gap" and _gap_is_code(root, start, end)) or (
            kind != "gap" and not _INERT_LEAF.search(kind) and _inside(errors, error_starts, start)
        ):
            uses.extend(parsed.words_in((start, end)))
    uses.sort()
    # Every declared variable, renameable or not (the collector reports them all), by the
    # position of its declaration: its first occurrence.
    declarations = sorted({(b.spans[0][0], b.name) for b in extraction.bindings if b.spans})
    program_wide: frozenset[str] = frozenset()
    if language == "c":
        declared = {binding.name for binding in extraction.bindings}
        macro_words = {word for span in macro_bodies for _, word in parsed.words_in(span)}
        program_wide = frozenset({name for _, name in uses if name not in declared} | macro_words | macro_names)
    regions = {}
    for name in extraction.identifiers:
        pairs = [_region(language, root, b.scope_span, b.kind) for b in extraction.bindings
                 if b.name == name and not b.excluded and b.spans]
        regions[name] = (_merge([use for use, _ in pairs]), _merge([d for _, d in pairs if d is not None]))
    parameters = frozenset(
        b.name for b in extraction.bindings if not b.excluded and b.kind in _PARAMETER_KINDS and b.name in extraction.identifiers
    )
    return CollisionIndex(
        positions=[p for p, _ in uses],
        names=[n for _, n in uses],
        declaration_positions=[p for p, _ in declarations],
        declaration_names=[n for _, n in declarations],
        regions=regions,
        program_wide=program_wide,
        keyword_arguments=frozenset(keyword_arguments),
        parameters=parameters,
    )


# ------------------------------------------------------------------ name uses, per language
# A classifier says whether a name leaf is a use in the namespace of variables: True, False,
# or (Python) the keyword-argument name it is.


def _is_field(parent: Node, field_name: str, node: Node) -> bool:
    child = parent.child_by_field_name(field_name)
    return child is not None and child.start_byte == node.start_byte


def _c_use(node: Node, source: bytes) -> bool:
    parent = node.parent
    # `struct size *p`: a tag, a namespace of its own in C.
    return not (parent is not None and node.type == "type_identifier" and parent.type in _C_TAGGED)


def _java_use(node: Node, source: bytes) -> bool:
    parent = node.parent
    if parent is None:
        return True
    kind = parent.type
    if kind == "field_access":
        return not _is_field(parent, "field", node)
    if kind in ("method_invocation", "method_declaration", "constructor_declaration"):
        return not _is_field(parent, "name", node)  # methods are a namespace of their own
    if kind in _JAVA_LABELLED:
        return False
    if kind == "method_reference":  # `Type::name`: only the part before `::` is a use
        return parent.named_children[0].start_byte == node.start_byte
    return True


def _python_use(node: Node, source: bytes) -> bool | str:
    parent = node.parent
    if parent is None:
        return True
    if parent.type == "attribute":
        return not _is_field(parent, "attribute", node)
    if parent.type == "keyword_argument" and _is_field(parent, "name", node):
        call = parent.parent.parent if parent.parent is not None else None
        callee = call.child_by_field_name("function") if call is not None and call.type == "call" else None
        if callee is not None and callee.type == "identifier" and source[callee.start_byte:callee.end_byte].decode() in _PYTHON_BUILTINS:
            return False  # `sorted(key=...)`: no parameter of the program receives it
        return source[node.start_byte:node.end_byte].decode("utf-8", "surrogateescape")
    return True


_CLASSIFIERS = {"c": _c_use, "java": _java_use, "python": _python_use}


# ------------------------------------------------------------------ regions, per language


def _region(language: str, root: Node, scope: Span, kind: str) -> tuple[Span, Span | None]:
    """Where a use of the new name collides, and where a declaration of it does."""
    lo, hi = scope
    node = root.descendant_for_byte_range(lo, lo)
    if language == "c":
        # A second declaration in the block that holds this one is an error, and so is one
        # among the parameters for the function's own block or in the header for a `for`
        # body (in C++, which C code is often compiled as).
        while node is not None and not (node.type in _C_BLOCKS and node.start_byte <= lo and node.end_byte >= hi):
            node = node.parent
        if node is not None and node.type == "compound_statement" and node.parent is not None and node.parent.type in _C_BLOCK_OWNERS:
            node = node.parent
        return scope, ((node.start_byte, lo) if node is not None else None)
    if language == "java":
        # A local may not redeclare a local or parameter of its method, even in a nested
        # block or a lambda: any declaration in the member before this one counts.
        while node is not None and node.parent is not None and node.parent.type not in _JAVA_MEMBER_PARENTS:
            node = node.parent
        return scope, ((node.start_byte, lo) if node is not None else None)
    if kind == "comprehension_variable":
        # Python 2 leaks a list-comprehension variable into the enclosing scope.
        node = node.parent if node is not None else None
        while node is not None and node.type not in _PYTHON_SCOPES:
            node = node.parent
        if node is not None:
            return (min(lo, node.start_byte), max(hi, node.end_byte)), None
    return scope, None


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


# ------------------------------------------------------------------ helpers


def _inside(spans: list[Span], starts: list[int], position: int) -> bool:
    """Whether `position` lies in one of the merged, sorted `spans` (whose starts are `starts`)."""
    i = bisect.bisect_right(starts, position) - 1
    return i >= 0 and position < spans[i][1]


def _gap_is_code(root: Node, start: int, end: int) -> bool:
    """Whether text the grammar left between leaves may be code: not when it is the inside of
    a string or comment (a Python string with an escape leaves its other text uncovered)."""
    node = root.descendant_for_byte_range(start, end)
    while node is not None and node.type != "ERROR":
        if _INERT_LEAF.search(node.type):
            return False
        node = node.parent
    return True


def _opaque_type(root: Node, start: int) -> str:
    node = root.descendant_for_byte_range(start, start)
    while node is not None and node.type not in ("ERROR", "preproc_arg"):
        node = node.parent
    return node.type if node is not None else "ERROR"

