"""The victim: batching, heads, pairs, label maps, normalisation, cache and query accounting."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from engine.errors import UserError
from engine.manifest import write_manifest
from engine.models import build_classifier, save_model, scratch_config, train_bpe_tokenizer
from engine.victim import Victim, VictimCounters, normalize_text, parse_label_map

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def total(values):\n    result = 0\n    for value in values:\n        result += value\n    return result\n",
    "def greet(name):\n    print('hello ' + name)\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.items.append(item)\n",
    "def find(items, target):\n    for index, item in enumerate(items):\n        if item == target:\n            return index\n    return -1\n",
    "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n",
    "import os\n\ndef listing(path):\n    return sorted(os.listdir(path))\n",
    "def fib(n):\n    a, b = 0, 1\n    while n > 0:\n        a, b = b, a + b\n        n -= 1\n    return a\n",
    "def f(x): return x",
    "x = 1",
    "def read(path):\n    with open(path) as handle:\n        return handle.read().splitlines()\n" * 3,
    "def long_one(a):\n" + "".join(f"    a = a * {i} + {i + 1}\n" for i in range(40)) + "    return a\n",
]
MAX_LENGTH = 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(CORPUS * 2, vocab_size=400, max_length=MAX_LENGTH)


def tiny_model(tokenizer, num_labels: int, seed: int = 0):
    from transformers import RobertaForSequenceClassification

    torch.manual_seed(seed)
    config = scratch_config("tiny", vocab_size=len(tokenizer), max_length=MAX_LENGTH, tokenizer=tokenizer,
                            num_labels=num_labels, initializer_range=0.3)  # spread-out outputs
    config.id2label = {i: f"class{i}" for i in range(num_labels)}
    config.label2id = {name: i for i, name in config.id2label.items()}
    return RobertaForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def model3(tokenizer):
    return tiny_model(tokenizer, 3)


def one_by_one(model, tokenizer, codes):
    victim = Victim(model, tokenizer, batch_size=1, cache_size=0, max_length=MAX_LENGTH)
    return np.stack([victim.predict_proba([code])[0] for code in codes])


def manual_logits(model, tokenizer, code):
    args = code if isinstance(code, tuple) else (code,)
    batch = tokenizer(*args, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits[0].double()


def test_batched_equals_one_by_one_for_any_batch_size_and_order(tokenizer, model3):
    expected = one_by_one(model3, tokenizer, CORPUS)
    assert expected.shape == (len(CORPUS), 3)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-9)
    for batch_size in (2, 3, 5, 64):
        victim = Victim(model3, tokenizer, batch_size=batch_size, cache_size=0, max_length=MAX_LENGTH)
        np.testing.assert_allclose(victim.predict_proba(CORPUS), expected, atol=1e-5, rtol=0)
    order = list(range(len(CORPUS)))
    random.Random(3).shuffle(order)
    victim = Victim(model3, tokenizer, batch_size=4, cache_size=0, max_length=MAX_LENGTH)
    np.testing.assert_allclose(victim.predict_proba([CORPUS[i] for i in order]), expected[order], atol=1e-5, rtol=0)
    # the unoptimised paths (no bucketing, padding to max_length) agree too
    naive = Victim(model3, tokenizer, batch_size=4, cache_size=0, max_length=MAX_LENGTH, bucketing=False,
                   padding="max_length")
    np.testing.assert_allclose(naive.predict_proba(CORPUS), expected, atol=1e-5, rtol=0)


def test_softmax_head_matches_the_model_logits(tokenizer, model3):
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH)
    probs = victim.predict_proba(CORPUS[:4])
    for row, code in zip(probs, CORPUS[:4]):
        np.testing.assert_allclose(row, torch.softmax(manual_logits(model3, tokenizer, code), -1).numpy(), atol=1e-6)
    assert victim.head == "softmax" and victim.label_names == ["class0", "class1", "class2"]
    assert list(victim.predict(CORPUS[:4])) == list(probs.argmax(axis=1))


def test_single_logit_head_gives_one_minus_p_and_p(tokenizer):
    model = tiny_model(tokenizer, 1, seed=1)
    victim = Victim(model, tokenizer, max_length=MAX_LENGTH, batch_size=3)
    probs = victim.predict_proba(CORPUS)
    assert probs.shape == (len(CORPUS), 2) and victim.head == "sigmoid" and victim.num_labels == 2
    for row, code in zip(probs, CORPUS):
        p = torch.sigmoid(manual_logits(model, tokenizer, code)[0]).item()
        np.testing.assert_allclose(row, [1 - p, p], atol=1e-6)
    np.testing.assert_allclose(probs, one_by_one(model, tokenizer, CORPUS), atol=1e-5)
    assert victim.label_names == ["0", "1"]
    swapped = Victim(model, tokenizer, max_length=MAX_LENGTH, label_map=[1, 0])
    np.testing.assert_allclose(swapped.predict_proba(CORPUS), probs[:, ::-1], atol=1e-6)


def test_pairs_are_encoded_as_the_tokenizer_pairs_them_and_share_the_budget(tokenizer, model3):
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH, batch_size=2)
    pairs = [(CORPUS[0], CORPUS[1]), (CORPUS[1], CORPUS[0]), (CORPUS[10], CORPUS[11]), (CORPUS[8], CORPUS[9])]
    probs = victim.predict_proba(pairs)
    for row, pair in zip(probs, pairs):
        np.testing.assert_allclose(row, torch.softmax(manual_logits(model3, tokenizer, pair), -1).numpy(), atol=1e-5)
    assert not np.allclose(probs[0], probs[1])  # order inside a pair matters to the model
    # two long programs: truncated to the budget, both halves kept, separated as RoBERTa does
    (encoded,) = victim.encode([pairs[2]])
    ids = encoded["input_ids"]
    assert len(ids) == MAX_LENGTH and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    separators = [i for i, t in enumerate(ids) if t == tokenizer.sep_token_id]
    assert len(separators) == 3 and 20 < separators[0] < MAX_LENGTH - 20
    # a mixed call (programs and pairs) keeps rows in request order
    mixed = victim.predict_proba([CORPUS[2], pairs[0], CORPUS[3]])
    np.testing.assert_allclose(mixed[1], probs[0], atol=1e-5)
    np.testing.assert_allclose(mixed[[0, 2]], one_by_one(model3, tokenizer, [CORPUS[2], CORPUS[3]]), atol=1e-5)


def test_label_map_reorders_classes_by_index_or_name(tokenizer, model3):
    base = Victim(model3, tokenizer, max_length=MAX_LENGTH).predict_proba(CORPUS)
    mapped = Victim(model3, tokenizer, max_length=MAX_LENGTH, label_map=[2, 0, 1])
    np.testing.assert_allclose(mapped.predict_proba(CORPUS), base[:, [2, 0, 1]], atol=1e-12)
    assert mapped.label_names == ["class2", "class0", "class1"]
    assert mapped.describe()["label_map"] == [2, 0, 1]
    by_name = Victim(model3, tokenizer, max_length=MAX_LENGTH, label_map=parse_label_map("class2,class0,class1"))
    np.testing.assert_allclose(by_name.predict_proba(CORPUS), base[:, [2, 0, 1]], atol=1e-12)
    for bad in ([0, 1], [0, 0, 1], [0, 1, 3], ["nope", 0, 1]):
        with pytest.raises(UserError):
            Victim(model3, tokenizer, max_length=MAX_LENGTH, label_map=bad)


def test_normalisation_is_declared_recorded_and_keys_the_cache(tokenizer, model3):
    spaced = "def f(x):\n    return   x\n\n"
    flat = "def f(x): return x"
    assert normalize_text(spaced, "whitespace") == flat
    plain = Victim(model3, tokenizer, max_length=MAX_LENGTH)
    assert plain.describe()["normalize"] == "none"
    plain.predict_proba([spaced, flat])
    assert plain.counters().forward_passes == 2
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH, normalize="whitespace")
    described = victim.describe()
    assert described["normalize"] == "whitespace" and "collapsed" in described["normalize_description"]
    first = victim.predict_proba([spaced])
    second = victim.predict_proba([flat])
    np.testing.assert_allclose(first, second, atol=0)
    assert victim.counters().queries == 2 and victim.counters().forward_passes == 1
    with pytest.raises(UserError):
        Victim(model3, tokenizer, normalize="lowercase")


def test_cached_queries_count_as_queries_but_not_as_forward_passes(tokenizer, model3):
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH, batch_size=2)
    a, b, c, d = CORPUS[:4]
    fresh = victim.predict_proba([a, b])
    assert (victim.counters().queries, victim.counters().forward_passes, victim.counters().cache_hits) == (2, 2, 0)
    again = victim.predict_proba([a, b, c])
    np.testing.assert_array_equal(again[:2], fresh)  # cached rows are the same numbers
    assert (victim.counters().queries, victim.counters().forward_passes, victim.counters().cache_hits) == (5, 3, 2)
    victim.predict_proba([d, d, d])  # duplicates inside one call run once
    counters = victim.counters()
    assert (counters.queries, counters.forward_passes, counters.cache_hits) == (8, 4, 4)
    assert counters.hit_rate == pytest.approx(0.5)
    assert counters.batches == 3 and counters.model_seconds > 0 and counters.victim_seconds >= counters.model_seconds
    assert victim.cache_entries == 4


def test_programs_differing_only_past_the_cut_share_one_forward_pass(tokenizer, model3):
    head = CORPUS[11]  # longer than MAX_LENGTH tokens on its own
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH)
    assert victim.untruncated_lengths([head])[0] > MAX_LENGTH
    tails = [head + f"\nresult_{i} = long_one({i})\n" for i in range(3)]
    probs = victim.predict_proba(tails)
    assert (victim.counters().queries, victim.counters().forward_passes) == (3, 1)
    np.testing.assert_array_equal(probs[0], probs[2])
    victim.predict_proba([head])  # a new program, an input already run: token cache
    assert (victim.counters().queries, victim.counters().forward_passes) == (4, 1)
    short = Victim(model3, tokenizer, max_length=MAX_LENGTH, cache_size=0)
    short.predict_proba([CORPUS[0], CORPUS[0].replace("a", "c")])  # within the window: two inputs
    assert short.counters().forward_passes == 2
    short.predict_proba(tails)  # cache off: duplicates inside one call still run once
    assert short.counters().forward_passes == 3
    expected = one_by_one(model3, tokenizer, tails[:1])
    np.testing.assert_allclose(probs[:1], expected, atol=1e-6)
    every = Victim(model3, tokenizer, max_length=MAX_LENGTH, cache_size=0, dedupe=False)  # the benchmark's naive path
    np.testing.assert_allclose(every.predict_proba(tails + tails[:1]), np.vstack([probs, probs[:1]]), atol=1e-6)
    assert (every.counters().queries, every.counters().forward_passes, every.counters().cache_hits) == (4, 4, 0)
    with pytest.raises(UserError, match="cache_size=0"):
        Victim(model3, tokenizer, max_length=MAX_LENGTH, dedupe=False)


def test_cache_is_lru_with_a_size_limit_and_can_be_disabled(tokenizer, model3):
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH, cache_size=2)
    a, b, c = CORPUS[:3]
    victim.predict_proba([a])
    victim.predict_proba([b])
    victim.predict_proba([a])  # a is now the most recently used
    victim.predict_proba([c])  # evicts b
    assert victim.cache_entries == 2
    before = victim.counters().forward_passes
    victim.predict_proba([a])
    assert victim.counters().forward_passes == before
    victim.predict_proba([b])
    assert victim.counters().forward_passes == before + 1
    off = Victim(model3, tokenizer, max_length=MAX_LENGTH, cache_size=0)
    off.predict_proba([a])
    off.predict_proba([a])
    assert off.counters().forward_passes == 2 and off.cache_entries == 0


def test_counters_snapshot_subtract_and_reset(tokenizer, model3):
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH)
    victim.predict_proba(CORPUS[:3])
    start = victim.counters()
    victim.predict_proba(CORPUS[2:5])
    interval = victim.counters() - start
    assert (interval.queries, interval.forward_passes, interval.cache_hits) == (3, 2, 1)
    assert isinstance(interval, VictimCounters) and interval.model_seconds >= 0
    before = victim.reset_counters()
    assert before.queries == 6
    assert victim.counters() == VictimCounters()
    assert victim.counters().hit_rate == 0.0
    victim.predict_proba([CORPUS[0]])  # the cache survives a reset: a hit, no forward pass
    assert (victim.counters().queries, victim.counters().forward_passes) == (1, 0)
    assert set(victim.counters().to_json()) >= {"queries", "forward_passes", "cache_hits", "model_seconds", "hit_rate"}


def test_inputs_and_options_are_checked(tokenizer, model3):
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH)
    assert victim.predict_proba([]).shape == (0, 3)
    assert victim.predict_proba("def f(): pass").shape == (1, 3)
    with pytest.raises(UserError):
        victim.predict_proba([("only one",)])
    with pytest.raises(UserError):
        Victim(model3, tokenizer, max_length=MAX_LENGTH + 1)
    with pytest.raises(UserError):
        Victim(model3, tokenizer, batch_size=0)
    with pytest.raises(UserError):
        Victim(model3, tokenizer, dtype="fp16", device="cpu")
    with pytest.raises(UserError):
        Victim(model3, tokenizer, dtype="int4")
    assert Victim(model3, tokenizer).max_length == MAX_LENGTH  # default: the model's own limit
    assert max(victim.token_lengths(CORPUS)) == MAX_LENGTH


def test_device_auto_and_bf16(tokenizer):
    from engine.device import resolve_device

    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    model = tiny_model(tokenizer, 3, seed=2)
    reference = Victim(model, tokenizer, max_length=MAX_LENGTH, device="cpu").predict_proba(CORPUS[:4])
    half = Victim(tiny_model(tokenizer, 3, seed=2), tokenizer, max_length=MAX_LENGTH, device="cpu", dtype="bf16")
    assert half.describe()["dtype"] == "bf16"
    np.testing.assert_allclose(half.predict_proba(CORPUS[:4]), reference, atol=0.05)


def test_loads_a_saved_directory_with_its_manifest(tmp_path, tokenizer, model3):
    save_model(model3, tokenizer, tmp_path)
    write_manifest(tmp_path, {"kind": "classifier", "label_names": ["red", "green", "blue"],
                              "hyperparameters": {"max_length": 32}}, model=model3)
    victim = Victim.load(tmp_path, batch_size=4)
    assert victim.max_length == 32 and victim.label_names == ["red", "green", "blue"]
    direct = Victim(model3, tokenizer, max_length=32)
    np.testing.assert_allclose(victim.predict_proba(CORPUS), direct.predict_proba(CORPUS), atol=1e-6)
    with pytest.raises(UserError):
        Victim.load(tmp_path / "missing")


def test_minilm_loads_offline_and_classifies(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    model, tokenizer, info = build_classifier("minilm", label_names=["no", "yes"], max_length=64)
    assert info["kind"] == "minilm" and model.config.model_type == "bert"
    assert tokenizer.tokenize("Foo") == ["foo"]  # uncased WordPiece
    victim = Victim(model, tokenizer, max_length=64, batch_size=2)
    probs = victim.predict_proba([CORPUS[0], CORPUS[1], (CORPUS[0], CORPUS[2])])
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    (pair,) = victim.encode([(CORPUS[0], CORPUS[2])])
    assert set(pair["token_type_ids"]) == {0, 1}
    np.testing.assert_allclose(probs[:2], one_by_one_minilm(model, tokenizer), atol=1e-5)


def one_by_one_minilm(model, tokenizer):
    victim = Victim(model, tokenizer, max_length=64, batch_size=1, cache_size=0)
    return np.stack([victim.predict_proba([code])[0] for code in CORPUS[:2]])


def test_embed_is_the_encoders_mean_hidden_state_counted_and_cached(model3, tokenizer):
    victim = Victim(model3, tokenizer, max_length=MAX_LENGTH, batch_size=2, device="cpu")
    codes = CORPUS[:5] + [CORPUS[0]]  # a duplicate: one forward pass
    vectors = victim.embed(codes)
    assert vectors.shape == (6, model3.config.hidden_size) and vectors.dtype == np.float32
    encoded = tokenizer(codes[1], truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    with torch.inference_mode():
        hidden = model3(**encoded, output_hidden_states=True).hidden_states[-1][0]
    np.testing.assert_allclose(vectors[1], hidden.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(vectors[0], vectors[5])
    counted = victim.counters()
    assert (counted.queries, counted.forward_passes, counted.cache_hits, counted.embeddings) == (6, 5, 1, 6)
    assert counted.batches == 3  # 5 distinct inputs in batches of 2
    victim.embed(codes[:2])  # cached: counted as queries, no forward pass
    assert (victim.counters() - counted).queries == 2 and (victim.counters() - counted).forward_passes == 0
    half = Victim(tiny_model(tokenizer, 3), tokenizer, max_length=MAX_LENGTH, device="cpu", dtype="bf16").embed(codes[:2])
    np.testing.assert_allclose(half, vectors[:2], atol=0.1)  # computed in the victim's dtype, returned as float32


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("width", [None, MAX_LENGTH])
def test_pad_batch_equals_the_tokenizers_own_padding(tokenizer, side, width):
    """The hand-written padder (kept for speed, see its docstring) must give what `tokenizer.pad` gives."""
    from engine.victim import pad_batch

    encoded = [dict(tokenizer(code, truncation=True, max_length=MAX_LENGTH)) for code in CORPUS]
    tokenizer.padding_side = side
    try:
        expected = tokenizer.pad(encoded, padding="max_length" if width else "longest", max_length=width,
                                 return_tensors="pt")
        padded = pad_batch(tokenizer, encoded, width)
    finally:
        tokenizer.padding_side = "right"
    assert set(padded) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(padded[name], tensor), name
