"""The three supported languages: grammar, file extensions, identifier syntax, reserved names.

Grammars come from the per-language `tree-sitter-*` wheels, which work offline (the language
pack downloads grammars at run time). Parsers are created once per language and reused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tree_sitter import Language, Parser

from engine.code.reserved import KEYWORDS, LIBRARY_NAMES


class CodeInputError(ValueError):
    """The input cannot be handled at all (unknown language, undecodable bytes)."""


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    extensions: tuple[str, ...]
    identifier_pattern: re.Pattern[str]
    # Leaf node types that hold a name (used for token comparison and collision checks).
    name_node_types: frozenset[str]
    # Node types whose text the grammar does not parse into tokens (macro bodies, broken code):
    # a variable that occurs in one of them cannot be renamed safely.
    opaque_node_types: frozenset[str]
    keywords: frozenset[str]
    # Builtin and library names: refused by `validate` only where the program uses them
    # (`collisions`); name pools leave them out (`attacks.sources.RandomNamePool`).
    library_names: frozenset[str]


_ASCII_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Java and Python 3 accept Unicode letters in identifiers; C (before C23) does not.
_JAVA_IDENTIFIER = re.compile(r"(?:[^\W\d]|\$)(?:\w|\$)*\Z")
_PYTHON_IDENTIFIER = re.compile(r"[^\W\d]\w*\Z")

SPECS: dict[str, LanguageSpec] = {
    "c": LanguageSpec(
        name="c",
        extensions=(".c", ".h"),
        identifier_pattern=_ASCII_IDENTIFIER,
        name_node_types=frozenset(
            {"identifier", "field_identifier", "type_identifier", "statement_identifier"}
        ),
        opaque_node_types=frozenset({"ERROR", "preproc_arg"}),
        keywords=KEYWORDS["c"],
        library_names=LIBRARY_NAMES["c"],
    ),
    "java": LanguageSpec(
        name="java",
        extensions=(".java",),
        identifier_pattern=_JAVA_IDENTIFIER,
        name_node_types=frozenset({"identifier", "type_identifier"}),
        opaque_node_types=frozenset({"ERROR"}),
        keywords=KEYWORDS["java"],
        library_names=LIBRARY_NAMES["java"],
    ),
    "python": LanguageSpec(
        name="python",
        extensions=(".py", ".pyw"),
        identifier_pattern=_PYTHON_IDENTIFIER,
        name_node_types=frozenset({"identifier"}),
        opaque_node_types=frozenset({"ERROR"}),
        keywords=KEYWORDS["python"],
        library_names=LIBRARY_NAMES["python"],
    ),
}

LANGUAGES = tuple(SPECS)


def spec(language: str) -> LanguageSpec:
    try:
        return SPECS[language]
    except KeyError:
        raise CodeInputError(
            f"unknown language {language!r}; supported: {', '.join(LANGUAGES)}"
        ) from None


def detect_language(path: str | Path) -> str:
    """Language from a file extension, with an error that says how to choose one by hand."""
    suffix = Path(path).suffix.lower()
    for name, language in SPECS.items():
        if suffix in language.extensions:
            return name
    raise CodeInputError(
        f"cannot tell the language of {str(path)!r} from its extension {suffix!r}; "
        f"pass --lang ({'|'.join(LANGUAGES)})"
    )


@lru_cache(maxsize=None)
def grammar(language: str) -> Language:
    spec(language)
    if language == "c":
        import tree_sitter_c as module
    elif language == "java":
        import tree_sitter_java as module
    else:
        import tree_sitter_python as module
    return Language(module.language())


@lru_cache(maxsize=None)
def parser(language: str) -> Parser:
    return Parser(grammar(language))
