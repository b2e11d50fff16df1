"""The greedy pass shared by WIR-Random (and usable by ALERT): one variable at a time, in a given order."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.attacks.base import AttackContext, Evaluated, Outcome, SubstituteSource, lowest, strongest_flip, try_names


def greedy_pass(ctx: AttackContext, order: Sequence[str], source: SubstituteSource, n: int,
                mapping: dict[str, str] | None = None, **extras: Any) -> Outcome:
    """For each variable in `order`: query `n` names from `source` on top of the committed renames
    (one batch); stop on a flip; else commit the best name if it lowers the true-label probability.

    Returns the flip, or (failure) the program with every committed rename (None when nothing was
    committed). `extras` are passed through to the outcome.
    """
    mapping = dict(mapping or {})
    current: Evaluated | None = None
    p_current = ctx.original_true_probability
    for variable in order:
        if ctx.exhausted:
            break
        evaluated = try_names(ctx, variable, source.candidates(ctx, variable, n + len(mapping)), mapping, limit=n)
        flip = strongest_flip(ctx, evaluated)
        if flip is not None:
            return Outcome.from_evaluated(ctx, flip, **extras)
        best = lowest(ctx, evaluated)
        if best is not None and best.probs[ctx.true_label] < p_current:
            current, p_current, mapping = best, float(best.probs[ctx.true_label]), dict(best.candidate.mapping)
    reason = "budget exhausted" if ctx.exhausted else "every variable tried"
    return Outcome.from_evaluated(ctx, current, reason=reason if current is not None else f"{reason}; no rename lowered the probability",
                                  **extras)
