"""Registries that fill themselves: every module of a package declares its entries.

`discover("engine.attacks.recipes", "RECIPES")` imports each module of the package (in name
order) and collects the objects in its `RECIPES` tuple, keyed by their `name`. Adding a recipe,
a file format, a builtin dataset or a statistical test is then one new module: whatever lists
them (CLI choices, config validation, parametrised tests, docs tables) reads the registry.

No guard: a module that fails to import fails the registry (that is a bug to see, not an
entry to drop), and so does a module that declares nothing or a name declared twice.
"""
from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import Any


def discover(package: str, attribute: str) -> dict[str, Any]:
    """name -> entry, for every entry in the `attribute` tuple of every module of `package`."""
    found: dict[str, Any] = {}
    where: dict[str, str] = {}
    path = import_module(package).__path__
    for info in sorted(pkgutil.iter_modules(path), key=lambda info: info.name):
        module = import_module(f"{package}.{info.name}")
        entries = getattr(module, attribute, None)
        if not entries:
            raise RuntimeError(f"{module.__name__} declares no {attribute}: every module of {package} must "
                               f"(shared helpers live outside the package)")
        for entry in entries:
            if entry.name in found:
                raise RuntimeError(f"{attribute}: {entry.name!r} is declared by both {where[entry.name]} and {module.__name__}")
            found[entry.name] = entry
            where[entry.name] = module.__name__
    return found
