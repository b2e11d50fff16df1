"""CODA on stand-in victims: references of other labels, structure rewrites, renames to their names."""
from __future__ import annotations

import re

import numpy as np
import pytest

from attack_support import KeyVictim, StubVictim, key_dataset
from engine.attacks.base import AttackEnvironment
from engine.attacks.coda import CODA, CODAParams, build_references, hashed_bag, trigram_vectors
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions
from engine.code import check_rename, extract
from engine.code.rewrites import check_rewrite
from engine.datasets.base import Example


class FunctionNameVictim(StubVictim):
    """Label 1 exactly for functions named h…: renames (variables only) and rewrites can never change it."""

    def row(self, code):
        p0 = 0.1 if re.search(r"\bdef h", code) else 0.9
        p0 -= (len(code) % 7) * 1e-3
        return np.array([p0, 1 - p0])


def with_references(dataset, n=6):
    """More label-1 train programs (no `secret`), so references bring names the targets lack."""
    extra = [Example(f"ref{i}", f"def h_r{i}(alpha{i}, beta{i}, gamma{i}, delta{i}, eps{i}):\n"
                     f"    zeta{i} = alpha{i} + beta{i}\n    return zeta{i} * gamma{i} - delta{i} + eps{i}\n",
                     1, "python") for i in range(n)]
    dataset.splits["train"] = dataset.splits["train"] + extra
    return dataset


def run(tmp_path, victim, params, dataset, budget=None):
    env = AttackEnvironment(dataset=dataset, victim=victim, language="python", seed=0)
    search = CODA(params, build_references(env, params))
    runner = AttackRunner(victim=victim, dataset=dataset, out=tmp_path, search=search,
                          options=RunOptions(attack="coda", params=params, budget=budget, progress=False,
                                             compile_check=True, fail_fast=True))
    runner.run()
    return read_records(tmp_path / "records.jsonl"), search


def test_references_are_correctly_classified_programs_of_the_train_split():
    dataset = key_dataset(3)
    victim = KeyVictim()
    refs = build_references(AttackEnvironment(dataset=dataset, victim=victim, language="python", seed=0), CODAParams())
    train = {e.id: e for e in dataset.split("train")}
    assert refs.ids and all(np.argmax(victim.row(train[i].code)) == train[i].label for i in refs.ids)
    assert refs.embeddings.dtype == np.float16 and refs.embeddings.shape[0] == len(refs.ids)
    assert refs.queries == len(train)


def test_coda_defeats_a_victim_that_reads_one_identifier_with_valid_renames(tmp_path):
    dataset = with_references(key_dataset(6))
    records, _ = run(tmp_path, KeyVictim(), CODAParams(), dataset)
    originals = {e.id: e.code for e in dataset.split("test")}
    assert [r["status"] for r in records] == ["success"] * 6
    for record in records:
        assert "secret" in record["rename_map"]
        assert record["valid_parses"] and record["valid_compiles"]
        if record["structure_edits"] == 0:
            assert record["valid_alpha_equivalent"]
            assert check_rename(extract(originals[record["example_id"]], "python"), record["adversarial_code"],
                                record["rename_map"]).ok
        else:
            assert check_rewrite(originals[record["example_id"]], record["adversarial_code"], "python").ok


@pytest.mark.parametrize("budget", [2, 9, None])
def test_coda_never_defeats_a_victim_that_ignores_identifiers_and_respects_the_budget(tmp_path, budget):
    dataset = with_references(key_dataset(2))  # functions f and g: label 0 for the victim whatever is renamed or rewritten
    records, search = run(tmp_path, FunctionNameVictim(), CODAParams(), dataset, budget=budget)
    assert search.refs.ids, "the victim must leave references of the other label"
    for record in records:
        assert record["status"] == "failed"
        if budget is not None:
            assert record["queries"] == budget and record["reason"] == "budget exhausted"
        else:  # CODA's fixed cost: 1 + variants + at most rename_ranks × variables
            assert record["queries"] <= 1 + 64 + 64 * record["identifiers"]


def test_structure_variants_follow_the_references_style_and_are_checked():
    code = "def h(n):\n    count = n\n    while count > 0:\n        count -= 1\n    total = 0\n    total = total + 2\n    return count\n"
    dataset = key_dataset(1)
    env = AttackEnvironment(dataset=dataset, victim=KeyVictim(), language="python", seed=0)
    coda = CODA(CODAParams(), build_references(env, CODAParams()))
    from engine.attacks.base import AttackContext, example_rng

    victim = KeyVictim()
    ctx = AttackContext(example=Example("x", code, 0, "python"), code=code, language="python",
                        extraction=extract(code, "python"), true_label=0, victim=victim, rng=example_rng(0, "x"),
                        budget=None, queries_used=1, original_probs=victim.predict_proba([code])[0])
    always = coda._variants(ctx, {"augmented_to_expanded": 1.0, "expanded_to_augmented": 1.0})
    assert [c.code for c in always] == [code.replace("count -= 1", "count = count - 1").replace(
        "total = total + 2", "total += 2")]
    assert always[0].structure_edits == 2
    assert coda._variants(ctx, {}) == []  # probability 0: nothing applied, nothing queried


def test_name_similarity_prefers_similar_spellings():
    from engine.kernels import cosine_topk

    names = ["count", "counter", "zebra", "total_count"]
    order, _ = cosine_topk(trigram_vectors(names), trigram_vectors(["cnt_count"])[0], 4)
    assert names[int(order[-1])] == "zebra"
    assert hashed_bag(["a b a"])[0].sum() == 3
