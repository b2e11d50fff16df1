"""The docs tables that list a registry, generated from it: recipes, compression methods, dataset
formats and builtins, statistical tests, report formats.

Each table sits in a docs file between `<!-- generated: NAME -->` and `<!-- end generated -->`;
`tests/test_docs_tables.py` fails when one is out of date. After adding a recipe, a method, a
loader, a test or a format, regenerate them:

    python tests/doc_tables.py --write
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
END = "<!-- end generated -->"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    return "\n".join([_row(*header), "|" + "---|" * len(header), *(_row(*row) for row in rows)])


def recipes() -> str:
    from engine.attacks.recipe import flag
    from engine.attacks.registry import RECIPES

    rows, described = [], {}
    for name, spec in RECIPES.items():
        if spec.flag_prefix in described:
            flags = f"as `{described[spec.flag_prefix]}`"
        else:
            described[spec.flag_prefix] = name
            flags = ", ".join(f"`{flag(spec.flag_prefix, f.name)}` ({f.default})" for f in dataclasses.fields(spec.params))
        rows.append((f"`{name}`", flags, "yes" if spec.natural_substitutes else "", spec.description))
    return _table(("recipe", "flags (default)", "natural substitutes", "what it does"), rows)


def methods() -> str:
    from engine.compress.methods import METHODS

    rows = []
    for name, spec in METHODS.items():
        options = ", ".join(f"`--{option.replace('_', '-')}`" for option in spec.options)
        standard = ", ".join(f"`{key}` {value}" for key, value in (spec.standard or {}).items() if value is not None)
        rows.append((f"`{name}`", spec.description, options, f"`OUT/{name}`: {standard}" if spec.standard else ""))
    return _table(("method", "what it does", "options", "`--all` variant"), rows)


def datasets() -> str:
    from engine.datasets.registry import BUILTINS, FORMATS

    rows = [(f"`--dataset {name}`", f"{spec.task}, {spec.language}",
             f"{spec.description}; `--dataset-size`: {spec.size_help} (default {spec.default_size})")
            for name, spec in BUILTINS.items()]
    rows += [(f"`--data-format {name}`", f"{spec.task}, {spec.language}" if not spec.generic else "`--task`, `--language`",
              spec.description) for name, spec in FORMATS.items()]
    return _table(("dataset", "task, language", "what it is"), rows)


def statistics() -> str:
    from analysis.stats import DEFAULTS, ROLES, TESTS

    rows = [(f"`{name}`", f"`--{test.role}`" + (" (default)" if DEFAULTS[test.role] == name else ""), test.description)
            for name, test in sorted(TESTS.items(), key=lambda item: (list(ROLES).index(item[1].role), item[0]))]
    return _table(("test", "role", "what it computes"), rows)


def report_formats() -> str:
    from engine.common.reports import REPORT_FORMATS

    return _table(("format", "what it writes"), [(f"`{name}`", text) for name, text in REPORT_FORMATS.items()])


TABLES: dict[str, tuple[str, Callable[[], str]]] = {  # name -> (docs file, generator)
    "recipes": ("docs/attacks.md", recipes),
    "methods": ("docs/compression.md", methods),
    "datasets": ("docs/datasets.md", datasets),
    "statistics": ("docs/metrics.md", statistics),
    "report-formats": ("docs/analysis.md", report_formats),
}


def block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- generated: {re.escape(name)} [^\n]*-->\n)(.*?)\n?({re.escape(END)})", re.S)


def current(name: str) -> str | None:
    """The table as the docs file holds it now (None when its markers are missing)."""
    path, _ = TABLES[name]
    found = block(name).search((ROOT / path).read_text(encoding="utf-8"))
    return found.group(2) if found else None


def write() -> list[str]:
    changed = []
    for name, (path, generate) in TABLES.items():
        file = ROOT / path
        text = file.read_text(encoding="utf-8")
        new, count = block(name).subn(lambda m: m.group(1) + generate() + "\n" + m.group(3), text)
        if count != 1:
            raise SystemExit(f"{path}: no <!-- generated: {name} --> … {END} block to fill")
        if new != text:
            file.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the tables in place (else print them)")
    args = parser.parse_args()
    if args.write:
        print("\n".join(write()) or "every table is current")
    else:
        for name, (path, generate) in TABLES.items():
            print(f"## {name} ({path})\n\n{generate()}\n")


if __name__ == "__main__":
    main()
