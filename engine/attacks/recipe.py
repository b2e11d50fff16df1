"""What a recipe module declares: `RECIPES = (Recipe(...), ...)`, read by `engine.attacks.registry`.

A recipe module lives in `engine/attacks/recipes/`; the registry imports every module there
and collects their `RECIPES`, so a new recipe is one new module (plus its test): the `engine
attack --attack` choices, its flags, the study config's `recipe` key, the recipe tests that
run every recipe and the docs table all read the registry.

Convention for recipe parameters: each recipe family has one dataclass of *algorithm*
parameters (never engineering ones such as batch size) whose fields carry
`metadata={"help": "..."}` (and optionally `"choices"`). Every field becomes a flag
`--<prefix>-<field-with-dashes>` (e.g. `MHMParams.iterations` -> `--mhm-iterations`), its
default is the dataclass default (the paper's value), and the instance actually used is
recorded in the run manifest under `attack.params` (`dataclasses.asdict`). A `check()` method,
if present, raises a `UserError` naming the flag (`positive` helps).

Recipe modules must not import torch or transformers at module level (`engine --help` and
study-config validation import them all).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.attacks.base import AttackEnvironment, Search
from engine.errors import UserError

# Program size assumed where a published query formula needs one (study planning, before any pilot).
ASSUMED_VARIABLES = 10  # renameable variables per program
ASSUMED_OCCURRENCES = 4  # occurrences per variable


@dataclass(frozen=True)
class QueryPrior:
    """Expected victim queries per attacked example with the recipe's published budget, cited.

    `engine study` plans with `min(prior, budget)` until a pilot measures the real mean
    (docs/study.md, "Expected cost")."""

    queries: float
    source: str  # short citation, shown in the plan


NO_PRIOR = QueryPrior(float("inf"), "no published figure: the whole budget")


@dataclass(frozen=True)
class Recipe:
    name: str  # the --attack value and the records' `attack` field
    description: str  # one line: what it does, and the paper
    params: type  # the algorithm parameters dataclass
    build: Callable[[Any, AttackEnvironment], Search]  # (params, run environment) -> Search
    flag_prefix: str  # --<prefix>-<field>; recipes sharing a dataclass share a prefix
    natural_substitutes: bool = False  # needs env.natural_substitutes() (the study then computes them)
    prior: QueryPrior = NO_PRIOR


def flag(prefix: str, field_name: str) -> str:
    return f"--{prefix}-{field_name.replace('_', '-')}"


def positive(params: Any, prefix: str, *names: str) -> None:
    """Raise a UserError naming the flag when one of the integer parameters is < 1."""
    for name in names:
        if getattr(params, name) < 1:
            raise UserError(f"{flag(prefix, name)} must be at least 1, got {getattr(params, name)}")
