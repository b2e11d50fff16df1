"""`stdlib-attribution`: which standard-library package does a function come from?

A real-code analogue of authorship attribution, built offline from the running Python's own
standard library (`sysconfig.get_paths()["stdlib"]`), so nothing third-party is shipped:

1. every `.py` file of every top-level *package* (a directory with `__init__.py`), leaving
   out `test/`, `idlelib/`, `site-packages/` and any `test`/`tests`/`idle_test` folder inside;
2. every top-level `def` and every method (a `def` directly in a class body, classes nested
   in classes included; functions nested in functions are part of their parent), from its
   `def` line to `end_lineno` (decorators left out), dedented; kept when it is 3..60 lines long
   and still parses on its own;
3. duplicates by normalised text (whitespace collapsed) are dropped: one copy is kept when all
   copies are in one package, none when they are in several (the label would be ambiguous);
4. the 10 packages with the most functions become the classes (ties broken by name);
5. every class gets the same number of functions, `min(size, smallest class)`, chosen by the
   order of the SHA-256 of their text (a fixed, seed-free choice); labels are package names in
   alphabetical order.

The split (80/10/10, stratified by label) is made by the registry from the seed; the pool
above depends only on the Python installation and `size`.
"""
from __future__ import annotations

import ast
import hashlib
import re
import sys
import sysconfig
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.datasets.loaders import Record
from engine.datasets.spec import Builtin

NAME = "stdlib-attribution"
VERSION = 1  # bump when the pool changes for the same Python and size
DEFAULT_SIZE = 150  # functions per class
NUM_CLASSES = 10
MIN_LINES, MAX_LINES = 3, 60
EXCLUDED_PACKAGES = frozenset({"test", "idlelib", "site-packages", "__pycache__"})
EXCLUDED_DIRS = frozenset({"test", "tests", "idle_test", "__pycache__"})


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def source_files(root: Path | None = None) -> list[tuple[str, Path]]:
    """(package, file) for every candidate source file, in a fixed order."""
    root = root or stdlib_root()
    out: list[tuple[str, Path]] = []
    for package in sorted(root.iterdir()):
        if not package.is_dir() or package.name in EXCLUDED_PACKAGES or not (package / "__init__.py").is_file():
            continue
        for file in sorted(package.rglob("*.py")):
            if any(part in EXCLUDED_DIRS for part in file.relative_to(package).parts[:-1]):
                continue
            out.append((package.name, file))
    return out


def source_hash(files: list[tuple[str, Path]], root: Path | None = None) -> str:
    """SHA-256 over every candidate file's relative path and bytes."""
    root = root or stdlib_root()
    digest = hashlib.sha256()
    for _package, file in files:
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(file.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def cache_key(size: int) -> dict[str, Any]:
    root = stdlib_root()
    return {
        "builtin": NAME, "version": VERSION, "size": size, "python": sys.version.split()[0],
        "stdlib": str(root), "source_sha256": source_hash(source_files(root), root),
    }


@dataclass(frozen=True)
class Function:
    package: str
    module: str
    qualname: str
    lineno: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.module}:{self.lineno}:{self.qualname}"


def _functions_in(body: list[ast.stmt], prefix: str = ""):
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
        elif isinstance(node, ast.ClassDef):
            yield from _functions_in(node.body, f"{prefix}{node.name}.")


def extract_functions(package: str, file: Path, root: Path, stats: Counter) -> list[Function]:
    """Top-level functions and methods of one file that pass the length and parse filters."""
    try:
        source = file.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(file))
    except (UnicodeDecodeError, SyntaxError, ValueError):
        stats["files_unparseable"] += 1
        return []
    lines = source.splitlines()
    module = ".".join(file.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
    out = []
    for qualname, node in _functions_in(tree.body):
        length = node.end_lineno - node.lineno + 1
        if not MIN_LINES <= length <= MAX_LINES:
            stats["functions_out_of_length"] += 1
            continue
        text = textwrap.dedent("\n".join(lines[node.lineno - 1 : node.end_lineno])) + "\n"
        try:
            ast.parse(text)
        except SyntaxError:  # e.g. a docstring line less indented than its def
            stats["functions_not_standalone"] += 1
            continue
        out.append(Function(package, module, qualname, node.lineno, text))
    return out


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_pool(size: int = DEFAULT_SIZE, progress=None) -> tuple[list[Record], list[str], dict[str, Any]]:
    """The balanced, labelled pool (records, label names, manifest facts)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    root = stdlib_root()
    files = source_files(root)
    stats: Counter[str] = Counter()
    by_text: dict[str, list[Function]] = defaultdict(list)
    for package, file in files:
        for function in extract_functions(package, file, root, stats):
            by_text[normalise(function.text)].append(function)
        if progress is not None:
            progress(1)
    kept: dict[str, list[Function]] = defaultdict(list)
    for copies in by_text.values():
        packages = {function.package for function in copies}
        if len(packages) > 1:
            stats["duplicates_across_packages"] += len(copies)
            continue
        stats["duplicates_dropped"] += len(copies) - 1
        kept[copies[0].package].append(copies[0])
    ranking = sorted(kept, key=lambda package: (-len(kept[package]), package))
    classes = sorted(ranking[:NUM_CLASSES])
    if len(classes) < 2:
        raise RuntimeError(f"only {len(classes)} usable package(s) under {root}")
    per_class = min(size, min(len(kept[package]) for package in classes))
    records: list[Record] = []
    for package in classes:
        chosen = sorted(kept[package], key=lambda function: _digest(function.text))[:per_class]
        for function in sorted(chosen, key=lambda f: (f.module, f.lineno)):
            meta = {"module": function.module, "qualname": function.qualname, "lineno": function.lineno}
            records.append(Record(function.id, function.text, package, meta))
    manifest = {
        "python": sys.version.split()[0],
        "python_full": sys.version,
        "stdlib": str(root),
        "source_files": len(files),
        "source_sha256": source_hash(files, root),
        "classes": classes,
        "functions_per_class": per_class,
        "available_per_class": {package: len(kept[package]) for package in ranking[: NUM_CLASSES + 3]},
        "filters": {"lines": [MIN_LINES, MAX_LINES], **dict(sorted(stats.items()))},
    }
    return records, classes, manifest


BUILTINS = (
    Builtin(NAME, "functions of the running Python's stdlib labelled by package (10 classes, balanced); Python, authorship",
            task="authorship", language="python", default_size=DEFAULT_SIZE, size_help="functions per class", key=cache_key,
            build=build_pool, unit="file"),
)
