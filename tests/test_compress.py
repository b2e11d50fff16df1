"""engine compress: pruning sparsity, int8 reload in a new process, the student's size, manifests,
distillation resume, bad input, and one run of the real CLI. Tiny models (hidden 64, 2 layers)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.compress.distill import (StudentShape, build_student, check_teacher_fits,
                                     choose_architecture, read_unlabelled)
from engine.compress.measure import parameter_counts
from engine.compress.prune import choose_heads, encoder_linears, prune_heads, prune_unstructured
from engine.common.int8 import QUANTIZED_WEIGHTS, quantize_int8
from engine.cli import main as engine_main
from engine.compress.variants import Options, VariantSpec, compress, standard_specs
from engine.errors import UserError
from engine.manifest import count_parameters, read_manifest
from engine.models import load_classifier
from engine.train import train
from engine.victim import Victim
from tests.test_train import quiet, synthetic_dataset, tiny_config

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = dict(timing_examples=4, batch_sizes=(1, 4), repeats=1, progress=False, device="cpu", log=quiet)


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(per_class=16)


@pytest.fixture(scope="module")
def parent(tmp_path_factory, dataset):
    out = tmp_path_factory.mktemp("parent") / "victim"
    train(dataset, tiny_config(epochs=2), out, progress=False, log=quiet)
    return out


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRT_CACHE_DIR", str(tmp_path / "cache"))


def make(parent, dataset, tmp_path, method, name="variant", **params):
    out = tmp_path / name
    manifests = compress(parent, [VariantSpec(name, out, method, params)], dataset, Options(**FAST))
    return out, manifests.get(name)


# --------------------------------------------------------------------------- pruning


def test_global_magnitude_pruning_reaches_the_ratio_and_loads_as_a_plain_checkpoint(parent, dataset, tmp_path):
    out, manifest = make(parent, dataset, tmp_path, "prune", ratio=0.4, scope="linear")
    report = manifest["compression"]["report"]
    assert report["weights"] > 0 and abs(report["overall"] - 0.4) <= 1 / report["weights"]
    model, _ = load_classifier(out)
    assert (out / "model.safetensors").is_file()
    layers = encoder_linears(model)
    zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
    assert zeros == report["zero_weights"]
    for name, module in layers.items():
        assert report["per_layer"][name] == pytest.approx(float((module.weight == 0).float().mean()), abs=1e-6)
    # global threshold: every kept weight is at least as large as every pruned one (pruned weights were nonzero)
    parent_model, _ = load_classifier(parent)
    before = torch.cat([m.weight.flatten() for m in encoder_linears(parent_model).values()]).abs()
    after = torch.cat([m.weight.flatten() for m in layers.values()])
    assert before[after == 0].max() <= before[after != 0].min()
    head_before = parent_model.classifier.dense.weight
    assert torch.equal(model.classifier.dense.weight, head_before), "the classifier head is not pruned"
    total, nonzero = parameter_counts(model)
    assert manifest["parameters"] == total == count_parameters(parent_model)
    assert manifest["nonzero_parameters"] == nonzero <= total - zeros


def test_qkv_scope_prunes_only_query_key_value(parent):
    model, _ = load_classifier(parent)
    report = prune_unstructured(model, 0.5, "qkv")
    assert report["overall"] == pytest.approx(0.5, abs=1e-3)
    assert all(name.rpartition(".")[2] in ("query", "key", "value") for name in report["per_layer"])
    others = [m for name, m in encoder_linears(model).items() if name.rpartition(".")[2] not in ("query", "key", "value")]
    assert others and all(int((m.weight == 0).sum()) == 0 for m in others)


def test_choose_heads_removes_the_least_important_and_keeps_one_per_layer():
    importance = torch.tensor([[0.9, 0.1, 0.2], [0.05, 0.01, 0.02]])
    assert choose_heads(importance, 0.5) == {0: [1], 1: [1, 2]}  # 3 heads; layer 1 keeps its best one (0)
    assert choose_heads(importance, 0.99) == {0: [1, 2], 1: [1, 2]}


def test_head_pruning_silences_the_removed_heads(parent, dataset):
    model, tokenizer = load_classifier(parent)
    train = dataset.split("train")[:16]
    report = prune_heads(model, tokenizer, [ex.code for ex in train], [ex.label for ex in train], 0.5, max_length=48)
    assert report["heads_removed"] == 2 and all(len(heads) == 1 for heads in report["removed"].values())
    codes = [ex.code for ex in dataset.split("test")]
    victim = Victim(model, tokenizer, max_length=48, device="cpu", cache_size=0)
    before = victim.predict_proba(codes)
    # a removed head's output is exactly zero: random query/key weights for it change nothing
    layer, heads = next(iter(report["removed"].items()))
    attention = model.roberta.encoder.layer[int(layer)].attention
    width = attention.output.dense.in_features // model.config.num_attention_heads
    rows = slice(heads[0] * width, (heads[0] + 1) * width)
    with torch.no_grad():
        attention.self.query.weight[rows] = torch.randn_like(attention.self.query.weight[rows])
        attention.self.key.weight[rows] = torch.randn_like(attention.self.key.weight[rows])
    victim.clear_cache()
    np.testing.assert_allclose(victim.predict_proba(codes), before, atol=1e-6)
    assert report["sparsity"]["overall"] > 0


def test_head_pruned_variant_records_the_heads(parent, dataset, tmp_path):
    out, manifest = make(parent, dataset, tmp_path, "prune", ratio=0.5, structured="heads", importance_examples=16)
    compression = manifest["compression"]
    assert compression["structured"] == "heads" and compression["report"]["heads_removed"] == 2
    assert manifest["nonzero_parameters"] < manifest["parameters"]
    assert Victim.load(out).predict_proba([dataset.split("test")[0].code]).shape == (1, 3)


# --------------------------------------------------------------------------- quantization

_RELOAD = """
import sys, json, numpy as np, torch
torch.set_num_threads(1)
from engine.victim import Victim
codes = json.load(open(sys.argv[2]))
np.save(sys.argv[3], Victim.load(sys.argv[1], device="auto", cache_size=0).predict_proba(codes))
"""


def test_int8_variant_reloads_identically_in_a_new_process(parent, dataset, tmp_path):
    out, manifest = make(parent, dataset, tmp_path, "quantize", dtype="int8")
    assert (out / QUANTIZED_WEIGHTS).is_file() and not (out / "model.safetensors").exists()
    codes = [ex.code for ex in dataset.split("test")] + [ex.code for ex in dataset.split("valid")]
    in_memory_model, tokenizer = load_classifier(parent)
    in_memory = Victim(quantize_int8(in_memory_model), tokenizer, max_length=48, device="cpu",
                       cache_size=0).predict_proba(codes)
    (tmp_path / "codes.json").write_text(json.dumps(codes))
    result = subprocess.run([sys.executable, "-c", _RELOAD, str(out), str(tmp_path / "codes.json"),
                             str(tmp_path / "probs.npy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    reloaded = np.load(tmp_path / "probs.npy")
    assert np.array_equal(reloaded, in_memory), np.abs(reloaded - in_memory).max()
    report = manifest["compression"]["report"]
    assert len(report["int8_modules"]) == 14  # 2 layers × 6 linears + the classifier's 2
    assert any("word_embeddings" in name for name in report["float_modules"])
    assert any("LayerNorm" in name for name in report["float_modules"])
    parent_weights = (parent / "model.safetensors").stat().st_size
    assert (out / QUANTIZED_WEIGHTS).stat().st_size < 0.6 * parent_weights
    assert manifest["parameters"] == count_parameters(load_classifier(parent)[0])
    assert 0.5 <= manifest["agreement"] <= 1.0


def test_int8_victim_refuses_gpu_and_half_precision(parent, dataset, tmp_path):
    out, _ = make(parent, dataset, tmp_path, "quantize", dtype="int8")
    with pytest.raises(UserError, match="int8"):
        Victim.load(out, dtype="bf16")


def test_bf16_cast_halves_the_weights_and_loads_normally(parent, dataset, tmp_path):
    out, manifest = make(parent, dataset, tmp_path, "quantize", dtype="bf16")
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(str(out / "model.safetensors")).values() if t.is_floating_point()} == {torch.bfloat16}
    ratio = (out / "model.safetensors").stat().st_size / (parent / "model.safetensors").stat().st_size
    assert 0.45 < ratio < 0.55 and manifest["compression"]["dtype"] == "bf16"
    assert manifest["agreement"] >= 0.5


# --------------------------------------------------------------------------- distillation


def test_compressor_3mb_shape_and_size_formula():
    shape = choose_architecture(3.0, max_length=256, num_labels=10)
    assert shape == StudentShape(layers=12, hidden=96, heads=8, intermediate=64, vocab=1000)
    small = StudentShape(layers=2, hidden=32, heads=2, intermediate=32, vocab=400)
    model, tokenizer = build_student(small, ["def f(x):\n    return x + 1\n"] * 50 + ["class A: pass"] * 50,
                                     label_names=["a", "b", "c"], max_length=48)
    real = StudentShape(2, 32, 2, 32, len(tokenizer))
    assert count_parameters(model) == real.parameters(48, 3)
    with pytest.raises(UserError, match="range"):
        choose_architecture(0.001, max_length=256, num_labels=2)


def test_distillation_resumes_and_the_student_has_its_size(parent, dataset, tmp_path):
    out = tmp_path / "student"
    params = dict(target_mb=0.25, epochs=2, batch_size=8, lr=2e-3, patience=0, seed=3)
    spec = VariantSpec("student", out, "distill", params)
    options = Options(**FAST, stop_after_epoch=1)
    assert compress(parent, [spec], dataset, options) == {}
    assert (out / "checkpoint" / "epoch-1" / "state.pt").is_file()
    messages = []
    manifests = compress(parent, [spec], dataset, Options(**(FAST | {"log": messages.append})))
    manifest = manifests["student"]
    assert any("resuming from" in m for m in messages)
    report = manifest["compression"]["report"]
    assert report["soft_labels"]["from_cache"] is True  # computed once, in the interrupted run
    assert manifest["training"]["resumed"] is True and len(manifest["training"]["history"]) == 2
    shape = StudentShape(**report["architecture"])
    assert 1000 <= shape.vocab <= 6000 and shape.size_mb(48, 3) <= 0.25
    # this tiny corpus has fewer BPE merges than the 1,000 asked for: the real vocabulary decides the size
    real = StudentShape(**(report["architecture"] | {"vocab": manifest["base_info"]["vocab_size"]}))
    assert real.vocab <= shape.vocab and manifest["parameters"] == real.parameters(48, 3)
    weight_bytes = (out / "model.safetensors").stat().st_size
    assert real.parameters(48, 3) * 4 <= weight_bytes <= real.parameters(48, 3) * 4 + 20_000  # + the file's header
    parent_size = read_manifest(parent)["size_mb"]
    assert manifest["size_mb"] == pytest.approx(manifest["measurement"]["variant"]["size_mb"])
    assert manifest["measurement"]["parent"]["size_mb"] == pytest.approx(parent_size)
    victim = Victim.load(out)
    assert victim.max_length == 48 and victim.predict_proba([dataset.split("test")[0].code]).shape == (1, 3)
    assert not (out / "checkpoint").exists()


def test_teacher_that_cannot_read_the_data_is_refused(dataset):
    tokenizer = SimpleNamespace(unk_token_id=3, unk_token="<unk>", all_special_ids=[0, 1, 2, 3])
    teacher = SimpleNamespace(num_labels=3, manifest=None, tokenizer=tokenizer,
                              encode=lambda codes: [{"input_ids": [0, 3, 3, 7, 2]} for _ in codes])
    with pytest.raises(UserError, match="tokenizer does not fit"):
        check_teacher_fits(teacher, dataset, ["x"] * 5)
    wrong = SimpleNamespace(num_labels=2, manifest=None, tokenizer=tokenizer, encode=teacher.encode)
    with pytest.raises(UserError, match="2 classes"):
        check_teacher_fits(wrong, dataset, ["x"])


def test_unlabelled_code_errors_name_the_line(tmp_path):
    path = tmp_path / "more.jsonl"
    path.write_text('{"code": "def f(): pass"}\n{"text": 1}\n')
    with pytest.raises(UserError, match=r"more.jsonl:2"):
        read_unlabelled(path, "python")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("def g(y):\n    return y\n")
    assert read_unlabelled(tmp_path / "src", "python") == ["def g(y):\n    return y\n"]


# --------------------------------------------------------------------------- manifests and bad input


def test_manifest_fields(parent, dataset, tmp_path):
    out, manifest = make(parent, dataset, tmp_path, "prune", ratio=0.3)
    on_disk = read_manifest(out)
    assert on_disk == json.loads(json.dumps(manifest))
    parent_manifest = read_manifest(parent)
    assert manifest["compression"]["method"] == "prune" and manifest["compression"]["ratio"] == 0.3
    assert manifest["compression"]["parent"] == parent_manifest["fingerprint"]
    assert parent_manifest["compression"] == {"method": "none"}
    for key in ("size_mb", "parameters", "nonzero_parameters", "latency_ms_batch1", "throughput_per_s", "agreement"):
        assert isinstance(manifest[key], (int, float)) and manifest[key] > 0, key
    assert set(manifest["test_metrics"]) >= {"accuracy", "precision", "recall", "f1"}
    assert manifest["test_metrics"]["n"] == len(dataset.split("test"))
    assert manifest["metrics"]["accuracy"] == manifest["test_metrics"]["accuracy"]
    measurement = manifest["measurement"]
    assert measurement["same_run_as_parent"] and measurement["parent"]["fingerprint"] == parent_manifest["fingerprint"]
    assert measurement["parent"]["test_metrics"]["accuracy"] == pytest.approx(parent_manifest["metrics"]["accuracy"])
    assert manifest["label_names"] == parent_manifest["label_names"]
    assert manifest["hyperparameters"]["max_length"] == 48 and manifest["fingerprint"] != parent_manifest["fingerprint"]


def test_bad_input_is_a_clear_error(parent, dataset, tmp_path):
    for ratio in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(UserError, match="strictly between 0 and 1"):
            make(parent, dataset, tmp_path, "prune", name=f"r{ratio}", ratio=ratio)
    with pytest.raises(UserError, match="--method 'squash'"):
        make(parent, dataset, tmp_path, "squash")
    pruned, _ = make(parent, dataset, tmp_path, "prune", name="pruned", ratio=0.3)
    with pytest.raises(UserError, match="already compressed.*--allow-compressed"):
        make(pruned, dataset, tmp_path, "quantize", name="twice")
    stacked = compress(pruned, [VariantSpec("twice", tmp_path / "twice", "quantize", {})], dataset,
                       Options(**FAST, allow_compressed=True))["twice"]
    assert stacked["compression"]["parent_compression"] == "prune"
    with pytest.raises(UserError, match="not meaningful"):
        compress(tmp_path / "twice", [VariantSpec("x", tmp_path / "x", "prune", {"ratio": 0.2})], dataset,
                 Options(**FAST, allow_compressed=True))
    with pytest.raises(UserError, match="already holds a model"):
        make(parent, dataset, tmp_path, "prune", name="pruned", ratio=0.3)
    other = synthetic_dataset(per_class=8, num_labels=2, name="other")
    with pytest.raises(UserError, match="labels"):
        make(parent, other, tmp_path, "prune", name="other", ratio=0.3)


def test_third_party_checkpoint_without_manifest(parent, dataset, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(parent, bare)
    (bare / "manifest.json").unlink()
    out, manifest = make(bare, dataset, tmp_path, "quantize")
    assert manifest["base_info"]["kind"] == "third-party" and manifest["label_names"] == dataset.label_names
    assert manifest["compression"]["parent"] == read_manifest(parent)["fingerprint"]  # same files, same fingerprint
    assert manifest["measurement"]["parent"]["size_mb"] > 0


def test_cli_end_to_end_all_variants(dataset, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data.jsonl"
    with open(data, "w") as handle:
        for split in ("train", "valid", "test"):
            for ex in dataset.split(split):
                handle.write(json.dumps({"code": ex.code, "label": dataset.label_names[ex.label]}) + "\n")
    out, parent = tmp_path / "variants", tmp_path / "victim"
    env = os.environ | {"CRT_CACHE_DIR": str(tmp_path / "cache")}
    data_options = ["--data-format", "jsonl", "--data", str(data), "--columns", "code=code,label=label",
                    "--language", "python", "--threads", "1", "--no-progress", "--device", "cpu"]
    monkeypatch.setenv("CRT_CACHE_DIR", env["CRT_CACHE_DIR"])
    assert engine_main(["train", "--base", "scratch:tiny", "--out", str(parent), "--epochs", "1", "--max-length", "48",
                        "--vocab-size", "350", *data_options]) == 0
    command = [sys.executable, "-m", "engine", "compress", "--all", "--model", str(parent), "--out", str(out),
               *data_options, "--target-mb", "0.25", "--epochs", "1", "--timing-examples", "4", "--repeats", "1",
               "--batch-sizes", "1,4"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["finished"] and set(summary["variants"]) == {"prune", "quantize", "distill"}
    index = json.loads((out / "variants.json").read_text())
    assert index["variants"] == {"prune": "prune", "quantize": "quantize", "distill": "distill"}
    for spec in standard_specs(out):
        manifest = read_manifest(spec.out)
        assert manifest["compression"]["method"] == spec.method
        assert Victim.load(spec.out).predict_proba([dataset.split("test")[0].code]).shape == (1, 3)
    capsys.readouterr()
    assert engine_main(command[3:4] + ["--method", "prune", "--ratio", "2"] + command[5:]) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err


# --------------------------------------------------------------------------- the method registry


@pytest.mark.parametrize("name", sorted(__import__("engine.compress.methods", fromlist=["METHODS"]).METHODS))
def test_every_method_names_a_maker_a_checker_and_options_the_command_has(name):
    from engine.cli import build_parser
    from engine.compress.methods import METHODS
    from engine.study.config import cli_options

    spec = METHODS[name]
    assert callable(spec.maker()) and callable(spec.checker())
    assert set(spec.options) <= set(cli_options("compress")), "every option must be an `engine compress` flag"
    args = build_parser().parse_args(["compress", "--method", name, "--model", "m", "--out", "o"])
    assert args.method == name


def test_recompression_rules_follow_the_method_properties():
    from engine.compress.methods import meaningful_after

    assert not meaningful_after("quantize", "prune") and not meaningful_after("quantize", "quantize")
    assert meaningful_after("quantize", "distill") and meaningful_after("prune", "quantize")
    assert meaningful_after("distill", "prune")
    assert not meaningful_after("some-future-method", "distill")  # unknown parents are never assumed safe
    with pytest.raises(UserError, match="use one of"):
        meaningful_after("prune", "nonsense")


def test_all_makes_every_methods_standard_variant(tmp_path):
    from engine.compress.methods import METHODS

    specs = standard_specs(tmp_path, {"distill": {"epochs": 2, "lr": None}})
    assert [spec.name for spec in specs] == [name for name, spec in METHODS.items() if spec.standard]
    distill = next(spec for spec in specs if spec.method == "distill")
    assert distill.params == {"target_mb": 3.0, "epochs": 2} and distill.out == tmp_path / "distill"
