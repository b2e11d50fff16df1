"""Cross-example batching: K examples take turns, their victim calls merge, and the records match a sequential run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attack_support import HashVictim, KeyVictim, key_dataset
from engine.attacks import registry
from engine.attacks.environment import make_environment
from engine.attacks.interleave import interleaved
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions
from engine.datasets.base import Dataset, Example
from engine.errors import UserError
from engine.models import scratch_config, train_bpe_tokenizer
from engine.victim import Victim

TIMING = ("wall_time_s", "victim_time_s")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(victim, dataset, out, attack="mhm", **options):
    params = registry.params_from_args(attack)
    env = make_environment(dataset, victim, seed=0)
    runner = AttackRunner(victim=victim, dataset=dataset, out=out, search=registry.build_search(attack, params, env),
                          options=RunOptions(attack=attack, params=params, progress=False, **options))
    runner.run()
    return runner, read_records(runner.records_path)


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


@pytest.mark.parametrize("attack", ["mhm", "wir-random", "random"])
def test_interleaved_runs_give_the_sequential_records(tmp_path, attack):
    dataset = key_dataset(7)
    _, sequential = run(KeyVictim(), dataset, tmp_path / "one", attack)
    victim = KeyVictim()
    runner, together = run(victim, dataset, tmp_path / "three", attack, interleave=3)
    assert without_timing(together) == without_timing(sequential)
    assert [r["status"] for r in together] == ["success"] * 7
    assert runner.victim is victim  # the per-thread views are gone
    assert victim.counters().queries == sum(r["queries"] for r in together)
    assert runner.manifest()["interleave"] == 3


def test_a_failing_job_raises_in_order_and_stops_the_others():
    class Runner:
        victim = None

    runner = Runner()
    real = runner.victim = HashVictim()
    calls = []

    def job(i):
        def attack():
            for _ in range(3):
                calls.append(i)
                runner.victim.predict_proba([f"program {i} {len(calls)}"])
            if i == 2:
                raise ValueError("example 2 broke")
            return i
        return attack

    results = interleaved(runner, [job(i) for i in range(6)], 3)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="example 2 broke"):
        next(results)
    results.close()
    assert runner.victim is real
    assert calls[:9] == [0, 1, 2] * 3  # turns taken round-robin, one victim call each
    # Workers still running when the error arrives may have asked (appended to `calls`) without
    # their request being run before the cancel: every query counted was asked, none twice.
    assert 9 <= real.counters().queries <= len(calls)


def test_grouped_victim_calls_match_separate_calls_and_split_the_counters():
    tokenizer = train_bpe_tokenizer(["def f(a, b):\n    return a + b\n", "x = [i * i for i in range(9)]"] * 4,
                                    vocab_size=300, max_length=32)
    from transformers import RobertaForSequenceClassification

    torch.manual_seed(0)
    model = RobertaForSequenceClassification(scratch_config("tiny", vocab_size=len(tokenizer), max_length=32,
                                                            tokenizer=tokenizer, num_labels=2, initializer_range=0.3))
    victim = Victim(model.eval(), tokenizer, batch_size=4)
    groups = [["def f(a): return a", "x = 1", "x = 1"], ["y = 2", "def f(a): return a"], ["z = 3 + 4 * 5"]]
    alone = [Victim(model, tokenizer, batch_size=4, cache_size=0).predict_proba(g) for g in groups]
    rows, shares = victim.predict_proba_groups(groups)
    for mine, expected in zip(rows, alone):
        np.testing.assert_allclose(mine, expected, atol=1e-5, rtol=0)
    assert [s.queries for s in shares] == [3, 2, 1]
    assert [s.forward_passes for s in shares] == [2, 1, 1]  # duplicates and the program group 0 asked first
    assert [s.cache_hits for s in shares] == [1, 1, 0]
    total = victim.counters()
    assert total.queries == 6 and total.forward_passes == 4 and total.batches == 1
    assert sum(s.model_seconds for s in shares) == pytest.approx(total.model_seconds)
    assert sum(s.victim_seconds for s in shares) == pytest.approx(total.victim_seconds)


def test_interleaving_a_real_victim_keeps_the_records(tmp_path):
    programs = [f"def fn{i}(alpha, beta):\n    total = alpha * {i}\n    for item in range(beta):\n"
                f"        total += item - {i}\n    return total\n" for i in range(8)]
    tokenizer = train_bpe_tokenizer(programs * 2, vocab_size=400, max_length=64)
    from transformers import RobertaForSequenceClassification

    torch.manual_seed(3)
    model = RobertaForSequenceClassification(scratch_config("tiny", vocab_size=len(tokenizer), max_length=64,
                                                            tokenizer=tokenizer, num_labels=2, initializer_range=0.3))
    victim = Victim(model.eval(), tokenizer, batch_size=64)
    labels = victim.predict(programs)  # every example starts correctly classified
    examples = [Example(id=f"e{i}", code=code, label=int(label), language="python")
                for i, (code, label) in enumerate(zip(programs, labels))]
    dataset = Dataset(name="real", task="classification", language="python", label_names=["a", "b"],
                      splits={"train": examples, "test": examples})
    _, sequential = run(Victim(model, tokenizer, batch_size=64), dataset, tmp_path / "one", "mhm")
    _, together = run(Victim(model, tokenizer, batch_size=64), dataset, tmp_path / "four", "mhm", interleave=4)
    for a, b in zip(sequential, together):
        for key in a:
            if key in ("original_probability", "adversarial_probability") and a[key] is not None:
                assert b[key] == pytest.approx(a[key], abs=1e-5)
            elif key not in TIMING:
                assert a[key] == b[key], (a["example_id"], key)
    assert sum(r["queries"] for r in together) > 8


def test_interleave_must_be_positive():
    with pytest.raises(UserError, match="--interleave"):
        RunOptions(attack="mhm", interleave=0).check()
