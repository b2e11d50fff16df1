"""Java scope rules: which names are variables, and which occurrences refer to which variable.

One walk of the tree-sitter-java tree with a cursor and an explicit ancestor stack (no
recursion: long ``a + b + c + ...`` chains in real code are deeper than Python's recursion
limit). The walk records every *declaration* with the byte range in which it is visible, and
every ``identifier`` that stands where Java reads an expression name; references are resolved
afterwards to the innermost visible declaration of the same name (the visible one declared
last). Scopes follow the JLS:

- method and constructor parameters (varargs included) are visible in the whole declaration;
- a local variable is visible from its own declarator (its initializer included) to the end of
  the enclosing block; a local declared in a ``switch`` statement group stays visible in the
  later groups of the same switch block;
- ``for (int i = ...; ...)`` variables are visible in the whole ``for`` statement; an
  enhanced-``for`` variable only in the loop body (not in the iterated expression);
- a catch parameter in its catch block; a try-with-resources variable in the later resources
  and the ``try`` block (not in ``catch``/``finally``);
- a lambda parameter in its lambda;
- a pattern variable (``o instanceof String s``, ``case Point(int x, int y)``, ``case String s``)
  from its declaration to the end of the enclosing block, switch rule or statement group.
  Java's flow scoping (``if (!(o instanceof String s)) return; s.length();``) is covered by this
  over-approximation, which can only go wrong for a *field* of the same name used unqualified
  later in that block;
- fields declared in a class body (anonymous and local classes included) and record
  components are visible in the whole body and shadow outer locals of the same name there;
  so do the fields a class body *inherits* from a supertype declared in the same program, or
  from a few well-known JDK classes (``new FilterInputStream(in) { ... in.read() ... }`` reads
  the inherited field ``in``). Fields are never returned: they are not renameable, even when
  used without ``this.``.

An occurrence is an ``identifier`` that resolves to a returned binding. Never occurrences:
names after ``.`` (``this.n``, ``obj.n``, ``System.out``), method names (declared, invoked, or
after ``::``), class/enum/record/annotation names, types, labels, annotation names and keys,
enum constants, package/import/module names, and unqualified names that resolve to no local
or parameter (fields, inherited members, constants of other classes).

Left out with a reason (returned with `Binding.excluded`):

- a variable used as a bare ``case`` label (``case K:`` is an enum constant in a switch over
  an enum and a constant variable otherwise: not decidable without types);
- the unnamed variable ``_``;
- parameters of a record constructor with the record's arity (the canonical constructor's
  parameter names must equal the component names);
- in a program with parse errors, a variable whose name stands next to an ``ERROR`` node:
  tree-sitter's error recovery depends on spelling, so a renamed version may parse differently.

Not decidable from one file: a field inherited by an anonymous or local class from a supertype
declared elsewhere and not listed here. An outer local of that name used inside the class body
is taken as the captured local (javac would read the inherited field).

Unparseable text is left to `extract`: an identifier that tree-sitter could not fit into any
construct (a direct child of an ``ERROR`` node) is neither a declaration nor an occurrence,
so a variable whose name occurs there is excluded by the generic opaque-region check.
"""
from __future__ import annotations

from bisect import bisect_left

from tree_sitter import Node

from engine.code.model import Binding
from engine.code.parsing import Parsed, parse

# Subtrees that hold no expression name: qualified names of packages, imports, modules and
# annotations (``scoped_identifier`` only occurs in those), comments and plain literals.
_SKIP_SUBTREE = frozenset(
    {
        "package_declaration",
        "import_declaration",
        "module_declaration",
        "scoped_identifier",
        "line_comment",
        "block_comment",
        "receiver_parameter",  # `Outer Outer.this`: type and qualifier names only
    }
)

# Parents whose `name` child is the name of a declared type, method or constant, never a variable.
_NAMED_DECLARATIONS = frozenset(
    {
        "method_declaration",
        "constructor_declaration",
        "compact_constructor_declaration",
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "annotation_type_declaration",
        "annotation_type_element_declaration",
        "enum_constant",
        "annotation",
        "marker_annotation",
    }
)
# Parents whose identifier children are never variables.
_NEVER_VARIABLES = frozenset(
    {
        "labeled_statement",
        "break_statement",
        "continue_statement",
        "record_pattern",  # `Point(int x, int y)`: `Point` is a type
        "ERROR",  # loose tokens: left to the opaque-region check in `extract`
    }
)
_TYPE_DECLARATIONS = frozenset(
    {"class_declaration", "interface_declaration", "enum_declaration", "object_creation_expression"}
)
# Accessible (protected or public) instance fields of JDK classes that code commonly extends
# with an anonymous or local class. A captured local of one of these names, used inside such a
# class body, is the inherited field there (`new FilterInputStream(in) { ... in.read() ... }`).
# Supertypes that are neither declared in the program nor listed here are assumed to
# contribute no field of a local's name: that cannot be checked without the class path.
_STREAM_IN = ("in",)
_KNOWN_INHERITED_FIELDS: dict[str, tuple[str, ...]] = {
    "FilterInputStream": _STREAM_IN,
    "DataInputStream": _STREAM_IN,
    "CheckedInputStream": _STREAM_IN,
    "DigestInputStream": ("in", "digest"),
    "BufferedInputStream": ("in", "buf", "count", "pos", "markpos", "marklimit"),
    "PushbackInputStream": ("in", "buf", "pos"),
    "InflaterInputStream": ("in", "inf", "buf", "len"),
    "GZIPInputStream": ("in", "inf", "buf", "len", "crc", "eos"),
    "ZipInputStream": ("in", "inf", "buf", "len"),
    "FilterOutputStream": ("out",),
    "DataOutputStream": ("out", "written"),
    "CheckedOutputStream": ("out",),
    "DigestOutputStream": ("out", "digest"),
    "BufferedOutputStream": ("out", "buf", "count"),
    "PrintStream": ("out",),
    "DeflaterOutputStream": ("out", "def", "buf"),
    "GZIPOutputStream": ("out", "def", "buf", "crc"),
    "ZipOutputStream": ("out", "def", "buf"),
    "ByteArrayInputStream": ("buf", "pos", "mark", "count"),
    "ByteArrayOutputStream": ("buf", "count"),
    "Reader": ("lock",),
    "Writer": ("lock",),
    "FilterReader": ("in", "lock"),
    "FilterWriter": ("out", "lock"),
    "PushbackReader": ("in", "lock"),
    "BufferedReader": ("lock",),
    "BufferedWriter": ("lock",),
    "InputStreamReader": ("lock",),
    "OutputStreamWriter": ("lock",),
    "StringReader": ("lock",),
    "StringWriter": ("lock",),
    "PrintWriter": ("out", "lock"),
    "CharArrayReader": ("buf", "pos", "markedPos", "count", "lock"),
    "CharArrayWriter": ("buf", "count", "lock"),
    "AbstractList": ("modCount",),
    "AbstractSequentialList": ("modCount",),
    "ArrayList": ("modCount",),
    "LinkedList": ("modCount",),
    "Vector": ("elementData", "elementCount", "capacityIncrement", "modCount"),
    "Stack": ("elementData", "elementCount", "capacityIncrement", "modCount"),
    "AbstractAction": ("enabled", "changeSupport"),
    "AbstractListModel": ("listenerList",),
    "DefaultListModel": ("listenerList",),
    "AbstractTableModel": ("listenerList",),
    "DefaultTableModel": ("listenerList", "dataVector", "columnIdentifiers"),
    "JComponent": ("listenerList", "ui", "accessibleContext"),
    "JPanel": ("listenerList", "ui", "accessibleContext"),
}
_CLASS_BODIES = frozenset({"class_body", "interface_body", "enum_body", "annotation_type_body"})
_METHODS = frozenset({"method_declaration", "constructor_declaration"})
# Where a pattern variable stops being visible (see the module docstring).
_PATTERN_SCOPES = frozenset(
    {
        "block",
        "constructor_body",
        "switch_block_statement_group",
        "switch_rule",
        "lambda_expression",
        "for_statement",
        "field_declaration",
        "constant_declaration",
        "program",
    }
) | _CLASS_BODIES
# What a scope label names (innermost first).
_OWNERS = frozenset(
    {
        "method_declaration",
        "constructor_declaration",
        "compact_constructor_declaration",
        "lambda_expression",
        "static_initializer",
        "field_declaration",
        "constant_declaration",
    }
)

_UNNAMED = "the unnamed variable `_` (several may coexist; Java 22+) is not renamed"
_CANONICAL = (
    "a parameter of a record constructor with the record's arity: in the canonical constructor "
    "parameter names must equal the component names"
)
_BROKEN = (
    "its declaration at line {line} does not parse cleanly: tree-sitter's error recovery may read "
    "a renamed version differently"
)
_CASE_LABEL = (
    "used as a bare case label at line {line}, which is an enum constant rather than this variable "
    "when the switch is over an enum (not decidable without types)"
)


class _Decl:
    __slots__ = ("name", "kind", "start", "end", "visible", "owner", "field", "uses", "case_line", "excluded")

    def __init__(
        self,
        name: str,
        kind: str,
        node: Node,
        visible: tuple[int, int],
        owner: Node | None,
        field: bool,
        excluded: str | None,
    ):
        self.name = name
        self.kind = kind
        self.start = node.start_byte
        self.end = node.end_byte
        self.visible = visible
        self.owner = owner
        self.field = field  # a field or record component: shadows, never returned
        self.uses: list[tuple[int, int]] = []
        self.case_line: int | None = None
        self.excluded = excluded

    @classmethod
    def shadow(cls, name: str, visible: tuple[int, int]) -> "_Decl":
        """An inherited field: not in the program text, but it hides outer locals in `visible`."""
        decl = cls.__new__(cls)
        decl.name, decl.kind, decl.start, decl.end = name, "local", visible[0], visible[0]
        decl.visible, decl.owner, decl.field, decl.uses = visible, None, True, []
        decl.case_line = decl.excluded = None
        return decl


def collect_bindings(parsed: Parsed) -> list[Binding]:
    inside = _inside_its_class(parsed)
    return inside if inside is not None else _collect(parsed)


def _inside_its_class(parsed: Parsed) -> list[Binding] | None:
    """The bindings of a constructor extracted without its class, read inside one.

    Alone, ``Repo(Path path) throws IOException { ... }`` reads as a call, a local
    ``IOException`` and a block; in ``class Repo { ... }`` it reads as what it is. The spans
    are mapped back to the original text (the prefix is on the same line, so lines agree);
    `engine.code.taint` still judges the names against the original's broken parse.
    """
    name = _bare_constructor_name(parsed)
    if name is None:
        return None
    prefix = b"class " + name + b" { "
    inner = parse(prefix + parsed.source + b"\n}\n", "java")
    if inner.parse_errors >= parsed.parse_errors:
        return None
    shift, limit = len(prefix), len(parsed.source)
    bindings = []
    for b in _collect(inner):
        spans = tuple((start - shift, end - shift) for start, end in b.spans if start >= shift and end - shift <= limit)
        if spans:
            lo, hi = b.scope_span
            scope_span = (max(lo - shift, 0), min(hi - shift, limit))
            bindings.append(Binding(b.name, b.kind, b.scope, scope_span, spans, b.excluded))
    return bindings


def _bare_constructor_name(parsed: Parsed) -> bytes | None:
    parts = [child for child in parsed.root.named_children if "comment" not in child.type]
    if len(parts) not in (2, 3) or parts[0].type != "expression_statement" or parts[-1].type != "block":
        return None
    header = parts[0]
    call = header.named_children[0] if header.named_child_count else None
    if call is None or call.type != "method_invocation" or call.child_by_field_name("object") is not None:
        return None
    if not header.children[-1].is_missing:
        return None
    if len(parts) == 3:  # `throws A, B` read as a declaration of locals of type `throws`
        kind = parts[1].child_by_field_name("type")
        if parts[1].type != "local_variable_declaration" or kind is None or _text(kind, parsed.source) != "throws":
            return None
    name = call.child_by_field_name("name")
    return parsed.source[name.start_byte : name.end_byte] if name is not None else None


def _collect(parsed: Parsed) -> list[Binding]:
    walk = _Walk(parsed)
    stack = walk.stack
    cursor = parsed.root.walk()
    first_child, next_sibling, parent = cursor.goto_first_child, cursor.goto_next_sibling, cursor.goto_parent
    push, pop = stack.append, stack.pop
    identifier = walk.identifier
    while True:
        node = cursor.node
        ntype = node.type
        if ntype == "identifier":
            identifier(node, cursor.field_name)
        else:
            if ntype in _TYPE_DECLARATIONS:
                walk.type_declaration(node)
            if ntype not in _SKIP_SUBTREE and first_child():
                push(node)
                continue
        while not next_sibling():
            if not stack:
                return _resolve(walk, parsed.source)
            parent()
            pop()


class _Walk:
    """The state of one walk: ancestors of the current node, declarations and candidate occurrences."""

    def __init__(self, parsed: Parsed):
        self.source = parsed.source
        # ERROR regions, and the token boundaries to find what stands next to a declared name.
        self.errors = parsed.opaque if parsed.parse_errors else []
        self.token_starts = [start for start, _, _ in parsed.tokens] if self.errors else []
        self.tokens = parsed.tokens
        self.stack: list[Node] = []  # ancestors of the cursor's node, root first
        self.decls: list[_Decl] = []
        self.refs: list[tuple[int, int, bool]] = []  # (start, end, is a bare case label)
        # Class and interface declarations by simple name: (body span, supertype names) ...
        self.types: dict[str, list[tuple[tuple[int, int], tuple[str, ...]]]] = {}
        # ... and the bodies that inherit members from a supertype (anonymous classes included).
        self.subclass_bodies: list[tuple[tuple[int, int], tuple[str, ...]]] = []

    def type_declaration(self, node: Node) -> None:
        """Remember a class body and its supertypes, whose fields it inherits."""
        if node.type == "object_creation_expression":
            body = node.named_children[-1] if node.named_child_count else None
            if body is not None and body.type == "class_body":
                supertype = _simple_type_name(node.child_by_field_name("type"), self.source)
                if supertype:
                    self.subclass_bodies.append(((body.start_byte, body.end_byte), (supertype,)))
            return
        body = node.child_by_field_name("body")
        name = node.child_by_field_name("name")
        if body is None or name is None:
            return
        supertypes = []
        for child in node.named_children:
            if child.type == "superclass":
                supertypes.extend(_simple_type_name(t, self.source) for t in child.named_children)
            elif child.type in ("super_interfaces", "extends_interfaces"):
                for types in child.named_children:
                    supertypes.extend(_simple_type_name(t, self.source) for t in types.named_children)
        key = (body.start_byte, body.end_byte)
        supers = tuple(t for t in supertypes if t)
        self.types.setdefault(_text(name, self.source), []).append((key, supers))
        if supers:
            self.subclass_bodies.append((key, supers))

    def identifier(self, node: Node, field: str | None) -> None:
        """Classify one identifier by where it stands: declaration, reference, or neither."""
        stack = self.stack
        if not stack or node.end_byte == node.start_byte:
            return  # a MISSING identifier inserted by error recovery holds no name
        parent = stack[-1]
        ptype = parent.type
        if ptype in _NEVER_VARIABLES:
            return
        if ptype in _NAMED_DECLARATIONS:
            if field == "name":
                return
        elif ptype == "method_invocation":
            if field == "name" or (field == "object" and parent.child_count > 5 and _has_child(parent, "super")):
                return  # a method name, or the type in `Outer.super.m()`
        elif ptype == "field_access":
            if field == "field":
                return
            if field == "object":
                member = parent.child_by_field_name("field")
                qualified_this = member is not None and member.type == "this"
                if qualified_this or (parent.child_count > 3 and _has_child(parent, "super")):
                    return  # the type in `Outer.this.x` / `Outer.super.x`
        elif ptype == "method_reference":
            if node.start_byte != parent.start_byte:
                return  # the method name after `::`
        elif ptype == "element_value_pair":
            if field == "key":
                return
        elif ptype == "switch_label":
            self.refs.append((node.start_byte, node.end_byte, True))
            return
        elif ptype == "formal_parameter":
            if field == "name":
                self.parameter(node, 3)
            return  # a formal parameter holds no expression
        elif ptype == "variable_declarator":
            if field == "name":
                self.declarator(node)
                return
        elif ptype == "catch_formal_parameter":
            if field == "name":
                clause = _at(stack, 2)
                if clause is not None and clause.type == "catch_clause":
                    self.declare(node, "catch_parameter", (parent.start_byte, clause.end_byte))
            return
        elif ptype == "resource":
            if field == "name":
                statement = _at(stack, 3)
                if statement is not None and statement.type == "try_with_resources_statement":
                    body = statement.child_by_field_name("body")
                    self.declare(node, "resource", (node.start_byte, (body or statement).end_byte))
                return
        elif ptype == "enhanced_for_statement":
            if field == "name":
                body = parent.child_by_field_name("body")
                visible = (body.start_byte, body.end_byte) if body is not None else (node.end_byte, parent.end_byte)
                self.declare(node, "loop_variable", visible)
                return
        elif ptype == "lambda_expression":
            if field == "parameters":
                self.declare(node, "lambda_parameter", (parent.start_byte, parent.end_byte))
                return
        elif ptype == "inferred_parameters":
            lam = _at(stack, 2)
            if lam is not None and lam.type == "lambda_expression":
                self.declare(node, "lambda_parameter", (lam.start_byte, lam.end_byte))
            return
        elif ptype == "instanceof_expression":
            if field == "name":
                self.pattern(node)
                return
        elif ptype in ("type_pattern", "record_pattern_component"):
            self.pattern(node)
            return
        self.refs.append((node.start_byte, node.end_byte, False))

    def parameter(self, node: Node, depth: int) -> None:
        """A method, constructor, lambda or record parameter; its parameter list is `depth - 1`
        levels up and the list's owner `depth` levels up."""
        stack = self.stack
        params, owner = _at(stack, depth - 1), _at(stack, depth)
        if params is None or params.type != "formal_parameters" or owner is None:
            return  # a parameter outside a parameter list: error recovery, left to the opaque check
        otype = owner.type
        if otype in _METHODS:
            excluded = _CANONICAL if otype == "constructor_declaration" and _canonical(params, depth, stack) else None
            self.declare(node, "parameter", (params.start_byte, owner.end_byte), excluded=excluded)
        elif otype == "lambda_expression":
            self.declare(node, "lambda_parameter", (owner.start_byte, owner.end_byte))
        elif otype == "record_declaration":
            # A record component is a field (and an accessor method): visible in the whole record.
            self.declare(node, "parameter", (owner.start_byte, owner.end_byte), field=True)

    def declarator(self, node: Node) -> None:
        stack = self.stack
        holder = _at(stack, 2)
        if holder is None:
            return
        htype = holder.type
        if htype == "local_variable_declaration":
            container = _at(stack, 3)
            if container is None:
                return
            kind = "local"
            if container.type == "for_statement":
                kind = "loop_variable"
            elif container.type == "switch_block_statement_group":
                # Visible in the rest of the switch block, later statement groups included.
                container = _at(stack, 4) or container
            self.declare(node, kind, (node.start_byte, container.end_byte))
        elif htype == "spread_parameter":
            self.parameter(node, 4)
        elif htype in ("field_declaration", "constant_declaration"):
            body = _enclosing(stack, _CLASS_BODIES)
            self.declare(node, "local", (body.start_byte, body.end_byte), field=True)

    def pattern(self, node: Node) -> None:
        scope = _enclosing(self.stack, _PATTERN_SCOPES)
        self.declare(node, "pattern_variable", (node.start_byte, scope.end_byte))

    def declare(
        self, node: Node, kind: str, visible: tuple[int, int], field: bool = False, excluded: str | None = None
    ) -> None:
        """Record a declaration of `node`'s name, visible in the byte range `visible`.

        `field` marks a field (it only shadows); `excluded` is a reason not to rename it."""
        stack = self.stack
        owner = None
        if not field:
            for index in range(len(stack) - 1, -1, -1):
                atype = stack[index].type
                if atype in _OWNERS or (atype == "block" and index > 0 and stack[index - 1].type in _CLASS_BODIES):
                    owner = stack[index]
                    break
            if excluded is None and self.errors and self.next_to_error(node.start_byte):
                excluded = _BROKEN.format(line=node.start_point.row + 1)
        self.decls.append(_Decl(_text(node, self.source), kind, node, visible, owner, field, excluded))

    def next_to_error(self, start: int) -> bool:
        """Whether the token just before or just after the name starting at `start` is in an ERROR node."""
        index = bisect_left(self.token_starts, start)
        neighbours = [self.tokens[i][0] for i in (index - 1, index + 1) if 0 <= i < len(self.tokens)]
        return any(lo <= position < hi for position in neighbours for lo, hi in self.errors)


def _text(node: Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="surrogateescape")


def _simple_type_name(node: Node | None, source: bytes) -> str | None:
    """`Foo` for `Foo`, `a.b.Foo`, `Foo<T>`, `Outer.Foo<T>` (the name a class body inherits from)."""
    while node is not None:
        if node.type == "type_identifier":
            return _text(node, source)
        if node.type == "generic_type":
            node = node.named_children[0] if node.named_child_count else None
        elif node.type == "scoped_type_identifier":
            node = node.named_children[-1] if node.named_child_count else None
        elif node.type == "annotated_type":
            node = node.named_children[-1] if node.named_child_count else None
        else:
            return None
    return None


def _at(stack: list[Node], depth: int) -> Node | None:
    """The ancestor `depth` levels up (1 = parent)."""
    return stack[-depth] if len(stack) >= depth else None


def _has_child(node: Node, child_type: str) -> bool:
    return any(child.type == child_type for child in node.children)


def _canonical(params: Node, depth: int, stack: list[Node]) -> bool:
    """Whether the constructor `depth` levels up may be the canonical constructor of a record
    (declared in a record body with the record's arity)."""
    body, record = _at(stack, depth + 1), _at(stack, depth + 2)
    if body is None or body.type != "class_body" or record is None or record.type != "record_declaration":
        return False
    components = record.child_by_field_name("parameters")
    return components is not None and _arity(components) == _arity(params)


def _arity(params: Node) -> int:
    return sum(child.type in ("formal_parameter", "spread_parameter") for child in params.named_children)


def _enclosing(stack: list[Node], types: frozenset[str]) -> Node:
    for ancestor in reversed(stack):
        if ancestor.type in types:
            return ancestor
    return stack[0]


def _inherited_shadows(walk: _Walk, variables: set[str]) -> list[_Decl]:
    """Fields that class bodies inherit from supertypes declared in the program (or well-known
    JDK classes): inside the body they shadow outer locals of the same name."""
    if not walk.subclass_bodies:
        return []
    declared: dict[tuple[int, int], set[str]] = {}
    for decl in walk.decls:
        if decl.field:
            declared.setdefault(decl.visible, set()).add(decl.name)

    def inherited(type_name: str, seen: set[str]) -> set[str]:
        if type_name in seen:
            return set()
        seen.add(type_name)
        names = set(_KNOWN_INHERITED_FIELDS.get(type_name, ()))
        for body, supertypes in walk.types.get(type_name, ()):
            names |= declared.get(body, set())
            for supertype in supertypes:
                names |= inherited(supertype, seen)
        return names

    shadows = []
    for body, supertypes in walk.subclass_bodies:
        seen: set[str] = set()
        names = set().union(*(inherited(t, seen) for t in supertypes)) & variables
        shadows.extend(_Decl.shadow(name, body) for name in names - declared.get(body, set()))
    return shadows


def _resolve(walk: _Walk, source: bytes) -> list[Binding]:
    decls = walk.decls
    variables = {decl.name for decl in decls if not decl.field}
    by_name: dict[bytes, list[_Decl]] = {}
    for decl in decls + _inherited_shadows(walk, variables):
        by_name.setdefault(decl.name.encode("utf-8", errors="surrogateescape"), []).append(decl)
    for start, end, case_label in walk.refs:
        candidates = by_name.get(source[start:end])
        if not candidates:
            continue
        best = None
        for decl in candidates:
            lo, hi = decl.visible
            if lo <= start < hi and (best is None or lo > best.visible[0]):
                best = decl
        if best is None or best.field:
            continue
        best.uses.append((start, end))
        if case_label and best.case_line is None:
            best.case_line = source.count(b"\n", 0, start) + 1
    labels: dict[tuple[int, int], str] = {}
    bindings = []
    for decl in decls:
        if decl.field:
            continue
        excluded = decl.excluded
        if decl.name == "_":
            excluded = _UNNAMED
        elif decl.case_line is not None:
            excluded = _CASE_LABEL.format(line=decl.case_line)
        lo, hi = decl.visible
        bindings.append(
            Binding(
                name=decl.name,
                kind=decl.kind,
                scope=_label(decl.owner, labels, source),
                scope_span=(min(lo, decl.start), hi),
                spans=tuple(sorted([(decl.start, decl.end), *decl.uses])),
                excluded=excluded,
            )
        )
    return bindings


def _label(owner: Node | None, cache: dict[tuple[int, int], str], source: bytes) -> str:
    if owner is None:
        return "top level"
    key = (owner.start_byte, owner.end_byte)
    label = cache.get(key)
    if label is None:
        label = cache[key] = _describe(owner, source)
    return label


def _describe(owner: Node, source: bytes) -> str:
    otype = owner.type
    line = owner.start_point.row + 1
    name = owner.child_by_field_name("name")
    if otype in ("field_declaration", "constant_declaration"):
        declarator = owner.child_by_field_name("declarator")
        name = declarator.child_by_field_name("name") if declarator is not None else None
    if name is not None:
        line = name.start_point.row + 1
    text = _text(name, source) if name is not None else "?"
    if otype == "method_declaration":
        return f"method {text} (line {line})"
    if otype in ("constructor_declaration", "compact_constructor_declaration"):
        return f"constructor {text} (line {line})"
    if otype == "lambda_expression":
        return f"lambda (line {line})"
    if otype == "static_initializer":
        return f"static initializer (line {line})"
    if otype in ("field_declaration", "constant_declaration"):
        return f"initializer of field {text} (line {line})"
    return f"instance initializer (line {line})"
