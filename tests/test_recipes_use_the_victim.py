"""Every registered recipe runs the victim's model only through the victim (`predict_proba`,
`embed`), so `queries` and `forward_passes` count everything it spends and `--budget` bounds it.

A real (tiny, untrained) classifier; a forward pre-hook on every one of its modules records any
module that runs while no victim method is on the stack. Labels are the victim's own predictions,
so every example is attacked and CODA finds correctly classified references of both labels.
"""
from __future__ import annotations

import pytest
import torch

from attack_support import key_dataset, with_references
from engine.attacks import registry
from engine.attacks.environment import make_environment
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions
from engine.attacks.sources import RandomNamePool
from engine.datasets.base import Example
from engine.models import scratch_config, train_bpe_tokenizer
from engine.victim import Victim

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VICTIM_METHODS = ("predict_proba", "embed", "predict_proba_groups")  # every way the victim runs its model


class Watch:
    """Wraps the victim's model-running methods and hooks every module of its model."""

    def __init__(self, victim: Victim) -> None:
        self.depth = 0
        self.inside = 0
        self.outside: list[str] = []
        for name in VICTIM_METHODS:
            if hasattr(victim, name):
                setattr(victim, name, self._wrap(getattr(victim, name)))
        self.handles = [module.register_forward_pre_hook(self._hook(name or "model"))
                        for name, module in victim.model.named_modules()]

    def _wrap(self, method):
        def wrapped(*args, **kwargs):
            self.depth += 1
            try:
                return method(*args, **kwargs)
            finally:
                self.depth -= 1
        return wrapped

    def _hook(self, name: str):
        def hook(module, inputs):
            if self.depth:
                self.inside += 1
            else:
                self.outside.append(name)
        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def relabelled(victim: Victim) -> object:
    """The stand-in dataset with every label replaced by the victim's prediction."""
    dataset = with_references(key_dataset(4))
    for split, examples in dataset.splits.items():
        labels = victim.predict([e.code for e in examples])
        dataset.splits[split] = [Example(e.id, e.code, int(label), e.language, meta=e.meta)
                                 for e, label in zip(examples, labels)]
    return dataset


@pytest.fixture(scope="module")
def victim():
    torch.manual_seed(3)
    codes = [e.code for split in with_references(key_dataset(4)).splits.values() for e in split]
    tokenizer = train_bpe_tokenizer(codes * 3, vocab_size=300, max_length=96)
    from transformers import RobertaForSequenceClassification

    config = scratch_config("tiny", vocab_size=len(tokenizer), max_length=96, tokenizer=tokenizer, num_labels=2,
                            initializer_range=0.3)
    model = RobertaForSequenceClassification(config).eval()
    made = Victim(model, tokenizer, max_length=96, device="cpu", batch_size=16)
    train = made.predict([e.code for e in with_references(key_dataset(4)).split("train")])
    assert len(set(train.tolist())) == 2, "the tiny model must predict both labels on the train split"
    return made


def test_the_watch_sees_a_model_run_outside_the_victim(victim):
    watch = Watch(victim)
    try:
        ids = torch.tensor([[victim.tokenizer.cls_token_id, victim.tokenizer.sep_token_id]])
        with torch.inference_mode():
            victim.model(input_ids=ids)
        victim.predict_proba(["def f(x):\n    return x\n"])
    finally:
        watch.close()
    assert watch.outside and watch.outside[0] == "model"


@pytest.mark.parametrize("attack", tuple(registry.RECIPES))
def test_every_recipe_runs_the_model_only_through_the_victim(tmp_path, victim, attack):
    dataset = relabelled(victim)
    victim.clear_cache()
    before = victim.counters()
    watch = Watch(victim)
    try:
        params = registry.params_from_args(attack)
        env = make_environment(dataset, victim, natural=RandomNamePool.for_dataset(dataset, "python"))
        runner = AttackRunner(victim=victim, dataset=dataset, out=tmp_path, search=registry.build_search(attack, params, env),
                              options=RunOptions(attack=attack, params=params, budget=25, progress=False, fail_fast=True,
                                                 compile_check=False))
        runner.run()
    finally:
        watch.close()
    assert not watch.outside, f"{attack} ran {sorted(set(watch.outside))[:5]} outside the victim"
    records = read_records(runner.records_path)
    attacked = [r for r in records if r["status"] in ("success", "failed")]
    assert attacked, "no example was attacked: the test would prove nothing"
    assert all(r["queries"] <= 25 for r in records)
    spent = victim.counters() - before
    assert sum(r["queries"] for r in records) <= spent.queries  # run-level preparation (CODA's references) adds
    if attack == "coda":
        assert spent.embeddings >= len(attacked)  # each target's embedding went through the victim, counted
