"""MHM (Zhang et al., AAAI 2020): Metropolis-Hastings sampling over identifier renames.

Each iteration picks one renameable variable uniformly at random, proposes `candidates` new
names for it from the substitute source, queries all of them (on top of the current renames)
in ONE batch, and stops on a label flip (the flip with the lowest true-label probability is
returned). Otherwise the candidate `c*` with the lowest true-label probability `p_y` is
proposed as the next state and accepted by the Metropolis-Hastings rule

    alpha = (1 - p_y(c*) + eps) / (1 - p_y(current) + eps)
    accept  iff  alpha >= threshold  and  u <= alpha,   u ~ U(0, 1) from the example's RNG

so the accepted program is exactly the candidate whose ratio was computed (the published code
accepted the last candidate of the batch instead). `threshold` defaults to original MHM's
0.95; ALERT's MHM baselines passed 1, which turns the chain into a greedy walk — use
`--mhm-threshold 1` to reproduce that.

Variants: `mhm` draws names from the random identifier-like pool (`sources.RandomNamePool`),
`mhm-ns` from natural substitutes (masked LM or precomputed). Variables are tracked by their
original names, so the rename map is always {original: current}.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.attacks.base import (AttackContext, AttackEnvironment, Outcome, SubstituteSource, lowest,
                                 strongest_flip, try_names)
from engine.attacks.recipe import QueryPrior, Recipe, positive
from engine.errors import UserError

EPSILON = 1e-7


@dataclass
class MHMParams:
    iterations: int = field(default=100, metadata={"help": "Metropolis-Hastings iterations"})
    candidates: int = field(default=30, metadata={"help": "candidate names proposed (and queried) per iteration"})
    threshold: float = field(default=0.95, metadata={
        "help": "reject a proposal whose acceptance ratio alpha is below this; otherwise accept with "
                "probability min(1, alpha); 1 = ALERT's baseline setting (a greedy walk)"})

    def check(self) -> None:
        positive(self, "mhm", "iterations", "candidates")
        if self.threshold < 0:
            raise UserError(f"--mhm-threshold must be ≥ 0, got {self.threshold}")


def accept(alpha: float, threshold: float, u: float) -> bool:
    """The MH acceptance rule with its threshold (see the module docstring)."""
    return alpha >= threshold and u <= alpha


def acceptance_ratio(p_candidate: float, p_current: float) -> float:
    return (1.0 - p_candidate + EPSILON) / (1.0 - p_current + EPSILON)


class MHM:
    def __init__(self, params: MHMParams, source: SubstituteSource, name: str = "mhm") -> None:
        self.params = params
        self.source = source
        self.name = name

    def attack(self, ctx: AttackContext) -> Outcome:
        p = self.params
        mapping: dict[str, str] = {}
        current = None  # Evaluated of the current state (None: the original)
        p_current = ctx.original_true_probability
        accepted = rejected = empty = 0
        for iteration in range(p.iterations):
            variable = ctx.variables[int(ctx.rng.integers(len(ctx.variables)))]
            names = self.source.candidates(ctx, variable, p.candidates + len(mapping) + 1)
            evaluated = try_names(ctx, variable, names, mapping, limit=p.candidates)
            u = float(ctx.rng.random())  # drawn every iteration: the stream does not depend on outcomes
            if not evaluated:
                empty += 1
                if ctx.exhausted:
                    break
                continue
            flip = strongest_flip(ctx, evaluated)
            if flip is not None:
                return Outcome.from_evaluated(ctx, flip, iterations=iteration + 1, accepted=accepted,
                                              rejected=rejected, empty_proposals=empty)
            proposal = lowest(ctx, evaluated)
            p_proposal = float(proposal.probs[ctx.true_label])
            if accept(acceptance_ratio(p_proposal, p_current), p.threshold, u):
                mapping, current, p_current = dict(proposal.candidate.mapping), proposal, p_proposal
                accepted += 1
            else:
                rejected += 1
            if ctx.exhausted:
                break
        reason = "budget exhausted" if ctx.exhausted else "iterations done"
        return Outcome.from_evaluated(ctx, current, reason=reason if current is not None else
                                      f"{reason}; no proposal accepted", iterations=iteration + 1,
                                      accepted=accepted, rejected=rejected, empty_proposals=empty)


def build_mhm(params: MHMParams, env: AttackEnvironment) -> MHM:
    return MHM(params, env.name_pool(), "mhm")


def build_mhm_ns(params: MHMParams, env: AttackEnvironment) -> MHM:
    return MHM(params, env.natural_substitutes(), "mhm-ns")


RECIPES = (
    Recipe("mhm", "Metropolis-Hastings over renames, random identifier-like names (Zhang et al. AAAI 2020)",
           MHMParams, build_mhm, "mhm",
           prior=QueryPrior(713, "no published mean for MHM; MHM-NS's 713 on one Devign example (ALERT's README)")),
    Recipe("mhm-ns", "MHM with natural (masked-LM or precomputed) substitutes (ALERT's MHM-NS)",
           MHMParams, build_mhm_ns, "mhm", natural_substitutes=True,
           prior=QueryPrior(713, "ALERT's README: MHM-NS on one Devign example, 713 queries (ALERT 148 on it)")),
)
