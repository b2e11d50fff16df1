"""Which variables matter to the victim: the word-importance ranking of ALERT and WIR-Random.

For every occurrence of every renameable variable, the program with that one occurrence
replaced by a placeholder is queried (all in ONE batch, charged to the example's budget as
`probe` queries: they are never adversarial candidates). An occurrence's score is the drop in
true-label probability, `p_y(original) - p_y(masked)`; a variable's score is the *sum* over its
occurrences (ALERT's definition, so frequent names rank higher); ties keep program order. The sum and sort
run in `engine.kernels.rank_importance`. `mode="variable"` masks all
occurrences of a variable at once instead (one query per variable).

The placeholder is the victim tokenizer's unknown token (`<unk>`), else its mask token, else
`PLACEHOLDER` for victims without a tokenizer (test stand-ins).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.attacks.base import AttackContext

PLACEHOLDER = "_"
MODES = ("occurrence", "variable")


@dataclass
class Importance:
    """Variables most important first, their scores, and what the ranking cost."""

    ranked: list[str]
    scores: dict[str, float]
    queries: int
    complete: bool  # False when the budget ran out before every probe was queried (missing scores are 0)


def placeholder_for(victim) -> str:
    tokenizer = getattr(victim, "tokenizer", None)
    for attribute in ("unk_token", "mask_token"):
        token = getattr(tokenizer, attribute, None) if tokenizer is not None else None
        if token:
            return str(token)
    return PLACEHOLDER


def masked_programs(ctx: AttackContext, placeholder: str, mode: str = "occurrence") -> tuple[list[str], np.ndarray]:
    """The probe programs and, for each, the index (in `ctx.variables`) of the variable it masks."""
    if mode not in MODES:
        raise ValueError(f"importance mode {mode!r}: use one of {', '.join(MODES)}")
    index = {name: i for i, name in enumerate(ctx.variables)}
    if mode == "variable":
        return [ctx.renamer.apply({name: placeholder}) for name in ctx.variables], np.arange(len(ctx.variables))
    text = ctx.renamer.text
    programs, owners = [], []
    for start, end, name in ctx.renamer.spans:
        if name not in index or ctx.hidden_from is not None and start >= ctx.hidden_from:
            continue  # past the model's window: masking it changes nothing the model reads
        programs.append(text[:start] + placeholder + text[end:])
        owners.append(index[name])
    return programs, np.asarray(owners, dtype=np.int64)


def rank_variables(ctx: AttackContext, mode: str = "occurrence", placeholder: str | None = None) -> Importance:
    """Rank `ctx.variables` by importance (see the module docstring); costs one query per probe."""
    from engine.kernels import rank_importance  # numba: imported when first needed

    placeholder = placeholder or placeholder_for(ctx.victim)
    programs, owners = masked_programs(ctx, placeholder, mode)
    before = ctx.queries_used
    rows = ctx.query(programs, probe=True) if ctx.remaining != 0 else np.zeros((0, 1))
    drops = ctx.original_true_probability - rows[:, ctx.true_label] if len(rows) else np.zeros(0)
    order, scores = rank_importance(drops, owners[: len(drops)], len(ctx.variables))
    return Importance(
        ranked=[ctx.variables[i] for i in order],
        scores={ctx.variables[i]: float(scores[i]) for i in range(len(ctx.variables))},
        queries=ctx.queries_used - before,
        complete=len(rows) == len(programs),
    )
