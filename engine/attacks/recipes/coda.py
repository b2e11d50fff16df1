"""CODA (Tian et al., ASE 2023): learn from reference programs of other labels.

Run-level preparation (once per run, not charged to any example's budget; its cost is printed
and kept in the run's extras as `reference_queries`):

- **References**: the train-split programs the victim classifies correctly (at most
  `reference_limit`, drawn by seed), with their renameable identifiers and their rewrite
  style (`engine.code.rewrites.style_counts`);
- **Embeddings**: one pooled vector per reference (`Victim.embed`: the mean of the victim
  encoder's last hidden states over the program with its renameable identifiers replaced by
  the placeholder of `importance.placeholder_for`, the unknown token, as CODA did with
  CodeBERT), batched and counted by the victim, and stored as one float16 `.npy` matrix plus an
  id index in the cache (`<cache>/coda/<key>/`), never one file per program. The victim must
  have an encoder (`embed`); there is no fallback.

Per example:

1. **Reference pool**: for each other label, in descending order of the example's predicted
   probability, its references in an order drawn from the example's RNG that have at least as
   many variables as the target, up to `references`; the `top_references` most similar by
   cosine (`kernels.cosine_topk`) to the target's embedding (`ctx.embed`: one query, charged
   to the example's budget) are kept.
2. **Structure rewrites** (`structure_variants` programs): each rewritable site of the target is
   rewritten with the probability that the kept references use the target form (CODA's rule,
   `rewrites.style_probabilities`), on the syntax tree; variants that re-parse with new errors
   (or no longer compile, for Python) or repeat are dropped. One batch; a flip ends the attack
   (`structure_edits` > 0). Otherwise the lowest-probability variant, if below the original,
   becomes the base for step 3.
3. **Renames**: the kept references' identifier names are the candidates, ranked per target
   variable by name similarity (cosine of hashed character-trigram vectors; CODA's fastText
   model was never released). For rank `i` in `0..rename_ranks-1` the variables are renamed
   one at a time, cumulatively, to their `i`-th candidate (or the next admissible one below it
   when another variable already took it; CODA skipped the variable), and every intermediate
   program is a candidate: all in ONE batch.

An example costs at most CODA's fixed `1 + structure_variants + rename_ranks × |V|` plus the one
embedding query of the target, all counted and bounded by `--budget`.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.attacks.base import AttackContext, AttackEnvironment, Candidate, Outcome, lowest, strongest_flip
from engine.attacks.importance import placeholder_for
from engine.attacks.recipe import ASSUMED_VARIABLES, QueryPrior, Recipe, positive
from engine.code import CodeInputError, Renamer, extract
from engine.code.rewrites import apply_sampled, check_rewrite, style_counts, style_probabilities
from engine.splice import EditedCode

HASH_DIMS = 256


@dataclass
class CODAParams:
    references: int = field(default=256, metadata={"help": "reference programs of other labels considered per example"})
    top_references: int = field(default=64, metadata={"help": "most similar references kept"})
    structure_variants: int = field(default=64, metadata={"help": "structure-rewritten variants queried (stage 1)"})
    rename_ranks: int = field(default=64, metadata={"help": "candidate names per variable, by name similarity (stage 2)"})
    reference_limit: int = field(default=0, metadata={"help": "train programs embedded as references (0: all)"})
    structure: bool = field(default=True, metadata={"help": "run stage 1 (structure rewrites)"})

    def check(self) -> None:
        positive(self, "coda", "references", "top_references", "structure_variants", "rename_ranks")


# --------------------------------------------------------------------------- references


@dataclass
class References:
    """The run's reference programs: parallel lists plus one float16 embedding matrix."""

    ids: list[str]
    labels: np.ndarray
    variables: list[list[str]]
    styles: list[dict[str, int]]
    embeddings: np.ndarray  # float16, references × dims
    queries: int = 0  # victim queries spent classifying and embedding the train programs
    from_cache: bool = False


def _masked_text(code: str, language: str, placeholder: str) -> tuple[str, list[str]]:
    try:
        extraction = extract(code, language)
    except CodeInputError:
        return code, []
    return Renamer(extraction).apply({name: placeholder for name in extraction.identifiers}), list(extraction.identifiers)


def build_references(env: AttackEnvironment, params: CODAParams, cache_dir: Path | None = None) -> References:
    """Correctly classified train programs, their identifiers, styles and pooled embeddings (cached when possible)."""
    dataset, victim = env.dataset, env.victim
    train = [e for e in dataset.splits.get("train", []) if not e.is_pair]
    if params.reference_limit and len(train) > params.reference_limit:
        picked = np.random.default_rng(env.seed).choice(len(train), params.reference_limit, replace=False)
        train = [train[int(i)] for i in sorted(picked)]
    fingerprint = ((getattr(victim, "manifest", None) or {}).get("fingerprint"))
    key = None
    if cache_dir is not None and fingerprint:
        key = hashlib.sha256(json.dumps([fingerprint, dataset.fingerprint, [e.id for e in train], 2]).encode()).hexdigest()[:16]
        cached = _read_cache(cache_dir / key)
        if cached is not None:
            return cached
    started = time.perf_counter()
    before = victim.counters().queries
    probs = victim.predict_proba([e.code for e in train]) if train else np.zeros((0, 2))
    kept = [e for e, row in zip(train, probs) if int(np.argmax(row)) == e.label]
    placeholder = placeholder_for(victim)
    masked, variables, styles = [], [], []
    for example in kept:
        text, names = _masked_text(example.code, example.language, placeholder)
        masked.append(text)
        variables.append(names)
        try:
            styles.append(style_counts(example.code, example.language))
        except CodeInputError:
            styles.append({})
    embeddings = victim.embed(masked).astype(np.float16)
    queries = victim.counters().queries - before
    references = References([str(e.id) for e in kept], np.array([e.label for e in kept], dtype=np.int64), variables,
                            styles, embeddings, queries)
    print(f"coda: {len(kept)} of {len(train)} train programs are correctly classified references "
          f"({queries} victim queries, embeddings included; {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    if key is not None:
        _write_cache(cache_dir / key, references)
    return references


def _write_cache(directory: Path, references: References) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "embeddings.npy", references.embeddings)
    with open(directory / "references.jsonl", "w", encoding="utf-8") as handle:
        for i, ref_id in enumerate(references.ids):
            handle.write(json.dumps({"id": ref_id, "label": int(references.labels[i]),
                                     "variables": references.variables[i], "style": references.styles[i]}) + "\n")


def _read_cache(directory: Path) -> References | None:
    try:
        embeddings = np.load(directory / "embeddings.npy")
        rows = [json.loads(line) for line in (directory / "references.jsonl").read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError):
        return None
    if len(rows) != len(embeddings):
        return None
    return References([r["id"] for r in rows], np.array([r["label"] for r in rows], dtype=np.int64),
                      [r["variables"] for r in rows], [r["style"] for r in rows], embeddings, 0, True)


# --------------------------------------------------------------------------- name similarity


def trigram_vectors(names: Sequence[str], dims: int = HASH_DIMS) -> np.ndarray:
    """Hashed character-trigram counts of `^name$` (lower-cased): a spelling-similarity embedding."""
    out = np.zeros((len(names), dims), dtype=np.float32)
    for row, name in enumerate(names):
        padded = f"^{name.lower()}$"
        for i in range(len(padded) - 2):
            bucket = int.from_bytes(hashlib.blake2b(padded[i:i + 3].encode(), digest_size=4).digest(), "little") % dims
            out[row, bucket] += 1.0
    return out


# --------------------------------------------------------------------------- the search


class CODA:
    name = "coda"

    def __init__(self, params: CODAParams, references: References) -> None:
        self.params = params
        self.refs = references
        self._unit = references.embeddings.astype(np.float32)

    def attack(self, ctx: AttackContext) -> Outcome:
        p = self.params
        chosen = self._references(ctx)
        facts = {"references_considered": len(chosen[0]), "references_kept": len(chosen[1])}
        if not chosen[1]:
            return Outcome(False, {}, None, None, reason="no reference program of another label", extras=facts)
        kept = chosen[1]
        base_code, base_edits = ctx.code, 0
        if p.structure:
            counts: Counter[str] = Counter()
            for i in kept:
                counts.update(self.refs.styles[i])
            variants = self._variants(ctx, style_probabilities(dict(counts)))
            facts["structure_variants"] = len(variants)
            evaluated = ctx.query_candidates(variants)
            flip = strongest_flip(ctx, evaluated)
            if flip is not None:
                return Outcome.from_evaluated(ctx, flip, stage="structure", **facts)
            best = lowest(ctx, evaluated)
            if best is not None and best.probs[ctx.true_label] < ctx.original_true_probability:
                base_code, base_edits = best.candidate.code, best.candidate.structure_edits
            if ctx.exhausted:
                return Outcome.from_evaluated(ctx, ctx.best, reason="budget exhausted", stage="structure", **facts)
        candidates = self._renames(ctx, kept, base_code, base_edits)
        facts["rename_candidates"] = len(candidates)
        evaluated = ctx.query_candidates(candidates)
        flip = strongest_flip(ctx, evaluated)
        if flip is not None:
            return Outcome.from_evaluated(ctx, flip, stage="rename", **facts)
        reason = "budget exhausted" if ctx.exhausted else "every candidate tried"
        return Outcome.from_evaluated(ctx, ctx.best, reason=reason, stage="rename", **facts)

    def _references(self, ctx: AttackContext) -> tuple[list[int], list[int]]:
        from engine.kernels import cosine_topk  # numba: imported on first use
        p = self.params
        need = len(ctx.variables)
        order = [label for label in np.argsort(-ctx.original_probs, kind="stable") if label != ctx.true_label]
        pool: list[int] = []
        for label in order:
            members = np.flatnonzero(self.refs.labels == label)
            for i in ctx.rng.permutation(members):
                if len(self.refs.variables[int(i)]) >= need:
                    pool.append(int(i))
                    if len(pool) == p.references:
                        break
            if len(pool) == p.references:
                break
        if not pool:
            return [], []
        placeholder = placeholder_for(ctx.victim)
        target = ctx.embed([ctx.renamer.apply({v: placeholder for v in ctx.variables})])[0]
        top, _ = cosine_topk(self._unit[pool], target, p.top_references)
        return pool, [pool[int(i)] for i in top]

    def _variants(self, ctx: AttackContext, probabilities: dict[str, float]) -> list[Candidate]:
        seen = {ctx.code}
        variants = []
        for _ in range(self.params.structure_variants):
            code, applied = apply_sampled(ctx.code, ctx.language, probabilities, lambda: float(ctx.rng.random()))
            if code in seen or not applied:
                continue
            seen.add(code)
            if check_rewrite(ctx.code, code, ctx.language).ok:
                variants.append(Candidate(code=code, mapping={}, structure_edits=len(applied),
                                          extras={"rewrites": sorted({s.kind for s in applied})}))
        return variants

    def _renames(self, ctx: AttackContext, kept: list[int], base_code: str, base_edits: int) -> list[Candidate]:
        from engine.kernels import cosine_topk  # numba: imported on first use
        names = sorted({n for i in kept for n in self.refs.variables[i]})
        if not names or not ctx.variables:
            return []
        ranks = min(self.params.rename_ranks, len(names))
        vectors = trigram_vectors(names)
        ranked: dict[str, list[str]] = {}
        for variable, query in zip(ctx.variables, trigram_vectors(ctx.variables)):
            top, _ = cosine_topk(vectors, query, len(names))
            ranked[variable] = [n for n in (names[int(i)] for i in top) if ctx.name_ok(variable, n) is None][:ranks]
        renamer = ctx.renamer if base_edits == 0 else Renamer(extract(base_code, ctx.language))
        candidates, seen = [], set()
        for rank in range(ranks):
            mapping: dict[str, str] = {}
            for variable in ctx.variables:
                if variable not in renamer.extraction.identifiers:
                    continue
                # the rank-th name, or the next one down when another variable already took it
                name = next((n for n in ranked[variable][rank:] if ctx.admissible(variable, n, mapping) is None), None)
                if name is None:
                    continue
                mapping[variable] = name
                key = tuple(sorted(mapping.items()))
                if key in seen:
                    continue
                seen.add(key)
                candidates.append(Candidate(code=EditedCode(renamer.text, renamer.edits(mapping)), mapping=dict(mapping),
                                            structure_edits=base_edits,
                                            extras={"rewritten": base_code} if base_edits else {}))
        return candidates


def build_coda(params: CODAParams, env: AttackEnvironment) -> CODA:
    from engine.datasets.registry import cache_root

    return CODA(params, build_references(env, params, cache_root() / "coda"))


RECIPES = (
    Recipe("coda", "reference programs: structure rewrites, then renames to their names (Tian et al. ASE 2023)",
           CODAParams, build_coda, "coda",
           prior=QueryPrior(2 + 64 + 64 * ASSUMED_VARIABLES,
                            "CODA's fixed query count 1 + 64 + 64·(V+F) (Tian et al. ASE'23) plus our one embedding "
                            "pass of the target, V+F = 10 assumed")),
)
