"""The runner on stand-in victims: recipes defeat what they should and nothing else, budgets are
exact, records follow the schema, bad examples get a status, resume/shard/seed/transfer behave."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from attack_support import ConstantVictim, FunctionNameVictim, KeyVictim, key_dataset, with_references
from engine.attacks import registry
from engine.attacks.environment import make_environment
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions, select_examples, shard_of
from engine.attacks.sources import RandomNamePool
from engine.code import check_rename, extract
from engine.datasets.base import Example
from engine.errors import UserError
from engine.common.logschema import validate_record

RECIPES = tuple(registry.RECIPES)  # every registered recipe; a new one is tested without editing this file
TIMING = ("wall_time_s", "victim_time_s")


def run(victim, dataset, out, attack="mhm", params=None, **options):
    params = params or registry.params_from_args(attack)
    options.setdefault("progress", False)
    # natural substitutes (ALERT, MHM-NS) stand in as the random-name pool: no masked LM in unit tests
    env = make_environment(dataset, victim, seed=options.get("seed", 0),
                           natural=RandomNamePool.for_dataset(dataset, dataset.language))
    search = registry.build_search(attack, params, env)
    runner = AttackRunner(victim=victim, dataset=dataset, options=RunOptions(attack=attack, params=params, **options),
                          out=out, search=search)
    summary = runner.run()
    return summary, read_records(runner.records_path)


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


@pytest.mark.parametrize("attack", RECIPES)
def test_each_recipe_defeats_a_victim_that_depends_on_one_identifier(tmp_path, attack):
    dataset = with_references(key_dataset(6))
    summary, records = run(KeyVictim(), dataset, tmp_path, attack)
    assert [r["status"] for r in records] == ["success"] * 6 and summary["asr"] == 1.0
    for record in records:
        validate_record(record)
        assert "secret" in record["rename_map"]
        original = extract(record["original_code"], "python")
        check = check_rename(original, record["adversarial_code"], record["rename_map"])
        assert check.alpha_equivalent and check.parses and check.compiles is True
        assert record["valid_alpha_equivalent"] and record["valid_parses"] and record["valid_compiles"]
        assert record["valid_tests_pass"] is None
        assert record["adversarial_prediction"] == 1 and record["adversarial_probability"] < 0.5
        assert record["identifiers_changed"] == len(record["rename_map"])
        assert record["tokens_changed"] == sum(len(original.identifiers[v].spans) for v in record["rename_map"])
        assert record["queries"] >= record["forward_passes"] >= 2


@pytest.mark.parametrize("attack", RECIPES)
def test_a_victim_that_ignores_identifiers_is_never_defeated_and_the_budget_is_exact(tmp_path, attack):
    # the victim reads only the function's name, which no rename touches; the train programs named h…
    # are label 1 for it, so CODA finds references of the other label
    summary, records = run(FunctionNameVictim(), with_references(key_dataset(2)), tmp_path, attack, budget=12)
    assert summary["succeeded"] == 0 and len(records) == 2
    for record in records:
        validate_record(record)
        assert record["status"] == "failed" and record["queries"] == 12
        assert record["reason"].startswith("budget exhausted")


def test_without_a_budget_mhm_stops_after_its_iterations(tmp_path):
    params = registry.params_from_args("mhm", iterations=7, candidates=4)
    _, records = run(ConstantVictim(), key_dataset(2), tmp_path, "mhm", params)
    assert all(r["queries"] == 1 + 7 * 4 and r["reason"].startswith("iterations done") for r in records)


def test_bad_examples_get_a_status_not_a_crash(tmp_path):
    extra = [
        Example("empty", "   \n", 0, "python"),
        Example("garbage", ")))((( ]]] ::: @@@", 0, "python"),
        Example("no-identifiers", "print(1 + 2)\n", 1, "python"),  # label 1: what the victim says
        Example("misclassified", "def q(a):\n    return a\n", 0, "python"),  # no `secret`: the victim says 1
        Example("long", "def big(secret):\n" + "    secret += 1\n" * 50, 0, "python"),
    ]
    victim = KeyVictim()
    victim.max_length = 200
    victim.untruncated_lengths = lambda codes: [len(c) // 2 for c in codes]
    summary, records = run(victim, key_dataset(1, extra), tmp_path, "wir-random")
    assert (summary["truncated"], summary["truncated_attacked"]) == (1, 1)
    by_id = {r["example_id"]: r for r in records}
    for record in records:
        validate_record(record)
    assert by_id["ex00"]["status"] == "success"
    assert by_id["empty"]["status"] == "error" and by_id["empty"]["reason"].startswith("empty")
    assert by_id["garbage"]["status"] == "error" and by_id["garbage"]["reason"].startswith("unparseable")
    assert by_id["no-identifiers"]["status"] == "skipped_no_identifiers"
    assert by_id["misclassified"]["status"] == "skipped_misclassified"
    assert by_id["misclassified"]["original_prediction"] == 1 and by_id["misclassified"]["queries"] == 1
    assert by_id["long"]["status"] == "success" and by_id["long"]["truncated"] is True  # attacked by default
    assert (by_id["long"]["input_tokens"], by_id["long"]["input_tokens_read"]) == (len(extra[-1].code) // 2, 200)
    assert by_id["ex00"]["truncated"] is False and by_id["empty"]["truncated"] is None
    assert by_id["empty"]["queries"] == 0
    _, strict = run(victim, key_dataset(0, extra[-1:]), tmp_path / "strict", "wir-random", too_long="error")
    assert strict[0]["status"] == "error" and strict[0]["reason"].startswith("too_long") and strict[0]["truncated"]
    assert strict[0]["queries"] == 0


class WindowKeyVictim(KeyVictim):
    """A `KeyVictim` that reads only the first `max_length` characters, one token per character,
    with the real victim's `untruncated_lengths` and `encode` (what `engine.attacks.window` uses)."""

    max_length = 120

    def row(self, code: str) -> np.ndarray:
        return super().row(code[: self.max_length])

    def untruncated_lengths(self, codes):
        return [len(code) for code in codes]

    def encode(self, codes):
        return [{"input_ids": [ord(c) for c in code[: self.max_length]]} for code in codes]


LONG = ("def f(secret, unused):\n    early = secret + 1\n    total = early * 2\n"
        + "    total = total + 1\n" * 8 + "    late = total\n    only_late = late + unused\n    return only_late\n")


@pytest.mark.parametrize("attack", RECIPES)
def test_truncated_programs_are_attacked_as_read_and_renames_past_the_window_are_never_made(tmp_path, attack):
    victim = WindowKeyVictim()
    dataset = key_dataset(0, [Example(f"long{i}", LONG.replace("f(", f"f{i}("), 0, "python") for i in range(3)])
    _, records = run(victim, dataset, tmp_path, attack)
    extract_ = extract(LONG, "python")
    read_part = LONG[: victim.max_length]
    hidden = sorted(name for name in extract_.identifiers if name not in read_part)
    assert hidden == ["late", "only_late"]
    for record in records:
        validate_record(record)
        assert record["status"] == "success" and record["truncated"] is True
        assert (record["input_tokens"], record["input_tokens_read"]) == (len(record["original_code"]), victim.max_length)
        assert record["identifiers"] == len(extract_.identifiers) - len(hidden)
        assert not set(record["rename_map"]) & set(hidden)
        assert record["identifiers_changed"] == len(record["rename_map"])


def test_importance_probes_skip_occurrences_past_the_window(tmp_path):
    from engine.attacks.base import AttackContext, example_rng
    from engine.attacks.importance import masked_programs
    from engine.attacks.window import restrict_to_window

    victim = WindowKeyVictim()
    example = Example("long", LONG, 0, "python")
    ctx = AttackContext(example=example, code=LONG, language="python", extraction=extract(LONG, "python"), true_label=0,
                        victim=victim, rng=example_rng(0, "long"), budget=None)
    assert restrict_to_window(victim, ctx) == ["late", "only_late"]
    assert ctx.hidden_from == min(start for start, _, _ in ctx.renamer.spans if start >= victim.max_length)
    programs, owners = masked_programs(ctx, "X")
    read = [span for span in ctx.renamer.spans if span[0] < victim.max_length]
    assert len(programs) == len(read) == len(owners)


def test_same_seed_same_records_and_another_seed_differs(tmp_path):
    dataset = key_dataset(6)
    _, a = run(KeyVictim(), dataset, tmp_path / "a", "random", seed=5)
    _, b = run(KeyVictim(), dataset, tmp_path / "b", "random", seed=5)
    _, c = run(KeyVictim(), dataset, tmp_path / "c", "random", seed=6)
    assert without_timing(a) == without_timing(b)
    assert [r["rename_map"] for r in a] != [r["rename_map"] for r in c]


def test_shards_cover_every_example_exactly_once_with_the_same_outcomes(tmp_path):
    dataset = key_dataset(12)
    _, whole = run(KeyVictim(), dataset, tmp_path / "whole", "mhm")
    parts = []
    for k in (1, 2, 3):
        _, records = run(KeyVictim(), dataset, tmp_path / "sharded", "mhm", shard=(k, 3))
        parts += records
        assert all(shard_of(r["example_id"], 3) == k for r in records)
    assert sorted(r["example_id"] for r in parts) == sorted(r["example_id"] for r in whole)
    assert sorted(map(json.dumps, without_timing(parts))) == sorted(map(json.dumps, without_timing(whole)))
    assert (tmp_path / "sharded" / "records-2-of-3.jsonl").exists()
    assert json.loads((tmp_path / "sharded" / "manifest-2-of-3.json").read_text())["shard"] == {"index": 2, "count": 3}
    assert [e.id for e in select_examples(dataset.split("test"), 5, None)] == [f"ex{i:02d}" for i in range(5)]


def test_an_existing_run_needs_resume_or_overwrite_and_resume_checks_the_options(tmp_path):
    dataset = key_dataset(2)
    run(KeyVictim(), dataset, tmp_path, "mhm")
    with pytest.raises(UserError, match="--resume"):
        run(KeyVictim(), dataset, tmp_path, "mhm")
    with pytest.raises(UserError, match="seed"):
        run(KeyVictim(), dataset, tmp_path, "mhm", resume=True, seed=9)
    _, records = run(KeyVictim(), dataset, tmp_path, "mhm", resume=True)
    assert len(records) == 2
    _, records = run(KeyVictim(), dataset, tmp_path, "mhm", overwrite=True)
    assert len(records) == 2


def test_resuming_with_another_batch_size_warns_that_records_may_differ(tmp_path, capsys):
    class SizedVictim(KeyVictim):
        def __init__(self, batch_size):
            super().__init__()
            self.batch_size = batch_size

        def describe(self):
            return {"batch_size": self.batch_size, "device": "cpu", "dtype": "fp32"}

    dataset = key_dataset(3)
    run(SizedVictim(32), dataset, tmp_path, "mhm", n=1)
    capsys.readouterr()
    run(SizedVictim(32), dataset, tmp_path, "mhm", n=2, resume=True)
    assert "warning" not in capsys.readouterr().err
    _, records = run(SizedVictim(1), dataset, tmp_path, "mhm", n=3, resume=True)
    err = capsys.readouterr().err
    assert "model.victim.batch_size = 32, this run has 1" in err and "near-tie" in err
    assert len(records) == 3


def test_a_partial_last_line_is_cut_off_on_resume(tmp_path):
    dataset = key_dataset(4)
    _, whole = run(KeyVictim(), dataset, tmp_path / "whole", "wir-random")
    path = tmp_path / "cut" / "records.jsonl"
    _, _ = run(KeyVictim(), dataset, tmp_path / "cut", "wir-random", n=2)
    with open(path, "a") as handle:
        handle.write(json.dumps(whole[2])[:50])  # a write interrupted by a crash
    _, resumed = run(KeyVictim(), dataset, tmp_path / "cut", "wir-random", resume=True)
    assert without_timing(resumed) == without_timing(whole)


RESUME_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from attack_support import KeyVictim, key_dataset
    from engine.attacks import registry
    from engine.attacks.environment import make_environment
    from engine.attacks.runner import AttackRunner, RunOptions
    dataset = key_dataset(10)
    victim = KeyVictim(delay_s=float(sys.argv[2]))
    params = registry.params_from_args("mhm")
    search = registry.build_search("mhm", params, make_environment(dataset, victim))
    AttackRunner(victim=victim, dataset=dataset, out=sys.argv[1], search=search,
                 options=RunOptions(attack="mhm", params=params, resume=True, progress=False)).run()
""")


def test_resume_after_sigkill_gives_exactly_the_uninterrupted_run(tmp_path):
    script = tmp_path / "attack.py"
    script.write_text(RESUME_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    _, whole = run(KeyVictim(), key_dataset(10), tmp_path / "whole", "mhm")
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed"), "0.002"], env=env)
    records = tmp_path / "killed" / "records.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not records.exists() or records.read_text().count("\n") < 3):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = read_records(records)
    assert 3 <= len(partial) < 10, "the run was not interrupted mid-way"
    subprocess.run([sys.executable, str(script), str(tmp_path / "killed"), "0"], check=True, env=env)
    resumed = read_records(records)
    assert [r["example_id"] for r in resumed] == [r["example_id"] for r in whole]
    assert without_timing(resumed) == without_timing(whole)


def test_transfer_replays_successes_on_another_victim(tmp_path):
    dataset = key_dataset(4, [Example("plain", "def p(secret, other):\n    return secret + other + secret\n", 0, "python")])
    run(KeyVictim(), dataset, tmp_path / "source", "mhm")
    source = read_records(tmp_path / "source" / "records.jsonl")
    options = RunOptions(attack="mhm", progress=False)
    for victim, expected in ((KeyVictim(), "success"), (ConstantVictim(), "failed")):
        out = tmp_path / f"to-{type(victim).__name__}"
        runner = AttackRunner(victim=victim, dataset=dataset, options=options, out=out,
                              transfer_from=tmp_path / "source")
        summary = runner.run()
        records = read_records(runner.records_path)
        assert len(records) == summary["examples"] == sum(r["status"] == "success" for r in source)
        for record, original in zip(records, source):
            validate_record(record)
            assert record["status"] == expected and record["queries"] == 2
            assert record["adversarial_code"] == original["adversarial_code"]
            assert record["valid_alpha_equivalent"] == original["valid_alpha_equivalent"]
    manifest = json.loads((tmp_path / "to-KeyVictim" / "manifest.json").read_text())
    assert manifest["attack"]["transfer_from"] == str(tmp_path / "source")


def test_manifest_records_attack_params_dataset_seed_budget(tmp_path):
    params = registry.params_class("mhm")(iterations=3, candidates=2)
    run(KeyVictim(), key_dataset(1), tmp_path, "mhm", params, seed=4, budget=100)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["attack"] == {"name": "mhm", "label": None, "params": {"iterations": 3, "candidates": 2,
                                                                           "threshold": 0.95},
                                  "substitutes": None, "transfer_from": None}
    assert manifest["seed"] == 4 and manifest["budget"] == 100 and manifest["shard"] == {"index": 1, "count": 1}
    assert manifest["dataset"]["fingerprint"] == key_dataset(1).fingerprint and manifest["dataset"]["split"] == "test"
    assert manifest["model"]["compression"] == {"method": "none"}
    assert set(manifest) >= {"schema_version", "versions", "machine", "attack_side"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["examples"] == 1 and summary["attacked"] == 1


def pair_dataset():
    first = "def a(rows, limit):\n    kept = rows[:limit]\n    return kept\n"
    second = "def b(items, secret):\n    out = items + secret\n    return out + secret\n"
    examples = [Example("p1", (first, second), 0, "python")]
    from engine.datasets.base import Dataset

    return Dataset(name="pairs", task="clone", language="python", label_names=["a", "b"],
                   splits={"train": examples, "test": examples})


@pytest.mark.parametrize("side,status", [("first", "failed"), ("second", "success"), ("both", "success")])
def test_pairs_attack_the_chosen_side_and_keep_the_other(tmp_path, side, status):
    summary, records = run(KeyVictim(), pair_dataset(), tmp_path, "wir-random", attack_side=side)
    (record,) = records
    validate_record(record)
    assert record["status"] == status
    first, second = pair_dataset().split("test")[0].code
    if status == "success":
        assert record["original_code"] == second and "secret" in record["rename_map"]
        check = check_rename(extract(second, "python"), record["adversarial_code"], record["rename_map"])
        assert check.alpha_equivalent
    else:
        assert record["original_code"] == first
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["attack_side"] == side


def test_mhm_ns_uses_the_datasets_precomputed_substitutes(tmp_path):
    base = key_dataset(3)
    names = {"secret": [" pin", "total", "token"], "data": ["rows"], "values": ["xs"], "limit": ["cap"]}
    examples = [Example(e.id, e.code, e.label, e.language, {"substitutes": names}) for e in base.split("test")]
    dataset = key_dataset(0, examples)
    victim = KeyVictim()
    params = registry.params_from_args("mhm-ns")
    env = make_environment(dataset, victim, substitutes="dataset")
    search = registry.build_search("mhm-ns", params, env)
    runner = AttackRunner(victim=victim, dataset=dataset, search=search, out=tmp_path,
                          options=RunOptions(attack="mhm-ns", params=params, progress=False, substitutes="dataset"))
    runner.run()
    records = read_records(runner.records_path)
    assert [r["status"] for r in records] == ["success"] * 3
    for record in records:
        new = record["rename_map"]["secret"]
        assert new in ("pin", "total", "token") and new not in record["original_code"]  # "total" only where free
    with pytest.raises(UserError, match="no `substitutes` field"):
        make_environment(base, victim, substitutes="dataset").natural_substitutes()


def test_model_names_are_short_and_variants_carry_their_parents_name(tmp_path):
    from engine.attacks.runner import _model_name

    variant = tmp_path / "runs" / "variants" / "prune"
    variant.mkdir(parents=True)
    compression = {"method": "prune", "parent_path": str(tmp_path / "runs" / "tiny")}
    assert _model_name(variant, {}, compression, None) == "tiny-prune"
    assert _model_name(variant, {}, {"method": "none"}, None) == "prune"
    assert _model_name(variant, {"name": "codebert-p40"}, compression, None) == "codebert-p40"
    assert _model_name("microsoft/codebert-base", {}, {"method": "none"}, None) == "microsoft/codebert-base"


def test_the_model_block_carries_a_variants_timing_of_its_parent(tmp_path):
    """The report's only latency for an original comes from its variants' side-by-side measurement."""
    from engine.attacks.runner import model_info

    variant = tmp_path / "variant"
    variant.mkdir()
    (variant / "manifest.json").write_text(json.dumps({
        "fingerprint": "fv", "compression": {"method": "prune", "parent": "fp"}, "latency_ms_batch1": 2.0,
        "measurement": {"parent": {"fingerprint": "fp", "latency_ms_batch1": 5.0, "throughput_per_s": 300.0,
                                   "test_metrics": {"accuracy": 0.5}}}}))
    original = tmp_path / "original"
    original.mkdir()
    (original / "manifest.json").write_text(json.dumps({"fingerprint": "fp"}))
    block = model_info(variant, ConstantVictim([0.5, 0.5]))
    assert block["measurement"] == {"parent": {"fingerprint": "fp", "latency_ms_batch1": 5.0, "throughput_per_s": 300.0}}
    assert model_info(original, ConstantVictim([0.5, 0.5]))["measurement"] is None
