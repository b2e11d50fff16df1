"""Recipe names -> (parameters dataclass, builder), and the CLI flags made from the parameters.

Convention for recipe parameters: each recipe family has one dataclass of *algorithm*
parameters (never engineering ones such as batch size) whose fields carry
`metadata={"help": "..."}` (and optionally `"choices"`). Every field becomes a flag
`--<prefix>-<field-with-dashes>` (e.g. `MHMParams.iterations` -> `--mhm-iterations`), its
default is the dataclass default (the paper's value), and the instance actually used is
recorded in the run manifest under `attack.params` (`dataclasses.asdict`).

Recipe modules are imported lazily (by dotted path) so that `engine --help` stays fast; they
must not import torch or transformers at module level. A recipe whose module is missing is
listed as unavailable rather than breaking the command.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from engine.attacks.base import AttackEnvironment, Search
from engine.errors import UserError


@dataclass(frozen=True)
class RecipeSpec:
    name: str
    description: str
    module: str  # dotted module holding the builder and the parameters dataclass
    builder: str  # function (params, env) -> Search
    params: str  # dataclass name
    flag_prefix: str  # --<prefix>-<field>; recipes sharing a dataclass share a prefix
    natural_substitutes: bool = False  # needs env.natural_substitutes()


RECIPES: dict[str, RecipeSpec] = {
    spec.name: spec
    for spec in (
        RecipeSpec("mhm", "Metropolis-Hastings over renames, random identifier-like names (Zhang et al. AAAI 2020)",
                   "engine.attacks.mhm", "build_mhm", "MHMParams", "mhm"),
        RecipeSpec("mhm-ns", "MHM with natural (masked-LM or precomputed) substitutes (ALERT's MHM-NS)",
                   "engine.attacks.mhm", "build_mhm_ns", "MHMParams", "mhm", natural_substitutes=True),
        RecipeSpec("wir-random", "importance ranking + random identifier-like names, greedy (Zeng et al. ISSTA 2022)",
                   "engine.attacks.wir", "build_wir_random", "WIRRandomParams", "wir"),
        RecipeSpec("random", "random valid renames of random variables within the same budget (baseline)",
                   "engine.attacks.random_search", "build_random", "RandomParams", "random"),
        RecipeSpec("alert", "natural substitutes, importance-ordered greedy, then a genetic algorithm (Yang et al. ICSE 2022)",
                   "engine.attacks.alert", "build_alert", "ALERTParams", "alert", natural_substitutes=True),
        RecipeSpec("coda", "reference programs: structure rewrites, then renames to their names (Tian et al. ASE 2023)",
                   "engine.attacks.coda", "build_coda", "CODAParams", "coda"),
    )
}


def recipe(name: str) -> RecipeSpec:
    try:
        return RECIPES[name]
    except KeyError:
        raise UserError(f"unknown attack {name!r}; recipes are {', '.join(RECIPES)}") from None


def params_class(name: str) -> type | None:
    """The recipe's parameters dataclass, or None when its module is not available."""
    spec = recipe(name)
    try:
        return getattr(import_module(spec.module), spec.params)
    except (ImportError, AttributeError):
        return None


def available() -> list[str]:
    return [name for name in RECIPES if params_class(name) is not None]


def flag(prefix: str, field_name: str) -> str:
    return f"--{prefix}-{field_name.replace('_', '-')}"


def dest(prefix: str, field_name: str) -> str:
    return f"{prefix.replace('-', '_')}_{field_name}"


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """One argument group per recipe family, one flag per parameter (default: the paper's)."""
    done: set[str] = set()
    for name, spec in RECIPES.items():
        if spec.flag_prefix in done:
            continue
        cls = params_class(name)
        if cls is None:
            continue
        done.add(spec.flag_prefix)
        users = [n for n, s in RECIPES.items() if s.flag_prefix == spec.flag_prefix]
        group = parser.add_argument_group(f"{'/'.join(users)} parameters")
        for f in dataclasses.fields(cls):
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
    cls = params_class(name)
    if cls is None:
        raise UserError(f"attack {name!r} is not available in this installation ({spec.module} is missing)")
    values = {}
    for f in dataclasses.fields(cls):
        key = dest(spec.flag_prefix, f.name)
        if args is not None and getattr(args, key, None) is not None:
            values[f.name] = getattr(args, key)
    values.update(overrides)
    params = cls(**values)
    check = getattr(params, "check", None)
    if check is not None:
        check()  # raises UserError naming the flag
    return params


def build_search(name: str, params: Any, env: AttackEnvironment) -> Search:
    spec = recipe(name)
    builder = getattr(import_module(spec.module), spec.builder)
    return builder(params, env)


def positive(params: Any, prefix: str, *names: str) -> None:
    """Raise a UserError naming the flag when one of the integer parameters is < 1."""
    for name in names:
        if getattr(params, name) < 1:
            raise UserError(f"{flag(prefix, name)} must be at least 1, got {getattr(params, name)}")
