"""Robustness-preserving compression: `harden`, robust fine-tuning of any variant (losses in
`engine.compress.robust`, shared with `distill --robust`). Measurements and the choice of defaults: docs/robust-compression.md.

**Harden** fine-tunes a model on its task's training programs *and* renamed copies of them: every
epoch each program gets `renamings` fresh random alpha-equivalent renamings
(`engine.augment.renamings`) and, with `adversarial`, one of its adversarial programs written by
`engine augment` (MHM/ALERT on the training split). The loss is

    CE over originals and renamed copies (gold labels)  +  λ · KL(p(original) ‖ p(renamed))

with the original's distribution held fixed in the KL (stop-gradient), so the consistency term
pulls the renamed program's prediction towards the original's and never the other way, which
would let a model satisfy it by predicting the same thing everywhere.

What is fine-tuned depends on the variant:
- a float model (the original, a distilled student, a hardened model): itself;
- a pruned model: itself, with every encoder weight that is zero held at zero after each step
  (the pruning mask is fixed, so the sparsity and the size on disk do not change);
- an int8 (or fp16/bf16) variant: its float parent (the manifest's `compression.parent_path`,
  checked against the recorded fingerprint), then quantized again with the same settings, so
  the hardened variant is int8 like the one it replaces. A pruned float parent keeps its mask.

Training is `engine.train.train` with an `Objective`: epoch checkpoints, resume, best-epoch
selection on the valid split, progress bars.

**The control.** `renamings = 0` without `adversarial` is the same fine-tuning on the original
programs only (mask fixed, int8 through its float parent, the same optimizer and schedule), marked
`robust: false, control: true`. Robust fine-tuning is also more training, and a variant of an
under-trained or over-fitted model may gain accuracy, and so robustness, from any further
training; the control, at the same number of steps (r renamings per program for E epochs is
(1 + r)·E epochs of the control), says how much of a robust variant's gain its renamings bought.
`analysis.gap` reports it next to the robust variant of the same parent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.compress.robust import check_knobs, epoch_views, harden_loss, keep_zeros, zero_mask
from engine.errors import UserError

HARDEN_DEFAULTS = {"epochs": 4, "lr": 3e-4, "batch_size": 16, "patience": 0, "seed": 42}


# --------------------------------------------------------------------------- what harden fine-tunes


@dataclass
class Source:
    """The float model harden fine-tunes and what is re-applied afterwards."""

    path: Path
    fingerprint: str
    requantize: str | None  # "int8", "fp16", "bf16" or None
    via: str  # why this model: "the variant itself" or "the float parent of the int8 variant"


def float_source(parent) -> Source:
    """The variant itself, or for a quantized variant its float parent (fingerprint-checked)."""
    from engine.compress.variants import load_parent

    compression = (parent.manifest or {}).get("compression") or {}
    if parent.method != "quantize":
        from engine.common.int8 import is_quantized
        from engine.models import load_classifier

        if (parent.path / "quantized.safetensors").is_file() and is_quantized(load_classifier(parent.path)[0]):
            what = ("is a hardened int8 variant, which keeps no float weights to fine-tune further; harden its "
                    "float parent again (more --epochs) instead" if parent.method == "harden" else
                    "holds int8 weights but its manifest does not say which float model they were quantized from; "
                    "harden its float parent and quantize that")
            raise UserError(f"{parent.path} {what}")
        return Source(parent.path, parent.fingerprint, None, "the variant itself")
    dtype = compression.get("dtype") or "int8"
    where = compression.get("parent_path")
    if not where or not Path(where).is_dir():
        raise UserError(f"{parent.path} is a {dtype} variant whose float parent ({where or 'not recorded'}) is not "
                        "there; harden fine-tunes the float parent and quantizes it again, so it needs that directory")
    float_parent = load_parent(where)
    if compression.get("parent") and float_parent.fingerprint != compression["parent"]:
        raise UserError(f"{where} (fingerprint {float_parent.fingerprint}) is not the model {parent.path} was "
                        f"quantized from (fingerprint {compression['parent']}); it changed since")
    return Source(float_parent.path, float_parent.fingerprint, dtype, f"the float parent of the {dtype} variant")


# --------------------------------------------------------------------------- the method


@dataclass
class HardenConfig:
    renamings: int = 1
    rename_share: float = 1.0
    consistency: float = 1.0
    epochs: int = HARDEN_DEFAULTS["epochs"]
    lr: float = HARDEN_DEFAULTS["lr"]
    batch_size: int = HARDEN_DEFAULTS["batch_size"]
    patience: int = HARDEN_DEFAULTS["patience"]
    seed: int = HARDEN_DEFAULTS["seed"]

    def check(self) -> None:
        check_knobs(self.renamings, self.rename_share, self.consistency)
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError("--epochs and --batch-size must be at least 1")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr}")


def harden_config(params: dict[str, Any]) -> HardenConfig:
    return HardenConfig(**{key: value for key, value in params.items() if value is not None and key != "adversarial"})


def check_harden(params: dict[str, Any]) -> None:
    from engine.compress.methods import HARDEN_OPTIONS

    unknown = set(params) - set(HARDEN_OPTIONS)
    if unknown:
        raise UserError(f"harden does not take {', '.join(sorted(unknown))}")
    config = harden_config(params)
    config.check()
    if params.get("adversarial") and not Path(params["adversarial"]).expanduser().is_dir():
        raise UserError(f"--adversarial {params['adversarial']}: not a directory written by engine augment")


def make_harden(parent, spec, dataset, options) -> dict[str, Any] | None:
    """Fine-tune (see the module docstring) into `spec.out`; the compression block, or None when stopped early."""
    from engine.augment.renamings import Renamings
    from engine.augment.stage import read_programs
    from engine.manifest import read_manifest
    from engine.models import load_classifier
    from engine.train import Objective, TrainConfig, TrainResult, split_for_validation, train
    from engine.victim import Victim

    config = harden_config(spec.params)
    config.check()
    adversarial_dir = spec.params.get("adversarial")
    source = float_source(parent)
    model, tokenizer = load_classifier(source.path)
    source_manifest = read_manifest(source.path) or {}
    max_length = Victim(model, tokenizer, manifest=source_manifest or None, device="cpu", backend="hf").max_length
    masks = zero_mask(model)
    zeros = int(sum(int(mask.sum()) for mask in masks.values()))
    train_config = TrainConfig(base="harden", epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                               max_length=max_length, patience=config.patience, seed=config.seed,
                               head=source_manifest.get("head") or "softmax", eval_batch_size=options.eval_batch_size,
                               device=options.device, backend=options.backend)
    train_config.check()
    train_examples, _, _ = split_for_validation(dataset, train_config.seed)
    codes = [ex.code for ex in train_examples]
    ids = [str(ex.id) for ex in train_examples]
    adversarial = read_programs(adversarial_dir, dataset) if adversarial_dir else {}
    unknown = sorted(set(adversarial) - set(ids))
    if unknown:
        raise UserError(f"--adversarial {adversarial_dir}: programs for {len(unknown)} example ids that are not in this "
                        f"training split (e.g. {unknown[0]!r}); augment the same dataset's train split")
    renamings = Renamings.for_dataset(dataset, share=config.rename_share)
    objective_key = {"method": "harden", "source": source.fingerprint, "renamings": config.renamings,
                     "rename_share": config.rename_share, "consistency": config.consistency,
                     "adversarial_programs": sum(len(v) for v in adversarial.values())}
    base_info = {"base": "harden", "kind": "hardened", "source": str(source.path), "objective_key": objective_key}

    def build(texts):
        return model, tokenizer, base_info

    objective = Objective(build=build, loss=harden_loss(config.consistency), key=objective_key,
                          views=epoch_views(renamings, codes, ids, seed=config.seed, per_example=config.renamings,
                                            adversarial=adversarial),
                          after_step=keep_zeros(masks))
    out = spec.out
    finished = _finished(out, objective_key)
    if finished:
        options.say(f"{out} already holds this hardened model (training finished); not training it again")
        manifest = read_manifest(out)
        result = TrainResult(out, True, manifest, manifest["training"]["history"])
    else:
        result = train(dataset, train_config, out, progress=options.progress, stop_after_epoch=options.stop_after_epoch,
                       log=options.log, objective=objective)
        if not result.finished:
            return None
    if source.requantize:
        _requantize(out, source.requantize)
    from engine.compress.variants import _mark_incomplete

    _mark_incomplete(out)
    trained = result.manifest or {}
    report = {"source": {"path": str(source.path), "fingerprint": source.fingerprint, "why": source.via},
              "renaming_pool": renamings.describe(), "renaming_stats": renamings.stats.to_json(),
              "adversarial_examples": len(adversarial), "training": trained.get("training"),
              "hardened_metrics": trained.get("metrics"), "mask": {"fixed": bool(masks), "zero_weights": zeros}}
    robust = bool(config.renamings or adversarial)
    info = {"robust": robust, **({} if robust else {"control": True}), "renamings": config.renamings,
            "rename_share": config.rename_share, "consistency": config.consistency, "epochs": config.epochs,
            "lr": config.lr, "batch_size": config.batch_size, "patience": config.patience, "seed": config.seed,
            "adversarial": str(adversarial_dir) if adversarial_dir else None,
            "adversarial_programs": objective_key["adversarial_programs"],
            "fine_tuned": "float parent" if source.requantize else "variant",
            "float_parent": source.fingerprint if source.requantize else None,
            "quantized": source.requantize, "pruning_mask_fixed": bool(masks), "zero_weights_kept": zeros,
            "report": report}
    if source.requantize:
        info["dtype"] = source.requantize
    options.say(f"{spec.name}: {'hardened' if robust else 'fine-tuned (control: no renamed programs)'} {source.via} ({result.manifest and result.manifest['training']['epochs_run']} "
                f"epochs{', int8 again' if source.requantize == 'int8' else ''}"
                f"{f', {zeros:,} pruned weights kept at zero' if masks else ''})")
    return info


def _requantize(out: Path, dtype: str) -> None:
    """Replace the fine-tuned float weights in `out` by the same quantization as the variant hardened."""
    from engine.common.int8 import is_quantized, quantize_int8
    from engine.compress.quantize import cast_weights, save_quantized
    from engine.models import load_classifier, save_model

    model, tokenizer = load_classifier(out)
    if is_quantized(model):
        return  # done by an earlier run that stopped before the manifest
    if dtype == "int8":
        save_quantized(quantize_int8(model), tokenizer, out)
        (out / "model.safetensors").unlink(missing_ok=True)
    else:
        save_model(cast_weights(model, dtype), tokenizer, out)


def _finished(out: Path, objective_key: dict[str, Any]) -> bool:
    from engine.manifest import read_manifest
    from engine.train import CHECKPOINT_DIR

    manifest = read_manifest(out) if out.is_dir() else None
    recorded = ((manifest or {}).get("base_info") or {}).get("objective_key")
    return recorded == json.loads(json.dumps(objective_key)) and not any((out / CHECKPOINT_DIR).glob("epoch-*"))
