"""C scope rules: which names are variables, and which occurrences refer to which variable.

One walk of the tree-sitter-c tree, in document order, with a stack instead of recursion (deep
expression chains in real code would overflow Python's recursion limit). Scopes follow C:

- a function's parameters are visible in its whole definition (K&R declarations included);
- a block-scope declaration is visible from the end of its declarator to the end of the
  enclosing compound statement (so ``int n = n;`` and ``int a[n]`` are handled as C does);
- a ``for (int i = ...; ...)`` declaration is visible in the whole ``for`` statement;
- an inner declaration of the same name shadows the outer one and is a separate binding;
- a local function prototype, ``typedef`` name or enumeration constant declared in a block
  shadows an outer variable of the same name but is not itself a variable.

An ``identifier`` node is an occurrence of the innermost variable of that name in scope.
``field_identifier`` (``p->n``, ``s.n``, ``.n = 1``), ``statement_identifier`` (labels), function
names being declared, macro names, struct tags and text in strings or comments are never
occurrences: only names that resolve to a declared local or parameter are. File-scope
variables, fields, enumeration constants, typedef names and functions are not returned.

Unparseable text is left to `extract`: an identifier that tree-sitter could not fit into any
construct (a direct child of an ``ERROR`` node) is not taken as an occurrence, so a variable
whose name occurs there is excluded by the generic opaque-region check. Macro bodies are
handled the same way; in addition, because a macro body is resolved where the macro is
*expanded*, a variable whose name occurs in a macro body defined before its declaration is
excluded here (the generic check only looks inside the variable's own scope).
"""
from __future__ import annotations

from tree_sitter import Node

from engine.code.model import Binding
from engine.code.parsing import WORD, Parsed, to_text as _text
from engine.code.reserved import C_KEYWORDS

_KEYWORDS = frozenset(name.encode() for name in C_KEYWORDS)

# Stack operations.
_WALK = 0  # visit a node and its subtree (expressions, statements, types)
_DECLARE = 1  # a declarator's name: extra = (kind, start of scope_span, is a variable)
_KR_PARAM = 2  # a name in a K&R parameter declaration: the same binding as the listed parameter
_BODY = 3  # a function body: the block shares the function's scope label

# Declarator wrappers whose `declarator` child leads to the declared name.
_DECLARATORS = frozenset({"pointer_declarator", "array_declarator", "function_declarator", "attributed_declarator"})

# Subtrees that hold no occurrence of a variable.
_SKIP = frozenset(
    {
        "field_identifier",  # s.n, p->n, .n = 1, offsetof(struct S, n)
        "statement_identifier",  # labels: `out:` and `goto out;`
        "string_literal",
        "char_literal",
        "concatenated_string",  # string pieces and format macros (PRId64)
        "system_lib_string",
        "comment",
        "number_literal",
        "primitive_type",
        "preproc_include",
        "preproc_call",  # #undef, #pragma, #error ...
        "preproc_directive",
        "attribute_specifier",  # __attribute__((unused)): attribute names, not variables
        "attribute_declaration",
        "ms_declspec_modifier",
        "gnu_asm_goto_list",  # asm goto labels
        "gnu_asm_clobber_list",
    }
)
_SPECIFIERS = frozenset({"struct_specifier", "union_specifier", "enum_specifier"})
_DECLARATOR_PARTS = _DECLARATORS | {"init_declarator", "parenthesized_declarator"}
_MACRO_DEFS = frozenset({"preproc_def", "preproc_function_def"})
_ASM_OPERANDS = frozenset({"gnu_asm_input_operand", "gnu_asm_output_operand"})


class _Scope:
    __slots__ = ("parent", "names", "end", "kind", "row", "function", "_label")

    def __init__(self, parent, kind, end, row, function=None, label=None):
        self.parent = parent
        # name (bytes) -> _Var, or None for a declared name that is not a variable (it shadows).
        self.names: dict = {}
        self.end = end
        self.kind = kind  # "file", "function", "block", "for", "prototype"
        self.row = row
        self.function = function  # the enclosing function scope, if any
        self._label = label

    @property
    def label(self) -> str:
        if self._label is None:
            where = f"{'for loop' if self.kind == 'for' else 'block'} (line {self.row + 1})"
            self._label = f"{where} in {self.function.label}" if self.function is not None else where
        return self._label

    def lookup(self, name: bytes):
        scope = self
        while scope is not None:
            names = scope.names
            if name in names:
                return names[name]
            scope = scope.parent
        return None


class _Var:
    __slots__ = ("name", "kind", "scope", "start", "end", "spans", "excluded")

    def __init__(self, name: bytes, kind: str, scope: str, start: int, end: int, span):
        self.name = name
        self.kind = kind
        self.scope = scope
        self.start = start
        self.end = end
        self.spans = [span]
        self.excluded = None


def collect_bindings(parsed: Parsed) -> list[Binding]:
    source = parsed.source
    root = parsed.root
    variables: list[_Var] = []
    macros: list[tuple[int, frozenset[bytes]]] = []  # (start, names used in the body) per #define
    file_scope = _Scope(None, "file", root.end_byte, 0)
    stack: list = [(_WALK, root, file_scope, None)]
    pop, push, extend = stack.pop, stack.append, stack.extend

    while stack:
        op, node, scope, extra = pop()

        if op == _WALK:
            kind = node.type
            if kind == "identifier" or kind == "type_identifier":
                # A `type_identifier` that names a variable in scope is a tree-sitter misreading
                # of an expression: in valid C a name declared as a variable in an inner scope
                # hides any typedef of that name, so it cannot denote a type there (e.g. the
                # expression statement `n * p;` is parsed as a declaration of `p` of type `n`).
                # Struct/union/enum tags (their own namespace) never reach here.
                var = scope.lookup(source[node.start_byte : node.end_byte])
                if var is not None:
                    var.spans.append((node.start_byte, node.end_byte))
            elif kind in _SKIP:
                pass
            elif kind == "compound_statement":
                block = _Scope(scope, "block", node.end_byte, node.start_point[0], scope.function)
                extend([(_WALK, c, block, None) for c in reversed(node.named_children)])
            elif kind == "declaration":
                _plan_declaration(node, scope, "loop_variable" if extra else "local", source, push)
            elif kind == "for_statement":
                loop = _Scope(scope, "for", node.end_byte, node.start_point[0], scope.function)
                children = node.children
                for i in range(len(children) - 1, -1, -1):
                    child = children[i]
                    is_init = child.type == "declaration" and node.field_name_for_child(i) == "initializer"
                    push((_WALK, child, loop, True if is_init else None))
            elif kind == "function_definition":
                _plan_function(node, scope, source, push)
            elif kind in _MACRO_DEFS:
                _record_macro(node, source, macros)
            elif kind in _SPECIFIERS:
                _push_children_except(node, "name", scope, push)
            elif kind == "enumerator":
                # An enumeration constant declared in a block hides outer variables of its name.
                name = node.child_by_field_name("name")
                value = node.child_by_field_name("value")
                if value is not None:
                    push((_WALK, value, scope, None))
                if name is not None and scope.kind != "file":
                    scope.names[source[name.start_byte : name.end_byte]] = None
            elif kind == "type_definition":
                _plan_typedef(node, scope, source, push)
            elif kind == "parameter_list":
                # A prototype that is not a function definition's own (a local prototype, a
                # function-pointer declarator, a cast to a function-pointer type): its parameter
                # names live in a scope of their own and are not variables of the program.
                proto = _Scope(scope, "prototype", node.end_byte, node.start_point[0], scope.function)
                actions = []
                _plan_parameters(node, proto, proto.end, False, actions)
                extend(reversed(actions))
            elif kind == "ERROR":
                actions = []
                _plan_error(node, scope, source, actions)
                extend(reversed(actions))
            elif kind == "translation_unit":
                actions = []
                _plan_top_level(node, scope, source, actions)
                extend(reversed(actions))
            elif kind[:10] == "preproc_if" or kind[:12] == "preproc_elif" or kind[:12] == "preproc_else":
                # #if/#ifdef/#elif conditions name macros, not variables; the branches are code
                # of the enclosing block (no scope of their own).
                children = node.children
                for i in range(len(children) - 1, -1, -1):
                    field = node.field_name_for_child(i)
                    if field != "condition" and field != "name":
                        push((_WALK, children[i], scope, None))
            elif kind in _ASM_OPERANDS:
                _push_children_except(node, "symbol", scope, push)  # `[name]` is asm's own namespace
            else:
                extend([(_WALK, c, scope, None) for c in reversed(node.named_children)])

        elif op == _DECLARE:
            kind, start, mode = extra
            name = source[node.start_byte : node.end_byte]
            if name in _KEYWORDS or not name:
                continue  # error recovery can make `int` look like a declared name
            if mode is not False and scope.kind not in ("file", "prototype"):
                var = _Var(name, kind, scope.label, start, scope.end, (node.start_byte, node.end_byte))
                if mode is not True:
                    var.excluded = mode
                variables.append(var)
                scope.names[name] = var
            elif scope.kind != "file":
                scope.names[name] = None

        elif op == _KR_PARAM:
            name = source[node.start_byte : node.end_byte]
            var = scope.names.get(name)
            if var is not None and var.kind == "parameter":
                var.spans.append((node.start_byte, node.end_byte))
            elif name not in _KEYWORDS and name:
                var = _Var(name, "parameter", scope.label, extra, scope.end, (node.start_byte, node.end_byte))
                variables.append(var)
                scope.names[name] = var

        elif op == _BODY:
            body = _Scope(scope, "block", node.end_byte, node.start_point[0], scope, scope.label)
            extend([(_WALK, c, body, None) for c in reversed(node.named_children)])

    if macros:
        _exclude_names_in_earlier_macros(variables, macros, source)
    return [
        Binding(
            name=_text(var.name),
            kind=var.kind,
            scope=var.scope,
            scope_span=(var.start, var.end),
            spans=tuple(sorted(var.spans)),
            excluded=var.excluded,
        )
        for var in variables
    ]


def _push_children_except(node: Node, skipped_field: str, scope: _Scope, push) -> None:
    children = node.children
    for i in range(len(children) - 1, -1, -1):
        if node.field_name_for_child(i) != skipped_field:
            push((_WALK, children[i], scope, None))


def _plan_declaration(node: Node, scope: _Scope, kind: str, source: bytes, push) -> None:
    """Push the actions of a declaration: its types, then per declarator sizes, name, initializer."""
    type_node = node.child_by_field_name("type")
    if type_node is not None and type_node.type == "type_identifier":
        var = scope.lookup(source[type_node.start_byte : type_node.end_byte])
        if var is not None:
            # `n * p;` with `n` a variable in scope cannot be a declaration in valid C:
            # tree-sitter read an expression statement as one. Every name in it is a use.
            for child in reversed(node.children):
                push((_WALK, child, scope, None))
            return
    actions: list = []
    start = node.start_byte
    children = node.children
    declarators = [child for i, child in enumerate(children) if node.field_name_for_child(i) == "declarator"]
    # `uint8_t av_unused end_bit = 0;`: a macro between the type and the name makes tree-sitter
    # put one of the two names in an ERROR node, and which one depends on their lengths. They
    # cannot be told apart without the macro's definition, so every name in the declaration's
    # declarators is declared, excluded, whatever the shape of the recovery.
    broken = any(child.type == "ERROR" and _has_loose_name(child) for child in children) or any(
        map(_has_error, declarators)
    )
    if broken:
        mode: bool | str = _unparsed(node)
    elif any(
        child.type == "storage_class_specifier" and source[child.start_byte : child.end_byte] == b"extern"
        for child in children
    ):
        # `extern int counter;` in a block names a variable defined elsewhere: renaming it
        # would link to a different object.
        mode = "declared extern: it names a variable defined outside this program"
    else:
        mode = True
    for i, child in enumerate(children):
        if node.field_name_for_child(i) == "declarator":
            _plan_declarator(child, scope, kind, start, mode, False, actions)
        elif child.type == "ERROR" and broken:
            _plan_declarator(child, scope, kind, start, mode, False, actions)
        elif child.is_named:
            actions.append((_WALK, child, scope, None))
    for action in reversed(actions):
        push(action)


def _has_error(declarator: Node) -> bool:
    """Whether error recovery left a loose name among the parts of a declarator."""
    node = declarator
    while node is not None:
        if node.type not in _DECLARATOR_PARTS:
            return False
        inner = None
        for child in node.children:
            kind_of = child.type
            if kind_of == "ERROR":
                if _has_loose_name(child):
                    return True
            elif kind_of in _DECLARATOR_PARTS:
                inner = child
        node = inner
    return False


def _unparsed(node: Node) -> str:
    return (
        f"declared at line {node.start_point[0] + 1} in a declaration that does not parse (a macro "
        "beside the name?), where the declared name cannot be told apart safely"
    )


def _is_loose_name_error(node: Node) -> bool:
    return node.type == "ERROR" and _has_loose_name(node)


def _has_loose_name(error: Node) -> bool:
    return any(child.type in ("identifier", "type_identifier") for child in error.children)


def _plan_typedef(node: Node, scope: _Scope, source: bytes, push) -> None:
    actions: list = []
    children = node.children
    for i, child in enumerate(children):
        if node.field_name_for_child(i) == "declarator":
            _plan_declarator(child, scope, "local", node.start_byte, False, False, actions)
        elif child.is_named:
            actions.append((_WALK, child, scope, None))
    for action in reversed(actions):
        push(action)


def _plan_declarator(
    node: Node, scope: _Scope, kind: str, start: int, mode: bool | str, in_function: bool, actions: list
) -> None:
    """Append, in C's order, the actions of one declarator.

    Array sizes and nested prototypes are walked before the name is declared (a name is in
    scope from the end of its declarator), the initializer after. `in_function` is true when
    the declarator nearest the name is a function declarator: the name is then a function (a
    local prototype), not a variable, except for a parameter (adjusted to a function pointer).
    """
    kind_of = node.type
    if kind_of == "identifier" or kind_of == "type_identifier":
        actions.append((_DECLARE, node, scope, (kind, start, mode if not in_function or kind == "parameter" else False)))
    elif kind_of == "init_declarator":
        value = None
        children = node.children
        for i, child in enumerate(children):
            field = node.field_name_for_child(i)
            if field == "declarator":
                _plan_declarator(child, scope, kind, start, mode, in_function, actions)
            elif field == "value":
                value = child
            elif child.type == "ERROR":
                _plan_declarator(child, scope, kind, start, mode, in_function, actions)
            elif child.is_named:
                actions.append((_WALK, child, scope, None))
        if value is not None:
            actions.append((_WALK, value, scope, None))
    elif kind_of in _DECLARATORS:
        inner = None
        children = node.children
        for i, child in enumerate(children):
            if node.field_name_for_child(i) == "declarator":
                inner = child
            elif child.type == "ERROR":
                _plan_declarator(child, scope, kind, start, mode, in_function, actions)
            elif child.is_named:
                actions.append((_WALK, child, scope, None))
        if inner is not None:
            nearest = kind_of == "function_declarator" if kind_of != "attributed_declarator" else in_function
            _plan_declarator(inner, scope, kind, start, mode, nearest, actions)
    elif kind_of == "parenthesized_declarator":
        for child in node.children:
            if child.is_named:
                if child.type in ("identifier", "type_identifier", "parenthesized_declarator") or child.type in _DECLARATORS:
                    _plan_declarator(child, scope, kind, start, mode, in_function, actions)
                else:
                    actions.append((_WALK, child, scope, None))
    elif kind_of == "ERROR" and mode is not True:
        # In a declaration that does not parse (see `_plan_declaration`): the loose names are
        # candidate declared names, declared with the declaration's exclusion.
        for child in node.children:
            if child.type == "identifier":
                actions.append((_DECLARE, child, scope, (kind, start, mode)))
            elif child.is_named:
                actions.append((_WALK, child, scope, None))
    else:  # ERROR, a macro, anything else: ordinary code
        actions.append((_WALK, node, scope, None))


def _plan_parameters(params: Node, scope: _Scope, start: int, mode: bool, actions: list) -> None:
    """Parameters of one parameter list, declared in `scope` (a function's or a prototype's).

    As in `_plan_declaration`, a parameter whose declarator error recovery split
    (`int av_unused x`) is declared excluded, and so are the loose names next to it.
    """
    children = params.children
    count = len(children)
    for index, param in enumerate(children):
        kind_of = param.type
        if kind_of == "parameter_declaration":
            parts = param.children
            broken = (
                (index > 0 and _is_loose_name_error(children[index - 1]))
                or (index + 1 < count and _is_loose_name_error(children[index + 1]))
                or any(map(_is_loose_name_error, parts))
            )
            for i, child in enumerate(parts):
                if param.field_name_for_child(i) == "declarator":
                    ok = _unparsed(param) if mode and (broken or _has_error(child)) else mode
                    _plan_declarator(child, scope, "parameter", start, ok, False, actions)
                elif child.type == "ERROR":
                    _plan_declarator(child, scope, "parameter", start, _unparsed(param) if mode else False, False, actions)
                elif child.is_named:
                    actions.append((_WALK, child, scope, None))
        elif kind_of == "identifier":  # K&R: `int f(a, b) int a; char *b; { ... }`
            actions.append((_DECLARE, param, scope, ("parameter", start, mode)))
        elif kind_of == "ERROR":
            _plan_declarator(param, scope, "parameter", start, _unparsed(param) if mode else False, False, actions)
        elif param.is_named and kind_of != "variadic_parameter":
            actions.append((_WALK, param, scope, None))


def _function_declarator(declarator: Node | None) -> tuple[Node | None, Node | None]:
    """The function declarator that declares the function's own parameters, and its name.

    For ``int (*getfn(int a))(int b)`` it is the innermost one (`a` is a parameter of
    `getfn`; `b` belongs to the returned pointer's prototype). A function declarator directly
    inside another one (a function returning a function) is not C: it is a macro that makes
    the name, as QEMU's ``void HELPER(mvc)(CPUState *env, ...)``, and the parameters are the
    outer list's.
    """
    found = None
    outer = None  # the function declarator directly enclosing the current node, if any
    node = declarator
    while node is not None:
        kind_of = node.type
        if kind_of == "identifier":
            return found, node
        if kind_of == "function_declarator":
            if outer is None:
                found = node
            outer = node
            node = node.child_by_field_name("declarator")
            continue
        outer = None
        if kind_of in _DECLARATORS:
            node = node.child_by_field_name("declarator")
        elif kind_of == "parenthesized_declarator":
            node = node.named_children[0] if node.named_child_count else None
        else:
            break
    return found, None


def _plan_function(node: Node, scope: _Scope, source: bytes, push) -> None:
    declarator = node.child_by_field_name("declarator")
    own, name = _function_declarator(declarator)
    function = _function_scope(scope, name, node, node.end_byte, source)
    if name is not None and scope.kind != "file":
        scope.names[source[name.start_byte : name.end_byte]] = None  # a nested (GNU) function
    start = node.start_byte

    actions: list = []
    children = node.children
    for i, child in enumerate(children):
        field = node.field_name_for_child(i)
        if field == "declarator":
            _plan_function_declarator(child, own, function, start, actions)
        elif field == "body":
            actions.append((_BODY, child, function, None))
        elif child.type == "declaration":  # K&R parameter declarations
            for j, part in enumerate(child.children):
                if child.field_name_for_child(j) == "declarator":
                    sub: list = []
                    _plan_declarator(part, function, "parameter", start, True, False, sub)
                    actions.extend((_KR_PARAM, n, s, start) if op == _DECLARE else (op, n, s, e) for op, n, s, e in sub)
                elif part.is_named:
                    actions.append((_WALK, part, function, None))
        elif child.is_named:
            actions.append((_WALK, child, scope, None))  # return type, storage class, attributes
    for action in reversed(actions):
        push(action)


def _plan_function_declarator(node: Node, own: Node | None, function: _Scope, start: int, actions: list) -> None:
    """Walk a function definition's declarator: its own parameters are declared in `function`."""
    kind_of = node.type
    if kind_of == "identifier":
        return  # the function's name: not a variable
    if node == own:
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "parameters":
                _plan_parameters(child, function, start, True, actions)
            elif node.field_name_for_child(i) == "declarator":
                _plan_function_declarator(child, own, function, start, actions)
            elif child.is_named:
                actions.append((_WALK, child, function, None))
        return
    if kind_of in _DECLARATORS or kind_of == "parenthesized_declarator":
        for i, child in enumerate(node.children):
            field = node.field_name_for_child(i)
            if field == "declarator" or (kind_of == "parenthesized_declarator" and child.is_named):
                _plan_function_declarator(child, own, function, start, actions)
            elif child.is_named:
                actions.append((_WALK, child, function, None))
        return
    actions.append((_WALK, node, function, None))


def _record_macro(node: Node, source: bytes, macros: list) -> None:
    """Remember the names a #define body uses (its own parameters are not uses)."""
    body = node.child_by_field_name("value")
    if body is None:
        return
    words = set(WORD.findall(source, body.start_byte, body.end_byte))
    params = node.child_by_field_name("parameters")
    if params is not None:
        words.difference_update(source[p.start_byte : p.end_byte] for p in params.named_children)
    if words:
        macros.append((body.start_byte, frozenset(words)))


def _exclude_names_in_earlier_macros(variables: list[_Var], macros: list, source: bytes) -> None:
    """A macro body is resolved where it is expanded: one defined before a variable's scope
    (at file scope, or earlier in the function) that uses the variable's name may refer to it.
    `extract` already excludes names found in macro bodies inside the variable's scope."""
    for var in variables:
        for start, words in macros:
            if start < var.start and var.name in words:
                line = source.count(b"\n", 0, start) + 1
                var.excluded = (
                    f"also occurs at line {line} inside a macro body defined before it, "
                    "where it cannot be renamed safely"
                )
                break


def _function_scope(scope: _Scope, name: Node | None, at: Node, end: int, source: bytes) -> _Scope:
    row = (name if name is not None else at).start_point[0]
    name_text = _text(source[name.start_byte : name.end_byte]) if name is not None else ""
    label = f"function {name_text} (line {row + 1})" if name_text else f"function (line {row + 1})"
    function = _Scope(scope, "function", end, row, None, label)
    function.function = function
    return function


def _plan_error(node: Node, scope: _Scope, source: bytes, actions: list) -> None:
    """The parts of an ERROR node that still have a structure, in order.

    An identifier that error recovery left loose is not taken as an occurrence (the variable
    of that name is then excluded by `extract`). When a whole function fails to parse,
    tree-sitter returns its pieces flat: ``static int f(int a) { int b; ... if (x) { ... }``
    with the braces as loose tokens. A function declarator (``f(...)``, or ``*f(...)`` under a
    pointer declarator) followed by a loose ``{`` still declares its parameters, and loose
    braces still open and close blocks.
    """
    children = node.children
    current = scope
    opened: list[_Scope] = []  # the scope before each loose `{` still open
    function = None  # a function declarator waiting for its `{`
    for i, child in enumerate(children):
        kind_of = child.type
        if kind_of == "{":
            end = _matching_brace(children, i, node.end_byte)
            opened.append(current)
            if function is not None:
                current = _Scope(function, "block", end, child.start_point[0], function, function.label)
                function = None
            else:
                current = _Scope(current, "block", end, child.start_point[0], current.function)
        elif kind_of == "}":
            if opened:
                current = opened.pop()
        elif kind_of in _DECLARATORS and _next_token_type(children, i) == "{":  # `f(...)`, `*f(...)`
            own, name = _function_declarator(child)
            if own is None:
                actions.append((_WALK, child, current, None))
                continue
            end = _matching_brace(children, i + 1, node.end_byte)
            function = _function_scope(current, name, child, end, source)
            _plan_function_declarator(child, own, function, child.start_byte, actions)
        elif kind_of == "identifier" or kind_of == "type_identifier":
            continue
        elif child.is_named:
            actions.append((_WALK, child, current, None))


def _next_token_type(children: list[Node], i: int) -> str | None:
    for child in children[i + 1 :]:
        if child.type != "comment":
            return child.type
    return None


def _matching_brace(children: list[Node], i: int, default: int) -> int:
    """End of the loose `}` closing the loose `{` at `children[i]`, or `default`."""
    depth = 0
    for child in children[i:]:
        kind_of = child.type
        if kind_of == "{":
            depth += 1
        elif kind_of == "}":
            depth -= 1
            if depth == 0:
                return child.end_byte
    return default


def _plan_top_level(node: Node, scope: _Scope, source: bytes, actions: list) -> None:
    """Top-level items; recognises a function definition whose return type is missing.

    Devign-style extracts often start at the function name (``ff_foo(AVCodecContext *avctx,
    int n) { ... }``, the return type having been on the previous line); tree-sitter then
    reads the header as a call statement followed by a block. The parameters are recovered
    from the header's tokens: in each comma-separated group of two or more tokens, a final name
    is the parameter's name. The result depends only on the tokens, not on how error recovery
    shaped the header.
    """
    children = node.children
    count = len(children)
    skip_until = -1
    for i, child in enumerate(children):
        if i <= skip_until:
            continue
        if (
            child.type == "expression_statement"
            and i + 1 < count
            and children[i + 1].type == "compound_statement"
            and is_headerless(child)
        ):
            call = child.children[0]
            callee = call.child_by_field_name("function")
            body = children[i + 1]
            function = _function_scope(scope, callee, child, body.end_byte, source)
            for name in _header_parameter_names(call.child_by_field_name("arguments")):
                actions.append((_DECLARE, name, function, ("parameter", child.start_byte, True)))
            actions.append((_BODY, body, function, None))
            skip_until = i + 1
            continue
        actions.append((_WALK, child, scope, None))


def is_headerless(statement: Node) -> bool:
    if statement.child_count != 2 or not statement.children[1].is_missing:
        return False
    call = statement.children[0]
    if call.type != "call_expression":
        return False
    callee = call.child_by_field_name("function")
    return callee is not None and callee.type == "identifier" and call.child_by_field_name("arguments") is not None


def _header_parameter_names(arguments: Node | None) -> list[Node]:
    if arguments is None:
        return []
    leaves: list[Node] = []
    stack = [arguments]
    while stack:
        node = stack.pop()
        if node.child_count == 0:
            leaves.append(node)
        else:
            stack.extend(reversed(node.children))
    names: list[Node] = []
    group: list[Node] = []
    depth = 0
    for leaf in leaves:
        kind_of = leaf.type
        if kind_of in ("(", "["):
            depth += 1
        elif kind_of in (")", "]"):
            depth -= 1
        if (kind_of == "," and depth == 1) or (kind_of == ")" and depth == 0):
            if len(group) >= 2 and group[-1].type in _HEADER_NAMES:
                names.append(group[-1])
            group = []
        elif depth >= 1 and not (kind_of == "(" and depth == 1) and leaf.end_byte > leaf.start_byte:
            group.append(leaf)
    return names


_HEADER_NAMES = frozenset({"identifier", "type_identifier", "field_identifier"})
