"""Records shared by the language layer: what a variable is, where it occurs, why it was left out.

Spans are byte offsets into the UTF-8 encoding of the program, because that is what
tree-sitter reports and what a span substitution needs; they are never line/column pairs
that drift once an earlier name changes length.
"""
from __future__ import annotations

from dataclasses import dataclass, field

Span = tuple[int, int]

# The kinds an extractor may report. One vocabulary for all languages so that logs and
# reports can group by kind without per-language tables.
KINDS = (
    "parameter",
    "local",
    "loop_variable",
    "catch_parameter",
    "with_target",
    "comprehension_variable",
    "lambda_parameter",
    "pattern_variable",
    "resource",
    "module_variable",
)


@dataclass(frozen=True)
class Binding:
    """One declared variable in one scope, with every occurrence that refers to it.

    `scope` is a human-readable label (e.g. ``"function main (line 3)"``); `scope_span` is the
    byte range in which references to this binding can appear, used to find occurrences that
    the parser could not see (ERROR nodes, macro bodies) and that would make a rename unsafe.
    `excluded` holds the reason when the binding must not be renamed.
    """

    name: str
    kind: str
    scope: str
    scope_span: Span
    spans: tuple[Span, ...]
    excluded: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown identifier kind {self.kind!r}; expected one of {KINDS}")


@dataclass(frozen=True)
class Identifier:
    """A renameable name: the union of its renameable bindings (the unit an attack renames)."""

    name: str
    kinds: tuple[str, ...]
    spans: tuple[Span, ...]
    scopes: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.kinds[0]

    def to_json(self, source: bytes) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "kinds": list(self.kinds),
            "scopes": list(self.scopes),
            "occurrences": [
                {"start": s, "end": e, "line": source.count(b"\n", 0, s) + 1} for s, e in self.spans
            ],
        }


@dataclass(frozen=True)
class Exclusion:
    """A declared variable left out of the attack surface, and why (never silently)."""

    name: str
    kind: str
    scope: str
    reason: str


@dataclass
class Extraction:
    """Everything an attack needs to know about one program, computed from one parse."""

    language: str
    source: bytes
    identifiers: dict[str, Identifier]
    exclusions: list[Exclusion]
    names_in_program: frozenset[str]
    parse_errors: int
    # Every binding the extractor found, renameable or not: the binding structure that the
    # alpha-equivalence check compares between an original and its renamed version.
    bindings: list[Binding] = field(repr=False, default_factory=list)
    tokens: list[tuple[int, int, str]] = field(repr=False, default_factory=list)
    # Spellings with a code occurrence in or next to a misparse (`engine.code.taint`): any of
    # them still renameable was proven to have one binding covering all its occurrences.
    unclear_names: frozenset[str] = field(repr=False, default_factory=frozenset)
    # What a new name would collide with (`engine.code.collisions`), built by the first check
    # that needs it: extraction alone (and every re-extraction in `check_rename`) never pays for it.
    collisions: object | None = field(repr=False, compare=False, default=None)

    @property
    def text(self) -> str:
        return self.source.decode("utf-8", errors="surrogateescape")

    @property
    def names(self) -> list[str]:
        return list(self.identifiers)

    def to_json(self) -> dict:
        return {
            "language": self.language,
            "parse_errors": self.parse_errors,
            "identifiers": [ident.to_json(self.source) for ident in self.identifiers.values()],
            "excluded": [
                {"name": x.name, "kind": x.kind, "scope": x.scope, "reason": x.reason}
                for x in self.exclusions
            ],
        }
