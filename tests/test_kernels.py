"""Each numba kernel agrees with its NumPy/Python reference (seeded random inputs, small sizes)."""
from __future__ import annotations

import numpy as np
import pytest

from engine import kernels

SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_edit_distance_agrees(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, rng.integers(0, 30))
    b = a.copy()
    for _ in range(rng.integers(0, 8)):  # a few random edits on top of a shared sequence
        where = rng.integers(0, len(b) + 1)
        op = rng.integers(0, 3)
        if op == 0:
            b = np.insert(b, where, rng.integers(0, 5))
        elif len(b) and op == 1:
            b = np.delete(b, min(where, len(b) - 1))
        elif len(b):
            b[min(where, len(b) - 1)] = rng.integers(0, 5)
    assert kernels.token_edit_distance(a, b) == kernels.token_edit_distance_reference(a, b)
    assert kernels.token_edit_distance(b, a) == kernels.token_edit_distance(a, b)


def test_edit_distance_known_values():
    assert kernels.token_edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert kernels.token_edit_distance([], [4, 5]) == 2
    assert kernels.token_edit_distance([1, 2, 3], []) == 3
    # kitten -> sitting, spelled as ids
    kitten, sitting = [ord(c) for c in "kitten"], [ord(c) for c in "sitting"]
    assert kernels.token_edit_distance(kitten, sitting) == 3
    with pytest.raises(ValueError):
        kernels.token_edit_distance([1.5], [1])


@pytest.mark.parametrize("seed", SEEDS)
def test_cosine_topk_agrees(seed):
    rng = np.random.default_rng(seed)
    rows, dims, k = int(rng.integers(1, 80)), int(rng.integers(1, 24)), int(rng.integers(1, 40))
    embeddings = rng.normal(size=(rows, dims)).astype(np.float32)
    embeddings[rng.random(rows) < 0.1] = 0.0  # zero rows have cosine 0
    reference = rng.normal(size=dims).astype(np.float32)
    got = kernels.cosine_topk(embeddings, reference, k)
    want = kernels.cosine_topk_reference(embeddings, reference, k)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
    assert len(got[0]) == min(k, rows)


def test_cosine_topk_ties_go_to_the_lower_index():
    embeddings = np.array([[1, 0], [0, 1], [2, 0], [1, 0]], dtype=np.float32)
    order, sims = kernels.cosine_topk(embeddings, np.array([1, 0], dtype=np.float32), 3)
    assert order.tolist() == [0, 2, 3]
    np.testing.assert_allclose(sims, [1, 1, 1])


@pytest.mark.parametrize("seed", SEEDS)
def test_grouped_cosine_topk_agrees(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 15, rng.integers(1, 8))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    dims = int(rng.integers(2, 16))
    embeddings = rng.normal(size=(int(offsets[-1]), dims)).astype(np.float32)
    references = rng.normal(size=(len(sizes), dims)).astype(np.float32)
    k = int(rng.integers(1, 10))
    got = kernels.grouped_cosine_topk(embeddings, offsets, references, k)
    want = kernels.grouped_cosine_topk_reference(embeddings, offsets, references, k)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12, equal_nan=True)
    for g, size in enumerate(sizes):  # padding exactly where a group is short
        assert (got[0][g] >= 0).sum() == min(k, size)


def test_grouped_cosine_topk_rejects_bad_offsets():
    with pytest.raises(ValueError, match="offsets"):
        kernels.grouped_cosine_topk(np.zeros((3, 2)), [0, 2], np.zeros((1, 2)), 1)
    with pytest.raises(ValueError, match="groups"):
        kernels.grouped_cosine_topk(np.zeros((3, 2)), [0, 3], np.zeros((2, 2)), 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_rank_importance_agrees(seed):
    rng = np.random.default_rng(seed)
    n_owners = int(rng.integers(1, 12))
    occurrences = int(rng.integers(0, 60))
    owner = rng.integers(0, n_owners, occurrences)
    drops = np.round(rng.normal(size=occurrences), 1)  # rounded: many exact ties
    order, scores = kernels.rank_importance(drops, owner, n_owners)
    want_order, want_scores = kernels.rank_importance_reference(drops, owner, n_owners)
    np.testing.assert_array_equal(scores, want_scores)
    np.testing.assert_array_equal(order, want_order)


def test_rank_importance_ties_keep_index_order():
    order, scores = kernels.rank_importance([0.5, 0.25, 0.25, 0.0], [1, 0, 0, 2], 4)
    assert scores.tolist() == [0.5, 0.5, 0.0, 0.0]
    assert order.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("seed", SEEDS)
def test_tournament_agrees(seed):
    rng = np.random.default_rng(seed)
    fitness = np.round(rng.normal(size=int(rng.integers(1, 20))), 1)
    contenders = rng.integers(0, len(fitness), (int(rng.integers(0, 30)), int(rng.integers(1, 5))))
    np.testing.assert_array_equal(kernels.tournament_select(fitness, contenders),
                                  kernels.tournament_select_reference(fitness, contenders))


@pytest.mark.parametrize("seed", SEEDS)
def test_roulette_agrees(seed):
    rng = np.random.default_rng(seed)
    weights = rng.random(int(rng.integers(1, 20)))
    weights[rng.random(len(weights)) < 0.3] = 0.0
    uniforms = rng.random(50)
    got = kernels.roulette_select(weights, uniforms)
    np.testing.assert_array_equal(got, kernels.roulette_select_reference(weights, uniforms))
    if weights.sum() > 0:
        assert np.all(weights[got] > 0)  # zero weight: never picked


def test_roulette_all_zero_is_uniform_and_bad_weights_fail():
    np.testing.assert_array_equal(kernels.roulette_select([0, 0, 0, 0], [0.0, 0.3, 0.99]), [0, 1, 3])
    with pytest.raises(ValueError, match="non-negative"):
        kernels.roulette_select([1.0, -0.5], [0.5])


@pytest.mark.parametrize("seed", SEEDS)
def test_steady_state_agrees(seed):
    rng = np.random.default_rng(seed)
    population = np.round(rng.normal(size=int(rng.integers(1, 10))), 1)
    children = np.round(rng.normal(size=int(rng.integers(0, 20))), 1)
    got = kernels.steady_state_replace(population, children)
    want = kernels.steady_state_replace_reference(population, children)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[1].min() >= population.min()


def test_steady_state_replaces_the_worst_only_when_strictly_fitter():
    slots, fitness = kernels.steady_state_replace([0.1, 0.5, 0.1], [0.1, 0.2, 0.9])
    assert slots.tolist() == [-1, 0, 2]
    assert fitness.tolist() == [0.2, 0.5, 0.9]
