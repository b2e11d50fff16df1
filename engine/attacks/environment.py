"""Build the run-level `AttackEnvironment`: the random-name pool and the natural-substitute source.

Both sources are built lazily (once, on first use), so a recipe that does not need one costs
nothing. Natural substitutes come from, in order: `--substitutes dataset` (each example's
`meta["substitutes"]`), `--substitutes PATH` (a cache written by `engine substitutes`), or the
masked LM of `--mlm` (`engine.attacks.substitutes.OnDemandMLM`).
"""
from __future__ import annotations

from functools import lru_cache

from engine.attacks.base import AttackEnvironment, SubstituteSource
from engine.attacks.sources import PrecomputedSubstitutes, RandomNamePool
from engine.attacks.substitutes import OnDemandMLM, load_substitutes, natural_source
from engine.errors import UserError


def make_environment(dataset, victim, *, seed: int = 0, split: str = "test", substitutes: str | None = None,
                     mlm: OnDemandMLM | None = None, name_pool: SubstituteSource | None = None,
                     natural: SubstituteSource | None = None) -> AttackEnvironment:
    """`natural` (tests, benchmarks) replaces the natural-substitute source that `substitutes`/`mlm` would build."""
    env = AttackEnvironment(dataset=dataset, victim=victim, language=dataset.language, seed=seed, split=split,
                            substitutes=substitutes)

    @lru_cache(maxsize=1)
    def pool() -> SubstituteSource:
        return name_pool or RandomNamePool.for_dataset(dataset, dataset.language)

    @lru_cache(maxsize=1)
    def natural_substitutes() -> SubstituteSource:
        if natural is not None:
            return natural
        if substitutes == "dataset":
            if not any(e.meta.get("substitutes") for e in dataset.split(split)[:50]):
                raise UserError(f"--substitutes dataset: the {split} examples of {dataset.name} have no `substitutes` "
                                "field; run `engine substitutes` or drop the option")
            return PrecomputedSubstitutes()
        if substitutes:
            return load_substitutes(substitutes, split=split)
        return natural_source(dataset, split, mlm)

    env.name_pool = pool
    env.natural_substitutes = natural_substitutes
    return env
