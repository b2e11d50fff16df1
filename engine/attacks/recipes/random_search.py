"""The random baseline: random admissible renames of random variables, the victim used only as an oracle.

Each iteration picks a variable uniformly at random, draws `candidates` admissible random
names for it (on top of the renames made so far) and queries them in ONE batch; any label flip
is a success. Otherwise one of those names, chosen uniformly at random (never by probability),
is kept and the walk goes on. With the defaults (100 iterations × 30 names) it spends at most
the same queries as MHM; with `--budget` both stop at the same count. What a guided search
gains over this is what its guidance is worth.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.attacks.base import AttackContext, AttackEnvironment, Outcome, SubstituteSource, strongest_flip, try_names
from engine.attacks.recipe import Recipe, positive


@dataclass
class RandomParams:
    iterations: int = field(default=100, metadata={"help": "random steps (one variable, one batch of names each)"})
    candidates: int = field(default=30, metadata={"help": "random names queried per step"})

    def check(self) -> None:
        positive(self, "random", "iterations", "candidates")


class RandomSearch:
    name = "random"

    def __init__(self, params: RandomParams, source: SubstituteSource) -> None:
        self.params = params
        self.source = source

    def attack(self, ctx: AttackContext) -> Outcome:
        p = self.params
        mapping: dict[str, str] = {}
        current = None
        for step in range(p.iterations):
            variable = ctx.variables[int(ctx.rng.integers(len(ctx.variables)))]
            names = self.source.candidates(ctx, variable, p.candidates + len(mapping) + 1)
            evaluated = try_names(ctx, variable, names, mapping, limit=p.candidates)
            flip = strongest_flip(ctx, evaluated)
            if flip is not None:
                return Outcome.from_evaluated(ctx, flip, steps=step + 1)
            if evaluated:
                current = evaluated[int(ctx.rng.integers(len(evaluated)))]
                mapping = dict(current.candidate.mapping)
            if ctx.exhausted:
                break
        reason = "budget exhausted" if ctx.exhausted else "iterations done"
        return Outcome.from_evaluated(ctx, current, reason=reason, steps=step + 1)


def build_random(params: RandomParams, env: AttackEnvironment) -> RandomSearch:
    return RandomSearch(params, env.name_pool())


RECIPES = (
    Recipe("random", "random valid renames of random variables within the same budget (baseline)",
           RandomParams, build_random, "random"),
)
