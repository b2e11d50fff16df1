"""Expected victim queries per example before any pilot: published figures, cited.

Each prior is the mean number of queries an attacked example needs with the recipe's published
budget; a cell expects `min(prior, budget)` (an example can never spend more than its budget).
Only ALERT has a published mean over a whole test set; the others are one published example or
the recipe's query formula with an assumed program size. `engine study --pilot N` replaces all
of them with measured means. Sources and derivations: docs/study.md, "Expected cost".
"""
from __future__ import annotations

from dataclasses import dataclass

ASSUMED_VARIABLES = 10  # renameable variables per program, where a formula needs it
ASSUMED_OCCURRENCES = 4  # occurrences per variable


@dataclass(frozen=True)
class QueryPrior:
    queries: float  # per attacked example
    source: str  # short citation, shown in the plan


PRIORS: dict[str, QueryPrior] = {
    "alert": QueryPrior(4009, "Du et al. FSE'23 re-run of ALERT, CodeBERT on GCJ: 4,009 queries per example "
                              "over 3,842 examples (1,257 on successes)"),
    "mhm-ns": QueryPrior(713, "ALERT's README: MHM-NS on one Devign example, 713 queries (ALERT 148 on it)"),
    "mhm": QueryPrior(713, "no published mean for MHM; MHM-NS's 713 on one Devign example (ALERT's README)"),
    "wir-random": QueryPrior(1 + ASSUMED_VARIABLES * ASSUMED_OCCURRENCES + 30 * ASSUMED_VARIABLES,
                             "WIR-Random's query formula 1 + Σocc + 30·V (Du et al.), V = 10 variables of 4 "
                             "occurrences assumed"),
    "coda": QueryPrior(1 + 64 + 64 * ASSUMED_VARIABLES,
                       "CODA's fixed query count 1 + 64 + 64·(V+F) (Tian et al. ASE'23), V+F = 10 assumed"),
    "random": QueryPrior(float("inf"), "no published figure: the whole budget"),
}


def expected_queries(recipe: str, budget: int) -> tuple[float, QueryPrior]:
    prior = PRIORS.get(recipe, PRIORS["random"])
    return min(float(budget), prior.queries), prior
