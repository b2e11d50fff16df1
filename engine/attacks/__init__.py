"""Identifier-renaming attacks: the framework (`base`), recipes, the runner and the registry.

    engine attack --attack mhm --model runs/victim --dataset stdlib-attribution --n 50 --out logs/mhm

See `docs/attacks.md`. Importing this package is cheap (no torch); the recipes (`recipes/`) load with
`engine.attacks.registry`, which finds them.
"""
from engine.attacks.base import (
    AttackContext,
    AttackEnvironment,
    BudgetExhausted,
    Candidate,
    Evaluated,
    Outcome,
    Search,
    SubstituteSource,
    example_rng,
)

__all__ = [
    "AttackContext",
    "AttackEnvironment",
    "BudgetExhausted",
    "Candidate",
    "Evaluated",
    "Outcome",
    "Search",
    "SubstituteSource",
    "example_rng",
]
