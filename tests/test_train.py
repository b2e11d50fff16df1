"""Training, metrics, manifests, tokenizers, MLM pre-training and the `engine train|eval` commands."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.datasets.base import Dataset, Example
from engine.errors import UserError
from engine.common.metrics import classification_metrics
from engine.manifest import read_manifest, verify_files
from engine.models import SPECIAL_TOKENS, train_bpe_tokenizer
from engine.train import TrainConfig, epoch_batches, train
from engine.victim import Victim

TEMPLATES = {
    0: "def {f}({a}, {b}):\n    total = 0\n    for {i} in range({a}):\n        total += {i} * {b}\n    return total\n",
    1: "def {f}({a}):\n    while {a} > 0:\n        {a} -= 1\n    return {a}\n",
    2: "def {f}({a}, {b}):\n    return '{{}} {{}}'.format({a}, {b}).upper()\n",
}
NAMES = ["x", "y", "count", "value", "item", "node", "left", "right", "size", "data", "key", "acc"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_dataset(per_class: int = 16, num_labels: int = 3, name: str = "synthetic") -> Dataset:
    rng = random.Random(0)
    examples = []
    for label in range(num_labels):
        for k in range(per_class):
            a, b, i = rng.sample(NAMES, 3)
            code = TEMPLATES[label].format(f=f"fn_{label}_{k}", a=a, b=b, i=i)
            examples.append(Example(id=f"s{label}-{k}", code=code, label=label, language="python"))
    rng.shuffle(examples)
    n = len(examples)
    splits = {"train": examples[: n * 2 // 3], "valid": examples[n * 2 // 3: n * 5 // 6], "test": examples[n * 5 // 6:]}
    return Dataset(name=name, task="classification", language="python",
                   label_names=["loop", "while", "format"][:num_labels], splits=splits, manifest={"source": "test"})


def tiny_config(**overrides) -> TrainConfig:
    values = dict(base="scratch:tiny", epochs=2, batch_size=8, lr=2e-3, max_length=48, patience=0, seed=7,
                  vocab_size=350, eval_batch_size=16, device="cpu")
    values.update(overrides)
    return TrainConfig(**values)


def quiet(_message: str) -> None:
    pass


# --------------------------------------------------------------------------- metrics


def test_metrics_on_a_known_binary_case():
    metrics = classification_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], 2)
    assert metrics["average"] == "binary" and metrics["positive_label"] == 1
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["confusion"] == [[1, 1], [1, 2]]
    nothing_predicted = classification_metrics([1, 0], [0, 0], 2)
    assert nothing_predicted["precision"] == 0.0 and nothing_predicted["f1"] == 0.0


def test_metrics_on_a_known_multiclass_case():
    metrics = classification_metrics([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert metrics["average"] == "macro"
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert metrics["recall"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    assert metrics["f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_metrics_agree_with_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for num_labels, n in ((2, 50), (5, 80), (7, 15)):
        gold = rng.integers(0, num_labels, n)
        pred = np.where(rng.random(n) < 0.5, gold, rng.integers(0, num_labels, n))
        if num_labels == 7:
            gold[gold == 6] = 5  # a class absent from gold (maybe predicted) and one absent from both
            pred[pred == 6] = 0
        ours = classification_metrics(gold, pred, num_labels)
        average = "binary" if num_labels == 2 else "macro"
        assert ours["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, pred))
        for key, function in (("precision", sklearn_metrics.precision_score), ("recall", sklearn_metrics.recall_score),
                              ("f1", sklearn_metrics.f1_score)):
            assert ours[key] == pytest.approx(function(gold, pred, average=average, zero_division=0)), key


# --------------------------------------------------------------------------- tokenizer


def test_bpe_tokenizer_saves_and_reloads_identically(tmp_path):
    from transformers import AutoTokenizer

    dataset = synthetic_dataset()
    texts = [ex.code for ex in dataset.split("train")]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=350, max_length=48)
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    assert tokenizer.pad_token_id == 1 and tokenizer.mask_token_id == 4 and 300 <= len(tokenizer) <= 350
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    samples = texts[:5] + ["déf ünïcode(λ):\n\treturn '日本'  # ✓\n", ""]
    for text in samples:
        assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2
        assert tokenizer.decode(ids, skip_special_tokens=True) == text  # byte-level: lossless
    pair = reloaded(texts[0], texts[1], truncation=True, max_length=48)["input_ids"]
    assert len(pair) == 48 and pair.count(2) == 3
    assert len(tokenizer("x = 1")["input_ids"]) > 3  # the v5 vocab_file trap would encode everything as <s></s>
    assert reloaded.model_max_length == 48 and reloaded.pad_token == "<pad>" and reloaded.mask_token == "<mask>"


# --------------------------------------------------------------------------- training


def test_epoch_batches_depend_only_on_seed_and_epoch_and_cover_everything():
    lengths = [random.Random(1).randint(1, 100) for _ in range(101)]
    first = epoch_batches(lengths, 8, seed=3, epoch=1)
    assert first == epoch_batches(lengths, 8, seed=3, epoch=1)
    assert first != epoch_batches(lengths, 8, seed=3, epoch=2)
    assert sorted(i for batch in first for i in batch) == list(range(101))


def test_resume_after_epoch_one_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    dataset = synthetic_dataset()
    full = train(dataset, tiny_config(), tmp_path / "full", progress=False, log=quiet)
    assert full.finished and not (tmp_path / "full" / "checkpoint").exists()

    partial = train(dataset, tiny_config(), tmp_path / "resumed", progress=False, log=quiet, stop_after_epoch=1)
    assert not partial.finished and partial.manifest is None
    assert (tmp_path / "resumed" / "checkpoint" / "epoch-1" / "state.pt").is_file()
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    with pytest.raises(UserError, match="hyper-parameters"):
        train(dataset, tiny_config(lr=1e-3), tmp_path / "resumed", progress=False, log=quiet)
    with pytest.raises(UserError, match="other data"):
        train(synthetic_dataset(per_class=15), tiny_config(), tmp_path / "resumed", progress=False, log=quiet)
    resumed = train(dataset, tiny_config(), tmp_path / "resumed", resume=True, progress=False, log=quiet)
    assert resumed.finished and resumed.manifest["training"]["resumed"] is True

    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5, msg=key)
    assert [h["train_loss"] for h in full.history] == pytest.approx([h["train_loss"] for h in resumed.history], abs=1e-6)
    assert full.manifest["metrics"]["accuracy"] == resumed.manifest["metrics"]["accuracy"]

    # an unchanged finished directory is not silently retrained or overwritten
    with pytest.raises(UserError, match="already holds"):
        train(dataset, tiny_config(), tmp_path / "full", progress=False, log=quiet)
    with pytest.raises(UserError, match="no checkpoint"):
        train(dataset, tiny_config(), tmp_path / "fresh", resume=True, progress=False, log=quiet)


def test_manifest_fields_and_metrics_match_a_fresh_evaluation(tmp_path):
    dataset = synthetic_dataset()
    result = train(dataset, tiny_config(epochs=1, head="softmax"), tmp_path / "m", progress=False, log=quiet)
    manifest = read_manifest(tmp_path / "m", required=True)
    assert manifest == json.loads(json.dumps(result.manifest))
    for key in ("manifest_version", "kind", "created", "base", "base_info", "dataset", "label_names", "hyperparameters",
                "versions", "parameters", "size_mb", "files", "metrics", "training", "head", "device"):
        assert key in manifest, key
    assert manifest["dataset"]["name"] == "synthetic" and manifest["dataset"]["fingerprint"] == dataset.fingerprint
    assert set(manifest["versions"]) >= {"torch", "transformers", "python"}
    assert manifest["hyperparameters"]["max_length"] == 48 and manifest["hyperparameters"]["lr"] == 2e-3
    assert manifest["label_names"] == ["loop", "while", "format"]
    assert manifest["parameters"] == sum(p.numel() for p in Victim.load(tmp_path / "m").model.parameters())
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(manifest["files"])
    assert manifest["size_mb"] > 0 and verify_files(tmp_path / "m") == []
    metrics = manifest["metrics"]
    assert metrics["average"] == "macro" and set(metrics) >= {"accuracy", "precision", "recall", "f1", "n"}
    victim = Victim.load(tmp_path / "m")
    test = dataset.split("test")
    predictions = victim.predict([ex.code for ex in test])
    expected = classification_metrics([ex.label for ex in test], predictions, 3)
    for key in ("accuracy", "precision", "recall", "f1"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-12), key


def test_the_best_epoch_is_kept_and_patience_stops_training(tmp_path, monkeypatch):
    import engine.train as train_module

    dataset = synthetic_dataset()
    train(dataset, tiny_config(epochs=3), tmp_path / "probe", progress=False, log=quiet, stop_after_epoch=1)
    epoch_one = load_file(tmp_path / "probe" / "checkpoint" / "epoch-1" / "model.safetensors")

    real_evaluate = train_module.evaluate
    scores = iter([0.9, 0.5, 0.4])

    def scripted(victim, examples, **kwargs):
        result = real_evaluate(victim, examples, **kwargs)
        if kwargs.get("split") == "valid":
            result.metrics["accuracy"] = next(scores)
        return result

    monkeypatch.setattr(train_module, "evaluate", scripted)
    result = train(dataset, tiny_config(epochs=3, patience=1), tmp_path / "best", progress=False, log=quiet)
    training = result.manifest["training"]
    assert training["best_epoch"] == 1 and training["stopped_early"] is True and training["epochs_run"] == 2
    kept = load_file(tmp_path / "best" / "model.safetensors")
    for key in epoch_one:
        torch.testing.assert_close(kept[key], epoch_one[key], atol=0, rtol=0, msg=key)


def test_sigmoid_head_trains_and_is_read_as_two_classes(tmp_path):
    dataset = synthetic_dataset(per_class=12, num_labels=2)
    result = train(dataset, tiny_config(epochs=1, head="sigmoid"), tmp_path / "s", progress=False, log=quiet)
    assert result.manifest["metrics"]["average"] == "binary" and result.manifest["head"] == "sigmoid"
    victim = Victim.load(tmp_path / "s")
    assert victim.head == "sigmoid" and victim.label_names == ["loop", "while"]
    probs = victim.predict_proba([ex.code for ex in dataset.split("test")])
    assert probs.shape == (len(dataset.split("test")), 2)
    with pytest.raises(UserError, match="exactly 2"):
        train(synthetic_dataset(), tiny_config(head="sigmoid"), tmp_path / "bad", progress=False, log=quiet)


def test_pretrain_mlm_writes_a_masked_lm_directory(tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from engine.mlm import MlmConfig, pretrain_mlm

    dataset = synthetic_dataset()
    manifest = pretrain_mlm(dataset, MlmConfig(size="tiny", epochs=1, batch_size=8, max_length=32, vocab_size=350,
                                               device="cpu"), tmp_path / "mlm", progress=False, log=quiet)
    assert manifest["kind"] == "masked_lm" and manifest["metrics"]["masked_tokens"] > 0
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "mlm")
    batch = tokenizer("def f(x):\n    return <mask> + 1", return_tensors="pt")
    position = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero().item()
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape[-1] == len(tokenizer) and position > 0


# --------------------------------------------------------------------------- the command line


def test_engine_train_and_eval_through_the_cli(tmp_path, monkeypatch, capsys):
    import engine.cli as cli

    monkeypatch.setenv("CRT_CACHE_DIR", str(tmp_path / "cache"))
    if "engine.commands.train" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", cli.COMMAND_MODULES + ("engine.commands.train",))
    data = ["--dataset", "stdlib-attribution", "--dataset-size", "8"]
    out = tmp_path / "victim"
    code = cli.main(["train", *data, "--base", "scratch:tiny", "--out", str(out), "--epochs", "2",
                     "--batch-size", "8", "--max-length", "64", "--vocab-size", "600", "--lr", "2e-3", "--no-progress"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] and summary["epochs_run"] == 2
    manifest = read_manifest(out, required=True)
    assert manifest["dataset"]["name"] == "stdlib-attribution" and len(manifest["label_names"]) == 10

    report = tmp_path / "eval.json"
    code = cli.main(["eval", "--model", str(out), *data, "--split", "test", "--out", str(report), "--no-progress"])
    assert code == 0
    payload = json.loads(report.read_text())
    assert payload["dataset"]["fingerprint"] == manifest["dataset"]["fingerprint"]
    assert len(payload["predictions"]) == payload["metrics"]["n"] == manifest["metrics"]["n"]
    first = payload["predictions"][0]
    assert set(first) == {"id", "label", "prediction", "probabilities"} and len(first["probabilities"]) == 10
    assert sum(first["probabilities"]) == pytest.approx(1.0)
    for key in ("accuracy", "precision", "recall", "f1"):
        assert payload["metrics"][key] == pytest.approx(manifest["metrics"][key]), key
    assert payload["victim"]["normalize"] == "none" and payload["counters"]["queries"] == payload["metrics"]["n"]
    assert payload["victim"]["backend"] == manifest["eval_backend"] == "fast"

    capsys.readouterr()
    assert cli.main(["train", *data, "--base", "scratch:tiny", "--out", str(out), "--no-progress"]) == 2
    assert "already holds a trained model" in capsys.readouterr().err
    assert cli.main(["eval", "--model", str(tmp_path / "nope"), *data, "--no-progress"]) == 2
