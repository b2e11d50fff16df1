"""numba kernels for the attacks' numeric inner loops, each next to its NumPy/Python reference.

Every kernel `name` has a reference `name_reference` with the same signature and the same
result (the tests in `tests/test_kernels.py` check that they agree on random inputs;
`bench/kernels.py` prints how much faster each kernel is). The public function validates and
converts its inputs once (fixed dtypes, so numba compiles one specialisation per kernel) and
then calls the compiled loop.

- `token_edit_distance(a, b)`: Levenshtein distance between two token-id sequences (the
  token change count of an adversarial example);
- `cosine_topk(embeddings, reference, k)` and `grouped_cosine_topk(embeddings, offsets,
  references, k)`: the `k` rows most similar to a reference by cosine (ALERT keeps the 30 of
  60 masked-LM proposals whose contextual embedding is closest to the original's; the grouped
  form does every variable of a batch in one call);
- `rank_importance(drops, owner, n_owners)`: per-variable summed drops and the variables in
  descending order, ties broken by variable index (stable);
- `tournament_select(fitness, contenders)`, `roulette_select(weights, uniforms)` and
  `steady_state_replace(population_fitness, child_fitness)`: parent and survivor selection of
  the genetic algorithm. The random numbers are drawn by the caller (one seeded
  `numpy.random.Generator`), so a kernel and its reference pick the same individuals.

Ties everywhere go to the lower index, so results never depend on a sort's stability.
Kernels are compiled with `cache=True`: the first call in a fresh environment compiles (about
a second each), later processes load the machine code from `__pycache__`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "cosine_topk",
    "cosine_topk_reference",
    "grouped_cosine_topk",
    "grouped_cosine_topk_reference",
    "rank_importance",
    "rank_importance_reference",
    "roulette_select",
    "roulette_select_reference",
    "steady_state_replace",
    "steady_state_replace_reference",
    "token_edit_distance",
    "token_edit_distance_reference",
    "tournament_select",
    "tournament_select_reference",
]

_JIT = dict(cache=True, nogil=True)


def _ids(values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of token ids, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"token ids must be integers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64)


# --------------------------------------------------------------------------- edit distance


@njit(**_JIT)
def _edit_distance(a, b):
    n, m = a.shape[0], b.shape[0]
    if n == 0:
        return m
    if m == 0:
        return n
    if n < m:  # keep the row over the shorter sequence
        a, b = b, a
        n, m = m, n
    previous = np.arange(m + 1, dtype=np.int64)
    current = np.empty(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        current[0] = i
        ai = a[i - 1]
        for j in range(1, m + 1):
            cost = 0 if ai == b[j - 1] else 1
            best = previous[j - 1] + cost
            if previous[j] + 1 < best:
                best = previous[j] + 1
            if current[j - 1] + 1 < best:
                best = current[j - 1] + 1
            current[j] = best
        previous, current = current, previous
    return previous[m]


def token_edit_distance(a, b) -> int:
    """Levenshtein distance (insertions, deletions, substitutions of one token each) between id sequences."""
    return int(_edit_distance(_ids(a), _ids(b)))


def token_edit_distance_reference(a, b) -> int:
    a, b = list(_ids(a)), list(_ids(b))
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j - 1] + (x != y), previous[j] + 1, current[j - 1] + 1))
        previous = current
    return previous[-1]


# --------------------------------------------------------------------------- cosine top-k


def _matrix(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows × dimensions), got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


@njit(fastmath=True, **_JIT)  # reassociated sums: SIMD; agrees with the reference to ~1e-15
def _cosines(embeddings, start, stop, reference):
    """Cosine of rows start..stop against `reference`, accumulated in float64; 0 where a norm is 0."""
    dims = reference.shape[0]
    ref_norm = 0.0
    for d in range(dims):
        ref_norm += np.float64(reference[d]) * np.float64(reference[d])
    ref_norm = np.sqrt(ref_norm)
    out = np.zeros(stop - start, dtype=np.float64)
    for r in range(start, stop):
        dot = 0.0
        norm = 0.0
        for d in range(dims):
            x = np.float64(embeddings[r, d])
            dot += x * np.float64(reference[d])
            norm += x * x
        norm = np.sqrt(norm)
        if norm > 0.0 and ref_norm > 0.0:
            out[r - start] = dot / (norm * ref_norm)
    return out


@njit(**_JIT)
def _top_k(similarities, k):
    """Indices of the k largest values, descending, ties to the lower index (a stable sort of -s)."""
    order = np.argsort(-similarities, kind="mergesort")
    return order[:k]


@njit(**_JIT)
def _grouped_topk(embeddings, offsets, references, k):
    groups = offsets.shape[0] - 1
    chosen = np.full((groups, k), -1, dtype=np.int64)
    scores = np.full((groups, k), np.nan, dtype=np.float64)
    for g in range(groups):
        start, stop = offsets[g], offsets[g + 1]
        if stop <= start:
            continue
        sims = _cosines(embeddings, start, stop, references[g])
        top = _top_k(sims, k)
        for i in range(top.shape[0]):
            chosen[g, i] = start + top[i]
            scores[g, i] = sims[top[i]]
    return chosen, scores


def _check_k(k: int) -> int:
    if int(k) < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return int(k)


def cosine_topk(embeddings, reference, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`(indices, cosines)` of the at most `k` rows of `embeddings` most similar to `reference`."""
    embeddings = _matrix(embeddings, "embeddings")
    reference = np.ascontiguousarray(reference, dtype=np.float32).reshape(1, -1)
    offsets = np.array([0, embeddings.shape[0]], dtype=np.int64)
    chosen, scores = grouped_cosine_topk(embeddings, offsets, reference, k)
    keep = chosen[0] >= 0
    return chosen[0][keep], scores[0][keep]


def cosine_topk_reference(embeddings, reference, k: int) -> tuple[np.ndarray, np.ndarray]:
    embeddings = _matrix(embeddings, "embeddings").astype(np.float64)
    reference = np.asarray(reference, dtype=np.float32).astype(np.float64).ravel()
    norms = np.linalg.norm(embeddings, axis=1) * np.linalg.norm(reference)
    dots = embeddings @ reference
    sims = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    order = np.argsort(-sims, kind="stable")[:_check_k(k)]
    return order.astype(np.int64), sims[order]


def grouped_cosine_topk(embeddings, offsets, references, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group `g` (rows `offsets[g]:offsets[g+1]` of `embeddings`), the top `k` rows by cosine to `references[g]`.

    Returns `(indices, cosines)`, both `groups × k`; indices are rows of `embeddings` (not
    group-relative), `-1` (and NaN) pads groups with fewer than `k` rows.
    """
    embeddings = _matrix(embeddings, "embeddings")
    references = _matrix(references, "references")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    _check_groups(embeddings, offsets, references)
    return _grouped_topk(embeddings, offsets, references, _check_k(k))


def grouped_cosine_topk_reference(embeddings, offsets, references, k: int) -> tuple[np.ndarray, np.ndarray]:
    embeddings = _matrix(embeddings, "embeddings")
    references = _matrix(references, "references")
    offsets = np.asarray(offsets, dtype=np.int64)
    _check_groups(embeddings, offsets, references)
    k = _check_k(k)
    chosen = np.full((len(offsets) - 1, k), -1, dtype=np.int64)
    scores = np.full((len(offsets) - 1, k), np.nan)
    for g in range(len(offsets) - 1):
        start, stop = offsets[g], offsets[g + 1]
        if stop > start:
            order, sims = cosine_topk_reference(embeddings[start:stop], references[g], k)
            chosen[g, :len(order)] = order + start
            scores[g, :len(order)] = sims
    return chosen, scores


def _check_groups(embeddings: np.ndarray, offsets: np.ndarray, references: np.ndarray) -> None:
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != embeddings.shape[0] \
            or np.any(np.diff(offsets) < 0):
        raise ValueError(f"offsets must rise from 0 to the number of rows ({embeddings.shape[0]})")
    if references.shape[0] != offsets.size - 1:
        raise ValueError(f"{offsets.size - 1} groups but {references.shape[0]} reference rows")
    if references.shape[1] != embeddings.shape[1]:
        raise ValueError(f"embeddings have {embeddings.shape[1]} dimensions, references {references.shape[1]}")


# --------------------------------------------------------------------------- importance


@njit(**_JIT)
def _rank_importance(drops, owner, n_owners):
    scores = np.zeros(n_owners, dtype=np.float64)
    for i in range(drops.shape[0]):
        scores[owner[i]] += drops[i]
    return np.argsort(-scores, kind="mergesort"), scores


def _importance_inputs(drops, owner, n_owners: int) -> tuple[np.ndarray, np.ndarray, int]:
    drops = np.ascontiguousarray(drops, dtype=np.float64).ravel()
    owner = np.ascontiguousarray(owner, dtype=np.int64).ravel()
    if drops.shape != owner.shape:
        raise ValueError(f"{drops.size} drops but {owner.size} owners")
    if owner.size and (owner.min() < 0 or owner.max() >= n_owners):
        raise ValueError(f"owner indices must lie in 0..{n_owners - 1}")
    return drops, owner, int(n_owners)


def rank_importance(drops, owner, n_owners: int) -> tuple[np.ndarray, np.ndarray]:
    """`(order, scores)`: `scores[v]` sums `drops[i]` over occurrences with `owner[i] == v`; `order`
    lists the variables by descending score, equal scores in index order."""
    drops, owner, n_owners = _importance_inputs(drops, owner, n_owners)
    return _rank_importance(drops, owner, n_owners)


def rank_importance_reference(drops, owner, n_owners: int) -> tuple[np.ndarray, np.ndarray]:
    drops, owner, n_owners = _importance_inputs(drops, owner, n_owners)
    scores = np.bincount(owner, weights=drops, minlength=n_owners).astype(np.float64)
    return np.argsort(-scores, kind="stable"), scores


# --------------------------------------------------------------------------- GA selection


@njit(**_JIT)
def _tournament(fitness, contenders):
    rows, size = contenders.shape
    winners = np.empty(rows, dtype=np.int64)
    for r in range(rows):
        best = contenders[r, 0]
        for c in range(1, size):
            candidate = contenders[r, c]
            if fitness[candidate] > fitness[best]:
                best = candidate
        winners[r] = best
    return winners


def _tournament_inputs(fitness, contenders) -> tuple[np.ndarray, np.ndarray]:
    fitness = np.ascontiguousarray(fitness, dtype=np.float64).ravel()
    contenders = np.ascontiguousarray(contenders, dtype=np.int64)
    if contenders.ndim != 2 or contenders.shape[1] < 1:
        raise ValueError(f"contenders must be tournaments × size (size ≥ 1), got shape {contenders.shape}")
    if contenders.size and (contenders.min() < 0 or contenders.max() >= fitness.size):
        raise ValueError(f"contender indices must lie in 0..{fitness.size - 1}")
    return fitness, contenders


def tournament_select(fitness, contenders) -> np.ndarray:
    """For each row of `contenders` (indices drawn by the caller), the fittest; ties go to the earlier contender."""
    return _tournament(*_tournament_inputs(fitness, contenders))


def tournament_select_reference(fitness, contenders) -> np.ndarray:
    fitness, contenders = _tournament_inputs(fitness, contenders)
    best = np.argmax(fitness[contenders], axis=1)
    return contenders[np.arange(len(contenders)), best]


@njit(**_JIT)
def _roulette(weights, uniforms):
    n = weights.shape[0]
    cumulative = np.cumsum(weights)
    total = cumulative[n - 1]
    picks = np.empty(uniforms.shape[0], dtype=np.int64)
    for i in range(uniforms.shape[0]):
        if total <= 0.0:
            picks[i] = min(int(uniforms[i] * n), n - 1)
            continue
        target = uniforms[i] * total
        lo, hi = 0, n  # first index whose cumulative weight exceeds target
        while lo < hi:
            mid = (lo + hi) // 2
            if cumulative[mid] > target:
                hi = mid
            else:
                lo = mid + 1
        picks[i] = min(lo, n - 1)
    return picks


def _roulette_inputs(weights, uniforms) -> tuple[np.ndarray, np.ndarray]:
    weights = np.ascontiguousarray(weights, dtype=np.float64).ravel()
    uniforms = np.ascontiguousarray(uniforms, dtype=np.float64).ravel()
    if weights.size == 0:
        raise ValueError("roulette selection needs at least one individual")
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("roulette weights must be finite and non-negative (shift fitness before selecting)")
    if uniforms.size and (uniforms.min() < 0 or uniforms.max() >= 1):
        raise ValueError("uniforms must lie in [0, 1)")
    return weights, uniforms


def roulette_select(weights, uniforms) -> np.ndarray:
    """Fitness-proportional picks: index `i` with probability `weights[i] / sum`, one per uniform in [0, 1).

    Zero-weight individuals are never picked unless every weight is zero (then the pick is uniform).
    """
    return _roulette(*_roulette_inputs(weights, uniforms))


def roulette_select_reference(weights, uniforms) -> np.ndarray:
    weights, uniforms = _roulette_inputs(weights, uniforms)
    cumulative = np.cumsum(weights)
    total = cumulative[-1]
    if total <= 0:
        return np.minimum((uniforms * len(weights)).astype(np.int64), len(weights) - 1)
    return np.minimum(np.searchsorted(cumulative, uniforms * total, side="right"), len(weights) - 1).astype(np.int64)


@njit(**_JIT)
def _steady_state(population, children):
    population = population.copy()
    slots = np.full(children.shape[0], -1, dtype=np.int64)
    for c in range(children.shape[0]):
        worst = np.argmin(population)
        if children[c] > population[worst]:
            population[worst] = children[c]
            slots[c] = worst
    return slots, population


def steady_state_replace(population_fitness, child_fitness) -> tuple[np.ndarray, np.ndarray]:
    """ALERT's survivor selection: each child in turn replaces the least fit member if it is strictly fitter.

    Returns `(slots, fitness)`: `slots[c]` is the population index child `c` took (`-1`:
    discarded; a later child may take a slot an earlier child took), and the new fitness array.
    """
    population = np.ascontiguousarray(population_fitness, dtype=np.float64).ravel()
    children = np.ascontiguousarray(child_fitness, dtype=np.float64).ravel()
    if population.size == 0:
        raise ValueError("the population is empty")
    return _steady_state(population, children)


def steady_state_replace_reference(population_fitness, child_fitness) -> tuple[np.ndarray, np.ndarray]:
    population = np.array(population_fitness, dtype=np.float64).ravel()
    if population.size == 0:
        raise ValueError("the population is empty")
    slots = []
    for child in np.asarray(child_fitness, dtype=np.float64).ravel():
        worst = int(np.argmin(population))
        if child > population[worst]:
            population[worst] = child
            slots.append(worst)
        else:
            slots.append(-1)
    return np.array(slots, dtype=np.int64), population
