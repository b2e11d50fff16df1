"""Forward-pass backends: every one agrees with the model's own forward; `auto` picks `fast` only where it is exact."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import backends
from engine.backends import FastEncoder, make_forward
from engine.errors import UserError
from engine.models import scratch_config, train_bpe_tokenizer
from engine.victim import Victim

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def total(values):\n    result = 0\n    for value in values:\n        result += value\n    return result\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.items.append(item)\n",
    "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n",
    "x = 1",
    "def long_one(a):\n" + "".join(f"    a = a * {i} + {i + 1}\n" for i in range(40)) + "    return a\n",
]
PAIRS = [(CORPUS[0], CORPUS[1]), (CORPUS[5], CORPUS[3])]
MAX_LENGTH = 64

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(CORPUS * 2, vocab_size=400, max_length=MAX_LENGTH)


def roberta(tokenizer, num_labels: int, seed: int = 0):
    from transformers import RobertaForSequenceClassification

    torch.manual_seed(seed)
    config = scratch_config("tiny", vocab_size=len(tokenizer), max_length=MAX_LENGTH, tokenizer=tokenizer,
                            num_labels=num_labels, initializer_range=0.3)
    return RobertaForSequenceClassification(config).eval()


def bert(num_labels: int = 3):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(1)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, num_labels=num_labels,
                        initializer_range=0.3)
    return BertForSequenceClassification(config).eval()


@pytest.mark.parametrize("num_labels", [3, 1])
def test_every_backend_agrees_with_the_models_own_forward(tokenizer, num_labels):
    model = roberta(tokenizer, num_labels)
    inputs = [*CORPUS, *PAIRS]
    reference = Victim(model, tokenizer, backend="hf", cache_size=0, batch_size=3).predict_proba(inputs)
    assert reference.std(axis=0).max() > 0.01  # outputs spread out: a wrong layout could not hide
    for backend in ("fast", "hf-eager", "auto"):
        victim = Victim(model, tokenizer, backend=backend, cache_size=0, batch_size=3)
        np.testing.assert_allclose(victim.predict_proba(inputs), reference, atol=1e-5, rtol=0)
        assert victim.describe()["backend"] == ("fast" if backend == "auto" else backend)
    one_by_one = Victim(model, tokenizer, backend="fast", cache_size=0, batch_size=1)
    np.testing.assert_allclose(one_by_one.predict_proba(inputs), reference, atol=1e-5, rtol=0)


def test_fast_covers_bert_with_token_types_and_its_pooler():
    model = bert()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 120, (4, 20), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    mask[3, 5:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, 10:] = 1
    tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    with torch.inference_mode():
        expected = model(**tensors).logits
        fast = make_forward(model, "fast", torch.device("cpu"))
        assert fast.backend == "fast"
        torch.testing.assert_close(fast(tensors), expected, atol=1e-5, rtol=1e-5)


def test_auto_falls_back_to_hf_where_fast_cannot_run_and_fast_says_why(tokenizer):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    other = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=1,
                                                                 n_heads=2, hidden_dim=64, pad_token_id=1)).eval()
    victim = Victim(other, tokenizer, cache_size=0)
    assert victim.describe()["backend"] == "hf" and "DistilBert" in victim.describe()["backend_note"]
    with pytest.raises(UserError, match="--backend fast: .*use --backend hf"):
        Victim(other, tokenizer, backend="fast")
    quantized = torch.ao.quantization.quantize_dynamic(roberta(tokenizer, 3), {torch.nn.Linear}, dtype=torch.qint8)
    victim = Victim(quantized, tokenizer, cache_size=0)
    assert victim.describe()["backend"] == "hf" and "quantized" in victim.describe()["backend_note"]
    with pytest.raises(UserError, match="--backend"):
        Victim(roberta(tokenizer, 3), tokenizer, backend="turbo")


def test_a_fast_path_that_disagrees_is_refused(tokenizer, monkeypatch):
    original = backends._Layer.__call__
    monkeypatch.setattr(backends._Layer, "__call__", lambda self, hidden, mask: original(self, hidden, mask) * 1.5)
    model = roberta(tokenizer, 3)
    victim = Victim(model, tokenizer, cache_size=0)
    assert victim.describe()["backend"] == "hf" and "differs from the model's own forward" in victim.describe()["backend_note"]
    with pytest.raises(UserError, match="differs from the model's own forward"):
        Victim(model, tokenizer, backend="fast")


def test_fast_follows_weights_changed_in_place_hooks_and_training_mode(tokenizer):
    model = roberta(tokenizer, 3)
    fast = Victim(model, tokenizer, cache_size=0)
    hf = Victim(model, tokenizer, cache_size=0, backend="hf")
    assert fast.describe()["backend"] == "fast"
    before = fast.predict_proba(CORPUS)
    with torch.no_grad():  # what an optimizer step does between two validations
        for parameter in model.parameters():
            parameter.mul_(0.9).add_(0.01)
    after = fast.predict_proba(CORPUS)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, hf.predict_proba(CORPUS), atol=1e-5, rtol=0)

    layer = model.roberta.encoder.layer[0].output
    handle = layer.register_forward_hook(lambda module, args, output: output * 0)
    try:
        np.testing.assert_allclose(fast.predict_proba(CORPUS), hf.predict_proba(CORPUS), atol=1e-5, rtol=0)
    finally:
        handle.remove()
    model.train()  # dropout on: the model's own forward runs, as it did before `fast` existed
    try:
        torch.manual_seed(5)
        dropped = fast.predict_proba(CORPUS)
        torch.manual_seed(5)
        np.testing.assert_allclose(dropped, hf.predict_proba(CORPUS), atol=1e-5, rtol=0)
        assert np.abs(dropped - after).max() > 1e-4
    finally:
        model.eval()
    np.testing.assert_allclose(fast.predict_proba(CORPUS), after, atol=1e-5, rtol=0)


def test_bf16_fast_runs_and_stays_close():
    model = bert().to(torch.bfloat16)
    ids = torch.randint(1, 120, (2, 16), generator=torch.Generator().manual_seed(2))
    tensors = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    with torch.inference_mode():
        mine = FastEncoder(model)(tensors).float()
        theirs = model(**tensors).logits.float()
    assert mine.dtype == torch.float32 and float((mine - theirs).abs().max()) < 0.1


def test_the_backend_option_is_on_classifier_commands_only():
    from engine import cli

    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("attack", "eval", "train", "compress"):
        option = {opt for action in commands[name]._actions for opt in action.option_strings}
        assert "--backend" in option, name
    for name in ("pretrain-mlm", "substitutes"):
        option = {opt for action in commands[name]._actions for opt in action.option_strings}
        assert "--backend" not in option and "--device" in option, name
