"""The attack framework's parts, each alone: context budget and tracking, constraints, sources,
importance ranking, MHM's acceptance rule, token edit distance, validity checks."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from attack_support import ConstantVictim, HashVictim, KeyVictim, key_dataset
from engine.attacks.base import AttackContext, BudgetExhausted, Candidate, example_rng
from engine.attacks.importance import rank_variables
from engine.attacks.recipes.mhm import MHM, MHMParams, accept, acceptance_ratio
from engine.attacks.runner import token_edit_distance
from engine.attacks.sources import PrecomputedSubstitutes, RandomNamePool, composed_names
from engine.attacks.validity import ValidityChecker, java_compiles
from engine.code import check_rename, extract
from engine.datasets.base import Example

CODE = "def f(data, secret):\n    total = 0\n    for item in data:\n        total += item * secret\n    return total\n"


def make_ctx(victim, code=CODE, budget=None, seed=0, meta=None):
    example = Example("e1", code, 0, "python", meta or {})
    probs = victim.predict_proba([code])[0]
    return AttackContext(example=example, code=code, language="python", extraction=extract(code, "python"),
                         true_label=0, victim=victim, rng=example_rng(seed, "e1"), budget=budget,
                         queries_used=1, original_probs=probs)


def test_query_evaluates_at_most_the_remaining_budget_then_raises():
    victim = ConstantVictim()
    ctx = make_ctx(victim, budget=5)
    rows = ctx.query([{"total": f"t{i}"} for i in range(3)])
    assert rows.shape == (3, 2) and ctx.remaining == 1 and not ctx.exhausted
    rows = ctx.query([{"total": f"u{i}"} for i in range(3)])
    assert rows.shape == (1, 2) and ctx.exhausted and ctx.remaining == 0
    assert ctx.query([]).shape == (0, 2)
    with pytest.raises(BudgetExhausted):
        ctx.query([{"total": "v"}])
    assert victim.counters().queries == 5 == ctx.queries_used


def test_context_tracks_the_first_success_and_the_best_but_not_probes():
    victim = KeyVictim()
    ctx = make_ctx(victim)
    ctx.query([CODE.replace("secret", "hidden")], probe=True)  # a flip, but a probe
    assert ctx.first_success is None and ctx.best is None
    items = ctx.query_candidates([{"total": "acc"}, {"secret": "s2"}, {"secret": "longer_name"}])
    assert ctx.first_success.candidate.mapping == {"secret": "s2"}
    assert ctx.best.probs[0] == min(item.probs[0] for item in items)
    assert items[1].candidate.code == CODE.replace("secret", "s2")


def test_admissible_applies_the_language_layer_rules_with_reasons():
    ctx = make_ctx(ConstantVictim())
    assert ctx.admissible("secret", "key") is None
    assert "keyword" in ctx.admissible("secret", "while")
    assert ctx.admissible("secret", "len") is None  # a builtin that f does not call
    assert "dunder" in ctx.admissible("secret", "__name__")
    assert "already used" in ctx.admissible("secret", "total")
    assert "already used" in ctx.admissible("secret", "f")  # the function's name
    assert "not a valid" in ctx.admissible("secret", "a-b")
    assert "not a valid" in ctx.admissible("secret", "foo)")  # the last character is checked too
    assert "also given to data" in ctx.admissible("secret", "x", {"data": "x"})
    assert "not a renameable" in ctx.admissible("f", "g")
    for old, new in [("secret", "while"), ("secret", "total"), ("secret", "key")]:
        assert (ctx.admissible(old, new) is None) == (ctx.validate({old: new}) == [])


def test_example_rng_depends_on_seed_and_id_only():
    a = example_rng(3, "x").integers(1 << 30, size=5)
    assert (a == example_rng(3, "x").integers(1 << 30, size=5)).all()
    assert not (a == example_rng(4, "x").integers(1 << 30, size=5)).all()
    assert not (a == example_rng(3, "y").integers(1 << 30, size=5)).all()


def test_random_name_pool_is_deterministic_in_style_and_admissible():
    dataset = key_dataset()
    pool = RandomNamePool.for_dataset(dataset, "python")
    assert pool.names == RandomNamePool.for_dataset(dataset, "python").names
    assert "count" in pool.names and "while" not in pool.names and "len" not in pool.names
    assert all("_" in n or n.islower() for n in composed_names("python")[:200])
    assert any(n != n.lower() for n in composed_names("java"))  # camelCase
    ctx = make_ctx(ConstantVictim())
    names = pool.candidates(ctx, "secret", 30)
    assert len(names) == len(set(names)) == 30
    assert all(ctx.name_ok("secret", n) is None for n in names)
    again = make_ctx(ConstantVictim())
    assert pool.candidates(again, "secret", 30) == names


def test_precomputed_substitutes_strip_filter_and_keep_order():
    ctx = make_ctx(ConstantVictim(), meta={"substitutes": {"secret": [" key", "total", "while", "key", "pin"]}})
    assert PrecomputedSubstitutes().candidates(ctx, "secret", 5) == ["key", "pin"]
    table = PrecomputedSubstitutes({"e1": {"data": ["rows", "xs"]}}, label="file")
    assert table.candidates(ctx, "data", 1) == ["rows"] and table.candidates(ctx, "secret", 3) == []


def test_importance_ranks_the_identifier_the_victim_depends_on_first():
    victim = KeyVictim()
    ctx = make_ctx(victim)
    before = victim.counters().queries
    importance = rank_variables(ctx)
    occurrences = sum(len(i.spans) for i in ctx.extraction.identifiers.values())
    assert importance.ranked[0] == "secret" and importance.complete
    assert importance.queries == occurrences == victim.counters().queries - before
    assert importance.scores["secret"] == pytest.approx(2 * 0.35, abs=0.02)  # two occurrences
    assert ctx.first_success is None  # masked programs are probes, not adversarial examples
    per_variable = rank_variables(make_ctx(KeyVictim()), mode="variable")
    assert per_variable.ranked[0] == "secret" and per_variable.queries == len(ctx.variables)


def test_importance_stops_at_the_budget_and_marks_itself_incomplete():
    ctx = make_ctx(KeyVictim(), budget=3)
    importance = rank_variables(ctx)
    assert importance.queries == 2 and not importance.complete and ctx.exhausted


def test_mhm_acceptance_rule_and_threshold():
    assert acceptance_ratio(0.5, 0.5) == pytest.approx(1.0)
    assert accept(1.2, 0.95, 0.99) and accept(0.97, 0.95, 0.5)
    assert not accept(0.97, 0.95, 0.98)  # u > alpha
    assert not accept(0.9, 0.95, 0.0)  # alpha below the threshold
    assert not accept(0.99, 1.0, 0.0)  # threshold 1: a greedy walk


@pytest.mark.parametrize("threshold", [1.0, 0.95])
def test_mhm_returns_exactly_the_program_it_evaluated(threshold):
    victim = HashVictim()
    ctx = make_ctx(victim)
    outcome = MHM(MHMParams(iterations=20, candidates=5, threshold=threshold),
                  RandomNamePool.for_dataset(key_dataset(), "python")).attack(ctx)
    assert not outcome.success and outcome.code is not None
    assert outcome.code == ctx.renamer.apply(outcome.mapping)
    assert np.allclose(victim.row(outcome.code), outcome.probs)
    accepted = outcome.extras["accepted"]
    assert accepted + outcome.extras["rejected"] + outcome.extras["empty_proposals"] == 20
    if threshold == 1.0:  # greedy walk: never worse than the original
        assert outcome.probs[0] <= ctx.original_true_probability
    assert check_rename(ctx.extraction, outcome.code, outcome.mapping).alpha_equivalent


def test_token_edit_distance_counts_changed_tokens():
    assert token_edit_distance(list("abcd"), list("abcd")) == 0
    assert token_edit_distance(list("abcd"), list("xbcy")) == 2
    assert token_edit_distance(list("kitten"), list("sitting")) == 3
    assert token_edit_distance([], list("ab")) == 2


def test_candidate_objects_keep_their_code_and_structure_edits():
    ctx = make_ctx(ConstantVictim())
    rendered = ctx.render(Candidate(code="x = 1\n", mapping={}, structure_edits=2))
    assert rendered.structure_edits == 2 and ctx.render("y = 2\n").code == "y = 2\n"
    assert ctx.render({"secret": "secret"}).mapping == {}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_c_validity_compiles_and_is_differential_when_the_original_does_not():
    checker = ValidityChecker(tests=False)
    code = "int add(int a, int b) {\n    int s = a + b;\n    return s;\n}\n"
    original = extract(code, "c")
    renamed = checker.check(original, code.replace(" s ", " total ").replace(" s;", " total;"), {"s": "total"}, 0)
    assert renamed.compiles is True and renamed.alpha_equivalent and renamed.parses
    broken = checker.check(original, code.replace("int s", "int int"), {"s": "int"}, 0)
    assert broken.compiles is False and broken.alpha_equivalent is False
    lone = "static int f(AVCodecContext *avctx) {\n    int n = avctx->width;\n    return n;\n}\n"
    result = checker.check(extract(lone, "c"), lone.replace(" n ", " m ").replace(" n;", " m;"), {"n": "m"}, 0)
    assert result.alpha_equivalent and result.compiles is True and result.compile_differential is True


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac not installed")
def test_java_methods_are_wrapped_in_a_class_to_compile():
    assert java_compiles("int add(int a, int b) { return a + b; }").ok is True
    assert java_compiles("int add(int a, int b) { return a + ; }").ok is False


def test_tests_pass_is_checked_in_the_sandbox_only_when_the_original_passes():
    checker = ValidityChecker(compile=False)
    code = "def double(x):\n    y = x * 2\n    return y\n"
    meta = {"test": "def check(f):\n    assert f(2) == 4\n", "entry_point": "double", "outcome": "passed"}
    original = extract(code, "python")
    good = checker.check(original, code.replace("y", "twice"), {"y": "twice"}, 0, meta)
    assert good.tests_pass is True and good.alpha_equivalent
    wrong = checker.check(original, code.replace("x * 2", "x * 3"), {}, 0, meta)
    assert wrong.tests_pass is False and wrong.alpha_equivalent is False
    buggy = checker.check(original, code.replace("y", "twice"), {"y": "twice"}, 0, {**meta, "outcome": "failed"})
    assert buggy.tests_pass is None and any("original does not pass" in r for r in buggy.reasons)
    unknown = checker.check(original, code.replace("y", "twice"), {"y": "twice"}, 0, {**meta, "outcome": None})
    assert unknown.tests_pass is True  # the original's outcome is measured when the dataset did not record it


def test_a_flip_that_is_not_the_program_renamed_is_rejected_and_never_a_success():
    """Name rules are checked without a parse; a candidate that flips the prediction is parsed and
    must be alpha-equivalent before it counts. Here `secret`'s two occurrences get two different
    names (a broken rename the KeyVictim answers with a flip): its row becomes the original's."""
    victim = KeyVictim()
    ctx = make_ctx(victim)
    broken = Candidate(code=CODE.replace("secret):", "hidden):").replace("* secret", "* other"),
                       mapping={"secret": "hidden"})
    row = ctx.query([broken])[0]
    assert victim.predict_proba([broken.code])[0].argmax() != 0  # the victim did flip on it
    assert (row == ctx.original_probs).all() and ctx.first_success is None
    assert len(ctx.rejected_flips) == 1 and "alpha-equivalent" in ctx.rejected_flips[0]
    assert ctx.queries_used == 2  # the query is spent all the same
    good = ctx.query_candidates([{"secret": "hidden"}])[0]  # the same name, every occurrence
    assert good.label != 0 and ctx.first_success.candidate.mapping == {"secret": "hidden"}
    assert len(ctx.rejected_flips) == 1
    rewrite = Candidate(code=CODE.replace("return total", "return (total"), structure_edits=1)
    assert "parse errors" in ctx.flip_invalid_reason(rewrite)  # a rewrite may not add parse errors
