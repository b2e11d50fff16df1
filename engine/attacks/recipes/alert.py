"""ALERT (Yang et al., ICSE 2022): natural substitutes, importance-ordered greedy, then a genetic algorithm.

1. **Substitutes.** Each variable's natural substitutes (masked-LM proposals kept by contextual
   similarity: `engine substitutes`, or a dataset's precomputed ones), at most `substitutes`
   per variable. Variables without any are not attacked (as in ALERT).
2. **Importance.** `importance.rank_variables`: the drop in true-label probability when one
   occurrence is replaced by the unknown token, summed per variable (probe queries).
3. **Greedy.** In importance order, every substitute of the variable is queried on top of the
   renames committed so far, in ONE batch; a flip ends the attack; otherwise the substitute that
   lowers the true-label probability most is committed if it lowers it at all. The variable's
   best substitute is remembered as its *seed* whether committed or not.
4. **Genetic algorithm** (only if greedy fails). A chromosome gives each seeded variable a name
   (its own name = unchanged). The population is the identity plus, per variable, the
   chromosome where only that variable takes its seed (|V| + 1 members, ALERT's), scored by
   fitness = p_y(original) − p_y(program). Each generation makes `children` children (its own
   parameter, 64 as in ALERT's released runs; never the victim's batch size): with probability
   `crossover` two parents are drawn and cut at a random point (a child equal to a parent is
   mutated instead), otherwise one parent is mutated (one random variable gets a random
   substitute). The children are queried in one batch (a flip ends the attack); each child
   then replaces the least fit member if it is strictly fitter (`kernels.steady_state_replace`).
   Generations: `max(generation_factor × population, min_generations)` (ALERT: 5 and 10).

Differences from the published code, all on the side of validity: a child never gives one
name to two variables (a crossover that would is repaired by keeping the first variable's name
and restoring the later one's original name), names come only from the language layer's
admissible set, and a chromosome already evaluated for this example is not queried again
(its fitness is known), so repeated children cost no budget. Parent selection is ALERT's
uniform draw by default; `tournament` and `roulette` use the numba selection kernels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.attacks.base import (AttackContext, AttackEnvironment, Evaluated, Outcome, SubstituteSource, lowest,
                                 strongest_flip, try_names)
from engine.attacks.importance import MODES, rank_variables
from engine.attacks.recipe import QueryPrior, Recipe, positive
from engine.errors import UserError

SELECTIONS = ("uniform", "tournament", "roulette")


@dataclass
class ALERTParams:
    substitutes: int = field(default=30, metadata={"help": "natural substitutes tried per variable"})
    importance: str = field(default="occurrence", metadata={
        "help": "mask one occurrence at a time (ALERT) or a whole variable", "choices": MODES})
    ga: bool = field(default=True, metadata={"help": "run the genetic algorithm when greedy fails"})
    crossover: float = field(default=0.7, metadata={"help": "probability that a child is made by crossover (else mutation)"})
    children: int = field(default=64, metadata={"help": "children per GA generation (independent of --batch-size)"})
    generation_factor: int = field(default=5, metadata={"help": "GA generations = max(factor × population, minimum)"})
    min_generations: int = field(default=10, metadata={"help": "GA generations at least"})
    selection: str = field(default="uniform", metadata={
        "help": "GA parent selection: uniform (ALERT), tournament or roulette", "choices": SELECTIONS})
    tournament_size: int = field(default=2, metadata={"help": "contenders per tournament (selection tournament)"})

    def check(self) -> None:
        positive(self, "alert", "substitutes", "children", "min_generations", "tournament_size")
        if self.generation_factor < 0:
            raise UserError(f"--alert-generation-factor must be ≥ 0, got {self.generation_factor}")
        if not 0.0 <= self.crossover <= 1.0:
            raise UserError(f"--alert-crossover must be in [0, 1], got {self.crossover}")
        if self.selection not in SELECTIONS:
            raise UserError(f"--alert-selection {self.selection!r}: use {', '.join(SELECTIONS)}")
        if self.importance not in MODES:
            raise UserError(f"--alert-importance {self.importance!r}: use {', '.join(MODES)}")


Chromosome = tuple[str, ...]


class ALERT:
    name = "alert"

    def __init__(self, params: ALERTParams, source: SubstituteSource) -> None:
        self.params = params
        self.source = source

    def attack(self, ctx: AttackContext) -> Outcome:
        p = self.params
        substitutes = {v: self.source.candidates(ctx, v, p.substitutes + len(ctx.variables)) for v in ctx.variables}
        substitutes = {v: names for v, names in substitutes.items() if names}
        if not substitutes:
            return Outcome(False, {}, None, None, reason="no variable has an admissible substitute",
                           extras={"stage": None, "variables_with_substitutes": 0})
        importance = rank_variables(ctx, p.importance)
        ranked = [v for v in importance.ranked if v in substitutes]
        facts = {"importance_queries": importance.queries, "variables_with_substitutes": len(substitutes)}
        before = ctx.queries_used
        outcome, seeds = self._greedy(ctx, ranked, substitutes, facts)
        facts["greedy_queries"] = ctx.queries_used - before
        if outcome is not None:
            return outcome
        if p.ga and not ctx.exhausted and seeds:
            before = ctx.queries_used
            outcome = GeneticSearch(ctx, p, substitutes, seeds).run(facts)
            facts["ga_queries"] = ctx.queries_used - before
            if outcome is not None:
                return outcome
        reason = "budget exhausted" if ctx.exhausted else ("genetic algorithm done" if p.ga and seeds else "greedy done")
        return Outcome.from_evaluated(ctx, ctx.best, reason=reason, stage="ga" if p.ga and seeds else "greedy", **facts)

    def _greedy(self, ctx: AttackContext, ranked: Sequence[str], substitutes: dict[str, list[str]],
                facts: dict) -> tuple[Outcome | None, dict[str, str]]:
        mapping: dict[str, str] = {}
        p_current = ctx.original_true_probability
        seeds: dict[str, str] = {}
        for variable in ranked:
            if ctx.exhausted:
                break
            evaluated = try_names(ctx, variable, substitutes[variable], mapping, limit=self.params.substitutes)
            flip = strongest_flip(ctx, evaluated)
            if flip is not None:
                return Outcome.from_evaluated(ctx, flip, stage="greedy", **facts), seeds
            best = lowest(ctx, evaluated)
            if best is None:
                continue
            seeds[variable] = best.candidate.mapping[variable]
            if best.probs[ctx.true_label] < p_current:
                mapping, p_current = dict(best.candidate.mapping), float(best.probs[ctx.true_label])
        return None, seeds


class GeneticSearch:
    """ALERT's genetic algorithm for one example (see the module docstring)."""

    def __init__(self, ctx: AttackContext, params: ALERTParams, substitutes: dict[str, list[str]],
                 seeds: dict[str, str]) -> None:
        self.ctx, self.params = ctx, params
        self.genes = [v for v in ctx.variables if v in seeds]  # program order: crossover cuts are positional
        self.pool = [substitutes[v] for v in self.genes]
        identity: Chromosome = tuple(self.genes)
        self.population: list[Chromosome] = [identity] + [
            tuple(seeds[v] if j == i else g for j, g in enumerate(self.genes)) for i, v in enumerate(self.genes)]
        self.known: dict[Chromosome, float] = {identity: 0.0}
        self.children_made = 0

    def mapping(self, chromosome: Chromosome) -> dict[str, str]:
        return {old: new for old, new in zip(self.genes, chromosome) if new != old}

    def _evaluate(self, chromosomes: Sequence[Chromosome]) -> tuple[list[Evaluated], bool]:
        """Query the not-yet-known chromosomes (one batch); returns them and whether all were evaluated."""
        fresh = list(dict.fromkeys(c for c in chromosomes if c not in self.known))
        evaluated = self.ctx.query_candidates([self.mapping(c) for c in fresh])
        origin = self.ctx.original_true_probability
        for chromosome, item in zip(fresh, evaluated):
            self.known[chromosome] = origin - float(item.probs[self.ctx.true_label])
        return evaluated, len(evaluated) == len(fresh)

    def run(self, facts: dict) -> Outcome | None:
        from engine.kernels import steady_state_replace  # numba: imported on first use
        ctx, p = self.ctx, self.params
        evaluated, complete = self._evaluate(self.population)
        flip = strongest_flip(ctx, evaluated)
        if flip is not None:
            return Outcome.from_evaluated(ctx, flip, stage="ga", ga_generations=0, ga_children=0, **facts)
        self.population = [c for c in self.population if c in self.known]
        fitness = np.array([self.known[c] for c in self.population])
        generations = max(p.generation_factor * len(self.population), p.min_generations)
        done = 0
        while complete and done < generations:
            children = [self._child(fitness) for _ in range(p.children)]
            self.children_made += len(children)
            evaluated, complete = self._evaluate(children)
            done += 1
            flip = strongest_flip(ctx, evaluated)
            if flip is not None:
                return Outcome.from_evaluated(ctx, flip, stage="ga", ga_generations=done,
                                              ga_children=self.children_made, **facts)
            scored = [c for c in children if c in self.known]
            slots, fitness = steady_state_replace(fitness, [self.known[c] for c in scored])
            for child, slot in zip(scored, slots):
                if slot >= 0:
                    self.population[int(slot)] = child
        facts.update(ga_generations=done, ga_children=self.children_made, ga_generations_planned=generations)
        return None

    # -- variation

    def _parents(self, fitness: np.ndarray, count: int) -> list[int]:
        from engine.kernels import roulette_select, tournament_select  # numba: imported on first use
        rng, size = self.ctx.rng, len(self.population)
        if self.params.selection == "tournament":
            return tournament_select(fitness, rng.integers(0, size, (count, self.params.tournament_size))).tolist()
        if self.params.selection == "roulette":
            return roulette_select(fitness - fitness.min(), rng.random(count)).tolist()
        return rng.integers(0, size, count).tolist()

    def _child(self, fitness: np.ndarray) -> Chromosome:
        rng = self.ctx.rng
        if len(self.genes) > 1 and rng.random() < self.params.crossover:
            first, second = (self.population[i] for i in self._parents(fitness, 2))
            cut = int(rng.integers(0, len(self.genes)))
            child = self._repair(first[:cut] + second[cut:])
            if child != first and child != second:
                return child
            return self._mutate(first)
        (parent,) = (self.population[i] for i in self._parents(fitness, 1))
        return self._mutate(parent)

    def _mutate(self, parent: Chromosome) -> Chromosome:
        rng = self.ctx.rng
        gene = int(rng.integers(0, len(self.genes)))
        variable = self.genes[gene]
        taken = {name for j, name in enumerate(parent) if j != gene}
        options = [name for name in self.pool[gene] if name != parent[gene] and name not in taken]
        if not options:
            return parent
        child = list(parent)
        child[gene] = options[int(rng.integers(0, len(options)))]
        assert child[gene] != variable
        return tuple(child)

    def _repair(self, child: Chromosome) -> Chromosome:
        """No name for two variables: a repeated new name keeps its first variable, later ones revert."""
        seen: set[str] = set()
        fixed = []
        for original, name in zip(self.genes, child):
            if name != original and name in seen:
                name = original
            seen.add(name)
            fixed.append(name)
        return tuple(fixed)


def build_alert(params: ALERTParams, env: AttackEnvironment) -> ALERT:
    if env.natural_substitutes is None:
        raise UserError("alert needs natural substitutes: pass --substitutes DIR|dataset or --mlm DIR")
    return ALERT(params, env.natural_substitutes())


RECIPES = (
    Recipe("alert", "natural substitutes, importance-ordered greedy, then a genetic algorithm (Yang et al. ICSE 2022)",
           ALERTParams, build_alert, "alert", natural_substitutes=True,
           prior=QueryPrior(4009, "Du et al. FSE'23 re-run of ALERT, CodeBERT on GCJ: 4,009 queries per example "
                                  "over 3,842 examples (1,257 on successes)")),
)
