"""Build the run-level `AttackEnvironment`: the random-name pool and the natural-substitute source.

Both sources are built lazily (once, on first use), so a recipe that does not need one costs
nothing. Natural substitutes come from, in order: `--substitutes dataset` (each example's
`meta["substitutes"]`), `--substitutes PATH` (a cache written by `engine substitutes`), or the
masked-LM source of `engine.attacks.substitutes`.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import import_module
from typing import Any

from engine.attacks.base import AttackEnvironment, SubstituteSource
from engine.attacks.sources import PrecomputedSubstitutes, RandomNamePool
from engine.errors import UserError


def make_environment(dataset, victim, *, seed: int = 0, split: str = "test", substitutes: str | None = None,
                     options: Any = None, name_pool: SubstituteSource | None = None) -> AttackEnvironment:
    env = AttackEnvironment(dataset=dataset, victim=victim, language=dataset.language, seed=seed, split=split,
                            substitutes=substitutes, options=options)

    @lru_cache(maxsize=1)
    def pool() -> SubstituteSource:
        return name_pool or RandomNamePool.for_dataset(dataset, dataset.language)

    @lru_cache(maxsize=1)
    def natural() -> SubstituteSource:
        if substitutes == "dataset":
            if not any(e.meta.get("substitutes") for e in dataset.split(split)[:50]):
                raise UserError(f"--substitutes dataset: the {split} examples of {dataset.name} have no `substitutes` "
                                "field; run `engine substitutes` or drop the option")
            return PrecomputedSubstitutes()
        try:
            module = import_module("engine.attacks.substitutes")
        except ImportError:
            raise UserError("natural substitutes need `--substitutes dataset|PATH` (the masked-LM source is not "
                            "installed)") from None
        if substitutes:
            return module.load_substitutes(substitutes, split=split)
        return module.natural_source(env)

    env.name_pool = pool
    env.natural_substitutes = natural
    return env
