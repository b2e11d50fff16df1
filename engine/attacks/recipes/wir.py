"""WIR-Random (Zeng et al., ISSTA 2022; Du et al., FSE 2023): importance order, random names, greedy.

Variables are ranked by importance (`importance.rank_variables`: the drop in true-label
probability when each occurrence is replaced by the unknown token, summed per variable). In
that order, each variable gets `candidates` random identifier-like names (admissible on top of
the renames already committed), queried in ONE batch; a label flip ends the attack (the flip
with the lowest true-label probability is returned), otherwise the name that lowers the
true-label probability most is committed if it lowers it at all. Unlike Du et al.'s version,
names already in the program or given to another variable are never proposed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.attacks.base import AttackContext, AttackEnvironment, Outcome, SubstituteSource
from engine.attacks.greedy import greedy_pass
from engine.attacks.importance import MODES, rank_variables
from engine.attacks.recipe import ASSUMED_OCCURRENCES, ASSUMED_VARIABLES, QueryPrior, Recipe, positive


@dataclass
class WIRRandomParams:
    candidates: int = field(default=30, metadata={"help": "random names tried per variable"})
    importance: str = field(default="occurrence", metadata={
        "help": "mask one occurrence at a time (ALERT, Du et al.) or a whole variable", "choices": MODES})

    def check(self) -> None:
        positive(self, "wir", "candidates")


class WIRRandom:
    name = "wir-random"

    def __init__(self, params: WIRRandomParams, source: SubstituteSource) -> None:
        self.params = params
        self.source = source

    def attack(self, ctx: AttackContext) -> Outcome:
        importance = rank_variables(ctx, self.params.importance)
        return greedy_pass(ctx, importance.ranked, self.source, self.params.candidates,
                           importance_queries=importance.queries)


def build_wir_random(params: WIRRandomParams, env: AttackEnvironment) -> WIRRandom:
    return WIRRandom(params, env.name_pool())


RECIPES = (
    Recipe("wir-random", "importance ranking + random identifier-like names, greedy (Zeng et al. ISSTA 2022)",
           WIRRandomParams, build_wir_random, "wir",
           prior=QueryPrior(1 + ASSUMED_VARIABLES * ASSUMED_OCCURRENCES + 30 * ASSUMED_VARIABLES,
                            "WIR-Random's query formula 1 + Σocc + 30·V (Du et al.), V = 10 variables of 4 "
                            "occurrences assumed")),
)
