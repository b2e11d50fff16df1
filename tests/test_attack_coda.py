"""CODA on stand-in victims: references of other labels, structure rewrites, renames to their names."""
from __future__ import annotations

import json

import numpy as np
import pytest

from attack_support import FunctionNameVictim, KeyVictim, key_dataset, with_references
from engine.attacks.base import AttackEnvironment
from engine.attacks.recipes.coda import CODA, CODAParams, build_references, trigram_vectors
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions
from engine.code import check_rename, extract
from engine.code.rewrites import check_rewrite
from engine.datasets.base import Example


def run(tmp_path, victim, params, dataset, budget=None):
    env = AttackEnvironment(dataset=dataset, victim=victim, language="python", seed=0)
    search = CODA(params, build_references(env, params))
    runner = AttackRunner(victim=victim, dataset=dataset, out=tmp_path, search=search,
                          options=RunOptions(attack="coda", params=params, budget=budget, progress=False,
                                             compile_check=True, fail_fast=True))
    runner.run()
    return read_records(tmp_path / "records.jsonl"), search


def extras(tmp_path):
    return {row["example_id"]: row for row in map(json.loads, (tmp_path / "extras.jsonl").read_text().splitlines())}


def test_references_are_correctly_classified_programs_of_the_train_split():
    dataset = key_dataset(3)
    victim = KeyVictim()
    refs = build_references(AttackEnvironment(dataset=dataset, victim=victim, language="python", seed=0), CODAParams())
    train = {e.id: e for e in dataset.split("train")}
    assert refs.ids and all(np.argmax(victim.row(train[i].code)) == train[i].label for i in refs.ids)
    assert refs.embeddings.dtype == np.float16 and refs.embeddings.shape[0] == len(refs.ids)
    assert refs.queries == len(train) + len(refs.ids)  # every train program classified, every reference embedded
    assert victim.counters().embeddings == len(refs.ids)


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
        else:  # CODA's fixed cost: the original, the target's embedding, variants, at most rename_ranks × variables
            assert record["queries"] <= 2 + 64 + 64 * record["identifiers"]


def test_every_query_of_coda_is_counted_and_the_embedding_is_one_of_them(tmp_path):
    """queries = the original + the target's embedding + every structure variant + every rename
    candidate, exactly; and the victim's own counters say the same (nothing ran outside them)."""
    dataset = with_references(key_dataset(3))
    victim = FunctionNameVictim()
    records, search = run(tmp_path, victim, CODAParams(structure_variants=5, rename_ranks=3), dataset)
    facts = extras(tmp_path)
    attacked = [r for r in records if r["status"] in ("success", "failed")]
    assert len(attacked) == 2  # the third program is named h: misclassified, skipped after one query
    for record in attacked:
        fact = facts[record["example_id"]]
        assert record["queries"] == 2 + fact["structure_variants"] + fact["rename_candidates"]
    assert victim.counters().embeddings == len(search.refs.ids) + len(attacked)
    assert sum(r["queries"] for r in records) + search.refs.queries == victim.counters().queries


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
