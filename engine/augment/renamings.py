"""Random alpha-equivalent renamings of programs, through the language layer.

`Renamings` renames a random share of a program's renameable variables (locals and parameters,
`engine.code.extract`) to names drawn from a pool: the attacks' `RandomNamePool` (the dataset's
own train-split identifiers plus composed programming names), so the renamed programs look like
the programs an attacker writes without being tied to one attack. Every rename is validated
(`engine.code.validate`: valid identifier, no keyword or library name, no collision) and the
renamed program is checked alpha-equivalent to the original (`engine.code.check_rename`); a
program that fails the check is not returned, and the failure is counted (`stats`), never hidden.

Draws depend only on (seed, epoch, example id), never on order: a resumed training run sees the
renamings it would have seen, and shards of `engine augment` agree with an unsharded run.

`RandomRenaming` is the same renaming as an attack search (`engine augment --attack random`):
one renaming per example, queried once, so the runner records it like any attack.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.code import CodeInputError, Renamer, check_rename, extract
from engine.attacks.base import example_rng
from engine.code.rename import pair_rejection

Code = str | tuple[str, str]
_TRIES = 64  # name draws per variable before giving it up (the pool is thousands of names)


@dataclass
class RenamingStats:
    """What happened to the renamings asked for: made, nothing to rename, unreadable, failed the check."""

    made: int = 0
    no_identifiers: int = 0
    unreadable: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"made": self.made, "no_identifiers": self.no_identifiers, "unreadable": self.unreadable,
                "rejected_by_check": self.rejected, "first_rejections": self.reasons[:5]}


class Renamings:
    """Random renamings of programs in one language, names drawn from `names` (see the module docstring).

    `share` is the probability that each variable is renamed (at least one always is).
    """

    def __init__(self, names: Iterable[str], language: str, *, share: float = 1.0, check: bool = True) -> None:
        from engine.attacks.sources import RandomNamePool

        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.pool = RandomNamePool(names, language).names
        self.language = language
        self.share = share
        self.check = check
        self.stats = RenamingStats()
        self._parsed: dict[str, tuple[Any, Renamer] | None] = {}

    @classmethod
    def for_dataset(cls, dataset, *, share: float = 1.0) -> Renamings:
        """Names from the dataset's train split and the composed vocabulary (the attacks' random pool)."""
        from engine.attacks.sources import RandomNamePool

        pool = RandomNamePool.for_dataset(dataset, dataset.language)
        return cls(pool.names, dataset.language, share=share)

    def describe(self) -> dict[str, Any]:
        return {"pool_size": len(self.pool), "share": self.share, "checked": self.check}

    def _parse(self, code: str):
        if code not in self._parsed:
            try:
                extraction = extract(code, self.language)
                self._parsed[code] = (extraction, Renamer(extraction)) if extraction.identifiers else None
                if not extraction.identifiers:
                    self.stats.no_identifiers += 1
            except CodeInputError:
                self._parsed[code] = None
                self.stats.unreadable += 1
        return self._parsed[code]

    def mapping(self, code: str, rng: np.random.Generator) -> dict[str, str] | None:
        """A valid random rename map for `code` (None: nothing renameable)."""
        parsed = self._parse(code)
        if parsed is None:
            return None
        extraction, _ = parsed
        variables = list(extraction.identifiers)
        chosen = [name for name in variables if rng.random() < self.share] or [variables[int(rng.integers(len(variables)))]]
        mapping: dict[str, str] = {}
        taken: set[str] = set()
        for variable in chosen:
            for _ in range(_TRIES):
                new = self.pool[int(rng.integers(len(self.pool)))]
                if new not in taken and pair_rejection(extraction, variable, new) is None:
                    mapping[variable] = new
                    taken.add(new)
                    break
        return mapping or None

    def rename(self, code: str, rng: np.random.Generator) -> tuple[str, dict[str, str]] | None:
        """(renamed program, rename map), alpha-equivalent to `code`; None when there is none to give."""
        mapping = self.mapping(code, rng)
        if mapping is None:
            return None
        extraction, renamer = self._parsed[code]
        renamed = renamer.apply(mapping)
        if self.check:
            result = check_rename(extraction, renamed, mapping)
            if not (result.alpha_equivalent and result.parses):
                self.stats.rejected += 1
                self.stats.reasons.append("; ".join(result.reasons))
                return None
        self.stats.made += 1
        return renamed, mapping

    def rename_input(self, code: Code, rng: np.random.Generator) -> Code | None:
        """A renamed model input: a program, or a pair with each side renamed on its own."""
        if isinstance(code, tuple):
            sides = [self.rename(side, rng) for side in code]
            if all(side is None for side in sides):
                return None
            return tuple(side[0] if side else original for side, original in zip(sides, code))  # type: ignore[return-value]
        found = self.rename(code, rng)
        return found[0] if found else None

    def views(self, codes: Sequence[Code], ids: Sequence[str], *, seed: int, epoch: int, per_example: int
              ) -> list[tuple[int, Code]]:
        """(input index, renamed input) for `per_example` fresh renamings of each input, drawn for `epoch`."""
        found: list[tuple[int, Code]] = []
        for index, (code, identifier) in enumerate(zip(codes, ids)):
            rng = example_rng(seed, "epoch", epoch, identifier)
            for _ in range(per_example):
                renamed = self.rename_input(code, rng)
                if renamed is not None and renamed != code:
                    found.append((index, renamed))
        return found


class RandomRenaming:
    """A search for the attack runner: one random renaming of the example, queried once (no guidance)."""

    name = "random-renaming"

    def __init__(self, renamings: Renamings) -> None:
        self.renamings = renamings

    def attack(self, ctx):
        from engine.attacks.base import Outcome

        mapping = self.renamings.mapping(ctx.code, ctx.rng)
        mapping = {old: new for old, new in (mapping or {}).items() if old in ctx.variables}
        if not mapping:
            return Outcome(False, {}, None, None, reason="no admissible random name")
        evaluated = ctx.query_candidates([mapping])
        if not evaluated:
            return Outcome(False, {}, None, None, reason="budget exhausted")
        return Outcome.from_evaluated(ctx, evaluated[0], reason="one random renaming, label kept")
