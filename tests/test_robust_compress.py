"""Robust compression: the consistency term can fail and moves the weights, robust distillation changes the
student's loss, harden keeps a pruning mask and turns an int8 variant into an int8 model. Tiny models only."""
from __future__ import annotations

import pytest
import torch

from engine.attacks.base import example_rng
from engine.augment.renamings import Renamings
from engine.common.int8 import QUANTIZED_WEIGHTS, is_quantized
from engine.compress.prune import encoder_linears
from engine.compress.robust import consistency_loss, harden_loss, robust_distillation_loss
from engine.compress.variants import Options, VariantSpec, compress
from engine.errors import UserError
from engine.manifest import read_manifest
from engine.models import load_classifier
from engine.train import RenamedBatch, train
from tests.test_compress import FAST, dataset, parent, private_cache  # noqa: F401  (the same tiny parent's fixtures)
from tests.test_train import NAMES, quiet, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRAIN = dict(epochs=2, batch_size=8, lr=2e-3, seed=3)


def make(parent, dataset, out, method, **params):
    manifests = compress(parent, [VariantSpec(out.name, out, method, params)], dataset, Options(**FAST))
    return manifests.get(out.name)


# --------------------------------------------------------------------------- the consistency term


class CharacterModel(torch.nn.Module):
    """A linear classifier over character counts: of `alphabet` only (blind to names made of letters) or of all."""

    def __init__(self, alphabet: str | None, num_labels: int = 3):
        super().__init__()
        self.alphabet = alphabet
        self.linear = torch.nn.Linear(128, num_labels)
        torch.nn.init.normal_(self.linear.weight, std=0.3)

    def forward(self, codes: list[str]) -> torch.Tensor:
        rows = torch.zeros(len(codes), 128)
        for row, code in enumerate(codes):
            for char in code:
                if ord(char) < 128 and (self.alphabet is None or char in self.alphabet):
                    rows[row, ord(char)] += 1
        return self.linear(rows)


def renamed_batch(model, dataset):
    codes = [ex.code for ex in dataset.split("train")[:6]]
    renamings = Renamings(NAMES + ["alpha", "beta", "gamma_delta", "quux"], "python")
    views = [(i, renamings.rename_input(code, example_rng(0, i))) for i, code in enumerate(codes)]
    assert all(view is not None and view != codes[i] for i, view in views)
    logits = model(codes)
    copies = model([view for _, view in views])
    return logits, RenamedBatch(copies, torch.tensor([i for i, _ in views]), torch.arange(len(views)))


def test_consistency_is_zero_for_a_model_blind_to_names_and_positive_otherwise(dataset):
    torch.manual_seed(0)
    blind = CharacterModel("()[]{}:,.=+-*<>'\n ")  # renaming changes no such character
    logits, renamed = renamed_batch(blind, dataset)
    value = consistency_loss(logits, renamed)
    assert value.item() == pytest.approx(0.0, abs=1e-7)
    value.backward()
    assert float(blind.linear.weight.grad.abs().sum()) < 1e-5  # float rounding only

    reader = CharacterModel(None)  # counts letters too: renamed programs look different to it
    logits, renamed = renamed_batch(reader, dataset)
    value = consistency_loss(logits, renamed)
    assert value.item() > 1e-4
    value.backward()
    before = reader.linear.weight.detach().clone()
    assert float(reader.linear.weight.grad.abs().sum()) > 1e-3
    torch.optim.SGD(reader.parameters(), lr=0.1).step()
    assert not torch.equal(before, reader.linear.weight)
    after = consistency_loss(*renamed_batch(reader, dataset)[:1], renamed_batch(reader, dataset)[1])
    assert after.item() < value.item(), "a step along its gradient lowers the consistency term"


def test_the_harden_loss_adds_the_consistency_term():
    torch.manual_seed(1)
    logits, copies = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 1, 2, 0])
    renamed = RenamedBatch(copies, torch.arange(4), torch.arange(4))
    plain, robust = harden_loss(0.0)(logits, torch.arange(4), labels, renamed), harden_loss(2.0)(logits, torch.arange(4), labels, renamed)
    assert robust.item() == pytest.approx(plain.item() + 2.0 * consistency_loss(logits, renamed).item(), rel=1e-6)
    same = RenamedBatch(logits.clone(), torch.arange(4), torch.arange(4))
    assert consistency_loss(logits, same).item() == pytest.approx(0.0, abs=1e-7)


def test_robust_distillation_loss_learns_the_teacher_on_renamed_programs_too():
    torch.manual_seed(2)
    teacher = torch.softmax(torch.randn(4, 3), dim=-1)
    logits = torch.log(teacher).clone().requires_grad_(True)  # the student already matches the teacher on originals
    copies = torch.randn(4, 3, requires_grad=True)  # ... but not on the renamed copies
    renamed = RenamedBatch(copies, torch.arange(4), torch.arange(4))
    labels = torch.full((4,), -1)

    def targets(slots, owners):
        return teacher[owners]

    plain = robust_distillation_loss(teacher, 1.0, 0.0, 0.0, targets)(logits, torch.arange(4), labels)
    robust = robust_distillation_loss(teacher, 1.0, 0.0, 1.0, targets)(logits, torch.arange(4), labels, renamed)
    assert plain.item() == pytest.approx(0.0, abs=1e-6)
    assert robust.item() > 0.01
    robust.backward()
    assert float(copies.grad.abs().sum()) > 0


def test_robust_distillation_trains_on_renamed_programs(parent, dataset, tmp_path):
    params = dict(target_mb=0.25, patience=0, **TRAIN)
    standard = make(parent, dataset, tmp_path / "student", "distill", **params)
    robust = make(parent, dataset, tmp_path / "robust", "distill", robust=True, robust_warmup=0, renamings=1,
                  consistency=1.0, **params)
    assert standard["compression"]["robust"] is False
    block = robust["compression"]
    assert block["robust"] is True and block["method"] == "distill" and block["consistency"] == 1.0
    assert block["report"]["robust"]["renaming_stats"]["made"] > 0
    assert all(epoch["renamed_views"] > 0 for epoch in robust["training"]["history"])
    losses = [epoch["train_loss"] for epoch in standard["training"]["history"]]
    robust_losses = [epoch["train_loss"] for epoch in robust["training"]["history"]]
    assert losses != robust_losses, "the renamed programs and the consistency term change the loss"
    a, _ = load_classifier(tmp_path / "student")
    b, _ = load_classifier(tmp_path / "robust")
    assert not torch.equal(a.classifier.out_proj.weight, b.classifier.out_proj.weight)


# --------------------------------------------------------------------------- harden


def test_harden_fine_tunes_resumes_and_records_every_knob(parent, dataset, tmp_path):
    out = tmp_path / "hardened"
    spec = VariantSpec("hardened", out, "harden", dict(renamings=2, consistency=0.5, **TRAIN))
    assert compress(parent, [spec], dataset, Options(**FAST, stop_after_epoch=1)) == {}
    messages = []
    manifest = compress(parent, [spec], dataset, Options(**(FAST | {"log": messages.append})))["hardened"]
    assert any("resuming from" in m for m in messages)
    block = manifest["compression"]
    assert block["method"] == "harden" and block["robust"] is True and block["parent_compression"] == "none"
    assert {key: block[key] for key in ("renamings", "consistency", "epochs", "lr", "seed", "adversarial")} == \
        {"renamings": 2, "consistency": 0.5, "epochs": 2, "lr": 2e-3, "seed": 3, "adversarial": None}
    assert block["parent"] == read_manifest(parent)["fingerprint"]
    assert all(isinstance(value, (str, int, float, bool, type(None))) for key, value in block.items() if key != "report")
    before, _ = load_classifier(parent)
    after, _ = load_classifier(out)
    assert not torch.equal(before.classifier.out_proj.weight, after.classifier.out_proj.weight)


def test_harden_keeps_the_pruning_mask(parent, dataset, tmp_path):
    pruned = tmp_path / "pruned"
    make(parent, dataset, pruned, "prune", ratio=0.5, scope="linear")
    manifest = make(pruned, dataset, tmp_path / "pruned-hard", "harden", renamings=1, **TRAIN)
    old, _ = load_classifier(pruned)
    new, _ = load_classifier(tmp_path / "pruned-hard")
    old_layers, new_layers = encoder_linears(old), encoder_linears(new)
    changed = 0
    for name, module in old_layers.items():
        zero = module.weight == 0
        assert zero.any()
        assert bool((new_layers[name].weight[zero] == 0).all()), f"{name}: a pruned weight came back"
        changed += int((new_layers[name].weight[~zero] != module.weight[~zero]).sum())
    assert changed > 0, "the kept weights were fine-tuned"
    assert manifest["compression"]["pruning_mask_fixed"] is True
    assert manifest["nonzero_parameters"] == manifest["measurement"]["parent"]["nonzero_parameters"]


def test_harden_of_an_int8_variant_fine_tunes_its_float_parent_and_is_int8(parent, dataset, tmp_path):
    int8 = tmp_path / "int8"
    make(parent, dataset, int8, "quantize", dtype="int8")
    manifest = make(int8, dataset, tmp_path / "int8-hard", "harden", renamings=1, **TRAIN)
    block = manifest["compression"]
    assert block["quantized"] == "int8" and block["fine_tuned"] == "float parent"
    assert block["float_parent"] == read_manifest(parent)["fingerprint"] and block["parent_compression"] == "quantize"
    model, _ = load_classifier(tmp_path / "int8-hard")
    assert is_quantized(model)
    assert (tmp_path / "int8-hard" / QUANTIZED_WEIGHTS).is_file() and not (tmp_path / "int8-hard" / "model.safetensors").exists()
    assert manifest["size_mb"] == pytest.approx(read_manifest(int8)["size_mb"], rel=0.02)
    with pytest.raises(UserError, match="keeps no float weights"):
        make(tmp_path / "int8-hard", dataset, tmp_path / "again", "harden", renamings=1, **TRAIN)


def test_harden_refuses_bad_options(parent, dataset, tmp_path):
    with pytest.raises(UserError, match="--consistency"):
        make(parent, dataset, tmp_path / "a", "harden", consistency=-1.0)
    with pytest.raises(UserError, match="augment"):
        make(parent, dataset, tmp_path / "c", "harden", adversarial=str(tmp_path / "nowhere"))


def test_harden_without_renamings_is_the_control(parent, dataset, tmp_path):
    """--renamings 0 (no --adversarial): the same fine-tuning on the originals only, mask kept, marked
    as no robust variant; its training saw no renamed program."""
    pruned = tmp_path / "pruned"
    make(parent, dataset, pruned, "prune", ratio=0.5, scope="linear")
    manifest = make(pruned, dataset, tmp_path / "control", "harden", renamings=0, **TRAIN)
    block = manifest["compression"]
    assert block["robust"] is False and block["control"] is True and block["renamings"] == 0
    assert block["pruning_mask_fixed"] is True
    history = block["report"]["training"]["history"]
    assert len(history) == 2 and all(not epoch.get("renamed_views") for epoch in history)
    old, _ = load_classifier(pruned)
    new, _ = load_classifier(tmp_path / "control")
    assert not torch.equal(old.classifier.out_proj.weight, new.classifier.out_proj.weight)
    robust = make(pruned, dataset, tmp_path / "robust", "harden", renamings=1, **TRAIN)["compression"]
    assert robust["robust"] is True and "control" not in robust
    assert all(epoch["renamed_views"] > 0 for epoch in robust["report"]["training"]["history"])


def test_engine_train_with_renamings_trains_on_renamed_programs(dataset, tmp_path):
    from engine.compress.robust import renamed_training

    config = tiny_config(epochs=1)
    result = train(dataset, config, tmp_path / "robust-victim", progress=False, log=quiet,
                   objective=renamed_training(dataset, config, renamings=1, rename_share=1.0, consistency=1.0))
    assert result.manifest["training"]["history"][0]["renamed_views"] == len(dataset.split("train"))
    assert result.manifest["base_info"]["robust_training"] == {"renamings": 1, "rename_share": 1.0, "consistency": 1.0}
    with pytest.raises(UserError, match="at least 1"):
        renamed_training(dataset, config, renamings=0, rename_share=1.0, consistency=1.0)
