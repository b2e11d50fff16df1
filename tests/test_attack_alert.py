"""ALERT on stand-in victims: defeats a victim that reads one identifier, never defeats (and exactly
exhausts the budget of) one that ignores its input, keeps every rename valid, and generates a number of
GA children that depends on its own parameter only, never on the victim's batch size."""
from __future__ import annotations

import json

import numpy as np
import pytest

from attack_support import ConstantVictim, HashVictim, KeyVictim, key_dataset
from engine.attacks.recipes.alert import ALERT, ALERTParams, GeneticSearch
from engine.attacks.base import AttackContext, example_rng
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions
from engine.attacks.sources import PrecomputedSubstitutes
from engine.code import check_rename, extract
from engine.datasets.base import Example

NAMES = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "lam", "rho"]


class EveryoneGetsNames(PrecomputedSubstitutes):
    """The same natural-looking names offered for every variable (admissibility filtered per program)."""

    def lookup(self, ctx):
        return {v: [f"{n}_{v}" for n in NAMES] + NAMES for v in ctx.variables}


def ctx_for(victim, code, budget=None, seed=0, example_id="e1"):
    example = Example(example_id, code, 0, "python")
    probs = victim.predict_proba([code])[0]
    return AttackContext(example=example, code=code, language="python", extraction=extract(code, "python"),
                         true_label=int(np.argmax(probs)), victim=victim, rng=example_rng(seed, example_id),
                         budget=budget, queries_used=1, original_probs=probs)


def run(tmp_path, victim, params, budget=None, n=6):
    dataset = key_dataset(n)
    search = ALERT(params, EveryoneGetsNames())
    runner = AttackRunner(victim=victim, dataset=dataset, out=tmp_path,
                          options=RunOptions(attack="alert", params=params, budget=budget, progress=False,
                                             compile_check=False, fail_fast=True), search=search)
    runner.run()
    records = read_records(tmp_path / "records.jsonl")
    extras = {json.loads(line)["example_id"]: json.loads(line) for line in (tmp_path / "extras.jsonl").read_text().splitlines()}
    return dataset, records, extras


def test_alert_defeats_a_victim_that_reads_one_identifier(tmp_path):
    dataset, records, extras = run(tmp_path, KeyVictim(), ALERTParams())
    assert [r["status"] for r in records] == ["success"] * len(dataset.split("test"))
    originals = {e.id: e.code for e in dataset.split("test")}
    for record in records:
        assert "secret" in record["rename_map"]  # the one identifier that matters
        assert record["valid_parses"] and record["valid_alpha_equivalent"]
        checked = check_rename(extract(originals[record["example_id"]], "python"), record["adversarial_code"],
                               record["rename_map"])
        assert checked.ok, checked.reasons
        assert extras[record["example_id"]]["stage"] == "greedy"
        assert record["queries"] <= 1 + extras[record["example_id"]]["importance_queries"] + 30 * record["identifiers"]


@pytest.mark.parametrize("budget", [7, 60, 200, None])
def test_alert_never_defeats_a_constant_victim_and_spends_exactly_the_budget(tmp_path, budget):
    _, records, extras = run(tmp_path, ConstantVictim(), ALERTParams(children=16), budget=budget, n=3)
    for record in records:
        assert record["status"] == "failed"
        if record["reason"] == "budget exhausted":
            assert record["queries"] == budget
        else:  # every distinct chromosome was tried before the budget ran out: nothing left to query
            assert record["reason"] == "genetic algorithm done"
            assert budget is None or record["queries"] < budget
    if budget is not None and budget <= 60:
        assert all(r["reason"] == "budget exhausted" for r in records)


def test_greedy_commits_and_the_ga_runs_its_own_number_of_children():
    # HashVictim: a different probability for every program, never a flip
    code = key_dataset(1).split("test")[0].code
    for children in (5, 13):
        ctx = ctx_for(HashVictim(), code)
        outcome = ALERT(ALERTParams(children=children), EveryoneGetsNames()).attack(ctx)
        assert not outcome.success
        extras = outcome.extras
        population = extras["variables_with_substitutes"] + 1
        generations = max(5 * population, 10)
        assert extras["ga_generations"] == generations == extras["ga_generations_planned"]
        assert extras["ga_children"] == children * generations
        # repeated chromosomes are not re-queried, so the GA never spends more than it generated
        assert extras["ga_queries"] <= population - 1 + children * generations
        assert ctx.queries_used == 1 + extras["importance_queries"] + extras["greedy_queries"] + extras["ga_queries"]
        # the failed outcome is the best program seen, and a valid rename
        assert outcome.probs[ctx.true_label] == ctx.best.probs[ctx.true_label]
        assert check_rename(ctx.extraction, outcome.code, outcome.mapping).ok


def test_ga_children_never_merge_two_variables_and_stay_admissible():
    code = key_dataset(1).split("test")[0].code
    ctx = ctx_for(HashVictim(), code)
    substitutes = {v: ["shared", "other", f"own_{v}"] for v in ctx.variables}
    seeds = {v: "shared" for v in ctx.variables}  # every seed proposes the same name
    ga = GeneticSearch(ctx, ALERTParams(children=32, selection="tournament"), substitutes, seeds)
    fitness = np.zeros(len(ga.population))
    for _ in range(300):
        child = ga._child(fitness)
        mapping = ga.mapping(child)
        assert not ctx.validate(mapping), mapping
        assert len(set(mapping.values())) == len(mapping)


def test_results_do_not_depend_on_the_victims_batch_size(one_torch_thread):
    from engine.models import build_classifier
    from engine.victim import Victim

    dataset = key_dataset(3)
    texts = [e.code for e in dataset.split("train")] * 3
    model, tokenizer, _ = build_classifier("scratch:tiny", label_names=["a", "b"], texts=texts, max_length=64,
                                           vocab_size=300)
    code = dataset.split("test")[0].code
    outcomes = []
    for batch_size in (1, 64):
        victim = Victim(model, tokenizer, max_length=64, batch_size=batch_size, device="cpu")
        ctx = ctx_for(victim, code, budget=80)
        outcome = ALERT(ALERTParams(children=8), EveryoneGetsNames()).attack(ctx)
        outcomes.append((outcome.success, outcome.mapping, ctx.queries_used, outcome.extras.get("ga_children"),
                         outcome.extras.get("stage")))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][3] is None or outcomes[0][3] % 8 == 0


def test_parameters_are_checked_with_the_flag_name():
    from engine.errors import UserError

    with pytest.raises(UserError, match="--alert-crossover"):
        ALERTParams(crossover=1.5).check()
    with pytest.raises(UserError, match="--alert-children"):
        ALERTParams(children=0).check()


def test_no_substitutes_is_a_failure_with_a_reason_and_costs_nothing():
    code = key_dataset(1).split("test")[0].code
    ctx = ctx_for(KeyVictim(), code)
    outcome = ALERT(ALERTParams(), PrecomputedSubstitutes({})).attack(ctx)
    assert not outcome.success and "no variable" in outcome.reason and ctx.queries_used == 1
