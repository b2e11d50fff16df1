"""The losses and training views of robust compression, shared by `harden` (engine.compress.harden) and
`distill --robust` (engine.compress.distill). Measurements and defaults: docs/robust-compression.md.

- `consistency_loss`: KL(p(original) ‖ p(renamed copy)) with the original held fixed (stop-gradient),
  so the term pulls a renamed program's prediction towards its original's and never the other way,
  which would let a model satisfy it by predicting the same thing everywhere;
- `harden_loss`: gold-label CE over originals and renamed copies + λ × consistency;
- `robust_distillation_loss`: soft labels on originals and renamed copies + λ × consistency;
- `epoch_views`: fresh random renamings per epoch (plus adversarial programs from `engine augment`);
- `zero_mask` / `keep_zeros`: a pruned model's zero weights, held at zero after every step.
"""
from __future__ import annotations

import math

import torch

from engine.errors import UserError

TARGETS = ("original", "renamed")


def check_knobs(renamings: int, rename_share: float, consistency: float) -> None:
    """The robust knobs both methods take: renamings per program and epoch, share of variables renamed, λ."""
    if renamings < 0:
        raise UserError(f"--renamings must be ≥ 0, got {renamings}")
    if not 0 < rename_share <= 1:
        raise UserError(f"--rename-share must be in (0, 1], got {rename_share}")
    if not (consistency >= 0 and math.isfinite(consistency)):
        raise UserError(f"--consistency must be ≥ 0, got {consistency}")


# --------------------------------------------------------------------------- losses


def probabilities(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Class probabilities of a softmax head, or of a single-logit (sigmoid) head as two columns."""
    if logits.shape[1] == 1:
        positive = torch.sigmoid(logits[:, 0] / temperature)
        return torch.stack([1 - positive, positive], dim=1)
    return torch.softmax(logits / temperature, dim=-1)


def consistency_loss(logits: torch.Tensor, renamed, temperature: float = 1.0) -> torch.Tensor:
    """Mean KL(p(original) ‖ p(renamed copy)) over the renamed copies, the original held fixed.

    Zero exactly when every renamed copy gets its original's distribution (a model that ignores
    identifier names); positive otherwise. Its gradient reaches the weights through the copies.
    """
    if renamed is None or not len(renamed.owner):
        return logits.sum() * 0.0
    target = probabilities(logits.detach()[renamed.owner], temperature).clamp_min(1e-12)
    copy = probabilities(renamed.logits, temperature).clamp_min(1e-12)
    return (target * (target.log() - copy.log())).sum(dim=1).mean() * temperature ** 2


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], labels.float(), reduction="sum")
    return torch.nn.functional.cross_entropy(logits, labels, reduction="sum")


def harden_loss(consistency: float):
    """The harden Objective loss: gold-label CE over originals and renamed copies, plus λ × consistency."""

    def loss(logits: torch.Tensor, indices: torch.Tensor, labels: torch.Tensor, renamed=None) -> torch.Tensor:
        total, count = _cross_entropy(logits, labels), len(labels)
        if renamed is not None and len(renamed.owner):
            total = total + _cross_entropy(renamed.logits, labels[renamed.owner])
            count += len(renamed.owner)
        value = total / count
        if consistency:
            value = value + consistency * consistency_loss(logits, renamed)
        return value

    return loss


def soft_kl(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """T²·KL(softmax(targets at T) ‖ softmax(logits/T)), summed over rows (targets are probabilities)."""
    wanted = torch.softmax(targets.clamp_min(1e-12).log() / temperature, dim=-1)
    student = torch.log_softmax(logits / temperature, dim=-1)
    return torch.nn.functional.kl_div(student, wanted, reduction="sum") * temperature ** 2


def robust_distillation_loss(teacher_probs: torch.Tensor, temperature: float, hard_weight: float, consistency: float,
                             view_targets):
    """Distillation on originals and renamed copies, plus λ × consistency.

    Each renamed copy learns a soft label too: `view_targets(slots)` gives the teacher's
    probabilities for it (the teacher on the original program, or on the copy itself; see
    `DistillConfig.robust_targets`). Labelled inputs add α × CE on both, as in plain distillation.
    """
    def loss(logits: torch.Tensor, indices: torch.Tensor, labels: torch.Tensor, renamed=None) -> torch.Tensor:
        targets = teacher_probs[indices.to(teacher_probs.device)].to(logits.device)
        soft, count = soft_kl(logits, targets, temperature), len(indices)
        labelled = labels >= 0
        hard, hard_count = (_cross_entropy(logits[labelled], labels[labelled]), int(labelled.sum()))
        if renamed is not None and len(renamed.owner):
            copy_targets = view_targets(renamed.slots, indices[renamed.owner]).to(logits.device)
            soft = soft + soft_kl(renamed.logits, copy_targets, temperature)
            count += len(renamed.owner)
            copy_labels = labels[renamed.owner]
            copy_labelled = copy_labels >= 0
            hard = hard + _cross_entropy(renamed.logits[copy_labelled], copy_labels[copy_labelled])
            hard_count += int(copy_labelled.sum())
        value = soft / count
        if hard_weight and hard_count:
            value = (1 - hard_weight) * value + hard_weight * hard / hard_count
        if consistency:
            value = value + consistency * consistency_loss(logits, renamed, temperature)
        return value

    return loss


# --------------------------------------------------------------------------- views


def epoch_views(renamings, codes: list, ids: list[str], *, seed: int, per_example: int,
                adversarial: dict[str, list] | None = None, start_epoch: int = 1):
    """`Objective.views`: fresh random renamings per epoch, plus one adversarial program per example that has some."""
    from engine.attacks.base import example_rng

    adversarial = adversarial or {}

    def views(epoch: int):
        if epoch < start_epoch:
            return None
        found = renamings.views(codes, ids, seed=seed, epoch=epoch, per_example=per_example)
        for index, identifier in enumerate(ids):
            programs = adversarial.get(identifier)
            if programs:
                rng = example_rng(seed, "adversarial", epoch, identifier)
                found.append((index, programs[int(rng.integers(len(programs)))]))
        return found

    return views


# --------------------------------------------------------------------------- pruning masks


def zero_mask(model) -> dict[str, torch.Tensor]:
    """Boolean masks of the encoder linear weights that are exactly zero (a pruned model's removed weights)."""
    from engine.compress.prune import encoder_linears

    try:
        layers = encoder_linears(model)
    except UserError:
        return {}
    return {name: (module.weight.detach() == 0).cpu() for name, module in layers.items()
            if bool((module.weight.detach() == 0).any())}


def keep_zeros(masks: dict[str, torch.Tensor]):
    """`Objective.after_step`: put every masked weight back to zero."""
    cache: dict[tuple[str, str], torch.Tensor] = {}

    def apply(model) -> None:
        if not masks:
            return
        modules = dict(model.named_modules())
        with torch.no_grad():
            for name, mask in masks.items():
                weight = modules[name].weight
                key = (name, str(weight.device))
                if key not in cache:
                    cache[key] = mask.to(weight.device)
                weight.masked_fill_(cache[key], 0.0)

    return apply


# --------------------------------------------------------------------------- a robust original (engine train)


def renamed_training(dataset, config, *, renamings: int, rename_share: float, consistency: float):
    """An `Objective` for `engine train --renamings K`: the usual classifier and gold labels, plus `renamings`
    fresh random renamings of every training program per epoch and the consistency term (harden's loss), so
    that the original is robust before it is compressed."""
    from engine.augment.renamings import Renamings
    from engine.models import build_classifier, parse_base
    from engine.train import Objective, split_for_validation

    check_knobs(renamings, rename_share, consistency)
    if renamings < 1:
        raise UserError("--renamings must be at least 1 to train on renamed programs")
    train_examples, _, _ = split_for_validation(dataset, config.seed)
    knobs = {"renamings": renamings, "rename_share": rename_share, "consistency": consistency}

    def build(texts):
        model, tokenizer, base_info = build_classifier(
            parse_base(config.base), label_names=dataset.label_names, texts=texts, max_length=config.max_length,
            vocab_size=config.vocab_size, head=config.head)
        return model, tokenizer, base_info | {"robust_training": knobs}

    return Objective(build=build, loss=harden_loss(consistency), key={"method": "train", "robust": knobs},
                     views=epoch_views(Renamings.for_dataset(dataset, share=rename_share),
                                       [ex.code for ex in train_examples], [str(ex.id) for ex in train_examples],
                                       seed=config.seed, per_example=renamings))
