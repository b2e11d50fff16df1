"""Every attack recipe, found in `engine/attacks/recipes/`, and the CLI flags made from their parameters.

Each module of that package declares `RECIPES = (Recipe(...), ...)` (`engine.attacks.recipe`);
this module imports them all once and is the one list everything else reads: `engine attack
--attack` and its per-recipe flags, the study config's `recipe` key and which recipes need
natural substitutes, the planning priors, the tests that run every recipe, and the recipes
table in docs/attacks.md (`tests/doc_tables.py`). A module that fails to import, or declares
no recipes, is a bug and fails loudly here.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from engine.attacks.base import AttackEnvironment, Search
from engine.attacks.recipe import Recipe, flag
from engine.common.discovery import discover
from engine.errors import UserError

RECIPES: dict[str, Recipe] = discover("engine.attacks.recipes", "RECIPES")


def recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise UserError(f"unknown attack {name!r}; recipes are {', '.join(RECIPES)}") from None


def dest(prefix: str, field_name: str) -> str:
    return f"{prefix.replace('-', '_')}_{field_name}"


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """One argument group per recipe family, one flag per parameter (default: the paper's)."""
    done: set[str] = set()
    for spec in RECIPES.values():
        if spec.flag_prefix in done:
            continue
        done.add(spec.flag_prefix)
        users = [n for n, s in RECIPES.items() if s.flag_prefix == spec.flag_prefix]
        group = parser.add_argument_group(f"{'/'.join(users)} parameters")
        for f in dataclasses.fields(spec.params):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            help_text = f"{f.metadata.get('help', '')} (default {default})"
            kwargs: dict[str, Any] = {"dest": dest(spec.flag_prefix, f.name), "default": default, "help": help_text}
            if isinstance(default, bool):
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = type(default) if default is not None else str
                if "choices" in f.metadata:
                    kwargs["choices"] = f.metadata["choices"]
            group.add_argument(flag(spec.flag_prefix, f.name), **kwargs)


def params_from_args(name: str, args: argparse.Namespace | None = None, **overrides: Any):
    """The recipe's parameters from parsed flags (missing flags: defaults), then `overrides`."""
    spec = recipe(name)
    values = {}
    if args is not None:
        for f in dataclasses.fields(spec.params):
            value = vars(args).get(dest(spec.flag_prefix, f.name))
            if value is not None:
                values[f.name] = value
    values.update(overrides)
    params = spec.params(**values)
    check = getattr(params, "check", None)
    if check is not None:
        check()  # raises UserError naming the flag
    return params


def build_search(name: str, params: Any, env: AttackEnvironment) -> Search:
    return recipe(name).build(params, env)


def params_class(name: str) -> type:
    """The recipe's parameters dataclass."""
    return recipe(name).params
