"""Expected victim queries per example before any pilot: each recipe's published figure, cited.

Each prior (`Recipe.prior`, declared beside the recipe in `engine/attacks/recipes/`) is the
mean number of queries an attacked example needs with the recipe's published budget; a cell
expects `min(prior, budget)` (an example can never spend more than its budget). Only ALERT has a
published mean over a whole test set; the others are one published example or the recipe's
query formula with an assumed program size; a recipe without one expects its whole budget.
`engine study --pilot N` replaces all of them with measured means. Sources and derivations:
docs/study.md, "Expected cost".
"""
from __future__ import annotations

from engine.attacks.recipe import QueryPrior


def priors() -> dict[str, QueryPrior]:
    """Recipe name -> its prior, for every registered recipe."""
    from engine.attacks.registry import RECIPES

    return {name: spec.prior for name, spec in RECIPES.items()}


def expected_queries(recipe: str, budget: int) -> tuple[float, QueryPrior]:
    from engine.attacks.registry import recipe as find

    prior = find(recipe).prior
    return min(float(budget), prior.queries), prior
