"""Substitute sources that need no model: random identifier-like names, and precomputed tables.

- `RandomNamePool`: the pool of original MHM, WIR-Random and the random baseline. Published
  code drew from the 5,000 most frequent tokens of the *attacked file itself* (MHM) or a GloVe
  vocabulary (WIR-Random); we draw from the renameable identifiers of the dataset's *train*
  split (the style of the language as the dataset writes it) plus names composed from a small
  programming vocabulary in the language's case convention, so the pool never depends on the
  example attacked and never contains type, API or field names by construction. The pool is
  a sorted, deterministic list; sampling uses `ctx.rng` only.
- `PrecomputedSubstitutes`: per-example {variable: [names]} tables, from the dataset's
  `substitutes` field (the Devign files) or loaded from a file.
"""
from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from engine.attacks.base import AttackContext
from engine.code import CodeInputError, extract
from engine.code.languages import spec

# Words programmers put in names; combined pairwise they give thousands of plausible names.
VOCABULARY = (
    "data value item items result res count num index idx key val name names list arr array buf buffer "
    "size len length total sum acc tmp temp node nodes head tail left right start end begin stop first last "
    "prev next cur current new old src dst source target input output in_ out_ line lines text msg message "
    "path file files dir root parent child children elem entry entries record row col cell pos offset step "
    "flag flags state status mode kind type_ info ctx config opts options params args arg param obj inst "
    "self_ other ret out err error code id ids token tokens word words char chars str_ string num_ number "
    "max_ min_ lo hi low high mid top bottom base limit bound width height depth level rank score weight "
    "cost dist time timer count_ counter seen visited queue stack heap map_ table dict_ graph edge edges "
    "vertex point points x y z a b c i j k m n p q r s t u v w"
).split()


def _style(words: Sequence[str], language: str) -> str:
    words = [w.strip("_") for w in words if w.strip("_")]
    if language == "java":
        return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])
    return "_".join(words)


def composed_names(language: str, limit: int = 5000) -> list[str]:
    """Deterministic identifier-like names from `VOCABULARY` in the language's case style."""
    words = sorted({w.strip("_") for w in VOCABULARY if w.strip("_")})
    names = list(words)
    for a, b in itertools.permutations(words, 2):
        if len(names) >= limit:
            break
        if len(a) > 1 and len(b) > 1:
            names.append(_style([a, b], language))
    return names


def training_identifiers(codes: Iterable[str], language: str, limit: int = 5000) -> list[str]:
    """The `limit` most frequent renameable identifiers of `codes` (ties by name); unparseable code is skipped."""
    counts: Counter[str] = Counter()
    for code in codes:
        try:
            ext = extract(code, language)
        except CodeInputError:  # a program the language layer cannot read only loses its names
            continue
        counts.update(list(ext.identifiers))
    return [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


class RandomNamePool:
    """Uniform draws without replacement from a fixed pool of identifier-like names."""

    name = "random-names"

    def __init__(self, names: Iterable[str], language: str) -> None:
        lang = spec(language)
        pool = sorted({n for n in names if lang.identifier_pattern.match(n)
                       and n not in lang.keywords and n not in lang.library_names})
        if not pool:
            raise ValueError("the random-name pool is empty")
        self.names = pool
        self.language = language

    @classmethod
    def for_dataset(cls, dataset, language: str, split: str = "train", limit: int = 5000) -> RandomNamePool:
        """Train-split identifiers (at most `limit`, most frequent first) plus composed vocabulary names."""
        codes: list[str] = []
        for example in dataset.split(split) if split in dataset.splits else []:
            codes.extend(example.code if isinstance(example.code, tuple) else [example.code])
        return cls(training_identifiers(codes, language, limit) + composed_names(language, limit), language)

    def candidates(self, ctx: AttackContext, variable: str, n: int) -> list[str]:
        """Up to `n` distinct names passing `ctx.name_ok`, drawn uniformly with `ctx.rng`."""
        return sample_names(ctx, variable, self.names, n)

    def describe(self) -> dict:
        return {"source": self.name, "pool_size": len(self.names)}


def sample_names(ctx: AttackContext, variable: str, pool: Sequence[str], n: int) -> list[str]:
    """Up to `n` distinct admissible-by-name draws from `pool` (uniform, without replacement)."""
    if n <= 0 or not pool:
        return []
    kept: list[str] = []
    order = ctx.rng.permutation(len(pool))
    for index in order:
        name = pool[int(index)]
        if ctx.name_ok(variable, name) is None:
            kept.append(name)
            if len(kept) == n:
                break
    return kept


class PrecomputedSubstitutes:
    """Per-example substitutes: `table[example_id][variable]`, or the example's `meta["substitutes"]`.

    Names are stripped (ALERT's files keep a leading space), de-duplicated in order, filtered by
    `ctx.name_ok`, and cut to `n` (the stored order is kept: the producer's ranking).
    """

    name = "precomputed"

    def __init__(self, table: Mapping[str, Mapping[str, Sequence[str]]] | None = None, label: str = "dataset") -> None:
        self.table = table
        self.label = label

    def lookup(self, ctx: AttackContext) -> Mapping[str, Sequence[str]]:
        if self.table is None:
            return ctx.example.meta.get("substitutes") or {}
        return self.table.get(str(ctx.example.id)) or {}

    def candidates(self, ctx: AttackContext, variable: str, n: int) -> list[str]:
        names = self.lookup(ctx).get(variable) or []
        kept: list[str] = []
        for name in dict.fromkeys(str(x).strip() for x in names):
            if ctx.name_ok(variable, name) is None:
                kept.append(name)
                if len(kept) == n:
                    break
        return kept

    def describe(self) -> dict:
        return {"source": self.name, "from": self.label}
