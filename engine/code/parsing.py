"""One parse per program: the tree, its parse-error count, its tokens and its opaque regions.

Everything the language layer derives from a program (identifiers, tokens, checks) comes
from a single walk of a single tree, so an attack that builds thousands of candidates pays
for parsing once per example, not once per candidate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node, Tree

from engine.code.languages import CodeInputError, parser, spec
from engine.code.model import Span

# An identifier-shaped word in UTF-8 bytes. Every non-ASCII byte counts as a word byte, so a
# Unicode identifier (legal in Python, Java and as a C extension) is one word, never split or
# missed; over-matching only makes the collision and opaque-region checks stricter.
WORD = re.compile(rb"[A-Za-z_$\x80-\xff][A-Za-z0-9_$\x80-\xff]*")


def to_bytes(source: str | bytes) -> bytes:
    """UTF-8 bytes of a program; bytes must already be UTF-8 (the error says where they are not)."""
    if isinstance(source, str):
        return source.encode("utf-8", errors="surrogateescape")
    if not isinstance(source, (bytes, bytearray)):
        raise CodeInputError(f"expected program text (str or bytes), got {type(source).__name__}")
    source = bytes(source)
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as err:
        line = source.count(b"\n", 0, err.start) + 1
        raise CodeInputError(
            f"input is not valid UTF-8: byte 0x{source[err.start]:02x} at offset {err.start} "
            f"(line {line}); re-encode it or pass its encoding (e.g. --encoding latin-1)"
        ) from None
    return source


def to_text(source: bytes) -> str:
    return source.decode("utf-8", errors="surrogateescape")


@dataclass
class Parsed:
    """A parsed program and the facts every later step needs from the same walk."""

    language: str
    source: bytes
    tree: Tree
    parse_errors: int
    # (start, end, type) of every token, in order: tree leaves plus any text the grammar
    # leaves uncovered between leaves (type "gap"), so that no character escapes comparison.
    tokens: list[tuple[int, int, str]]
    opaque: list[Span]

    @property
    def root(self) -> Node:
        return self.tree.root_node

    def words(self) -> frozenset[str]:
        """Every identifier-shaped word anywhere in the program, comments and strings included."""
        return frozenset(m.group().decode("utf-8", "surrogateescape") for m in WORD.finditer(self.source))

    def words_in(self, span: Span) -> list[tuple[int, str]]:
        start, end = span
        return [(start + m.start(), m.group().decode("utf-8", "surrogateescape")) for m in WORD.finditer(self.source[start:end])]


def parse(source: str | bytes, language: str) -> Parsed:
    lang = spec(language)
    data = to_bytes(source)
    tree = parser(language).parse(data)
    errors = 0
    leaves: list[tuple[int, int, str]] = []
    opaque: list[Span] = []
    cursor = tree.walk()
    visited_children = False
    while True:
        node = cursor.node
        if not visited_children:
            kind = node.type
            if node.is_missing or kind == "ERROR":
                errors += 1
            if kind in lang.opaque_node_types:
                opaque.append((node.start_byte, node.end_byte))
            if cursor.goto_first_child():
                continue
            if node.end_byte > node.start_byte:
                leaves.append((node.start_byte, node.end_byte, kind))
        if cursor.goto_next_sibling():
            visited_children = False
        elif cursor.goto_parent():
            visited_children = True
        else:
            break
    return Parsed(language, data, tree, errors, _with_gaps(data, leaves), opaque)


def _with_gaps(source: bytes, leaves: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    tokens: list[tuple[int, int, str]] = []
    position = 0
    for start, end, kind in leaves:
        if start < position:  # zero-width or overlapping leaves from error recovery
            continue
        if start > position:
            tokens.extend(_gap_tokens(source, position, start))
        tokens.append((start, end, kind))
        position = end
    if position < len(source):
        tokens.extend(_gap_tokens(source, position, len(source)))
    return tokens


def _gap_tokens(source: bytes, start: int, end: int) -> list[tuple[int, int, str]]:
    return [(start + m.start(), start + m.end(), "gap") for m in re.finditer(rb"\S+", source[start:end])]
