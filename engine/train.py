"""Fine-tuning a code classifier: `engine train`.

AdamW with a linear warm-up/decay schedule, validation after every epoch with early stopping
(`patience` epochs without improvement), the best epoch's weights kept, seeds for torch, NumPy
and `random`, tqdm progress bars (rate and ETA), and a checkpoint per epoch so that an
interrupted run resumes where it stopped and ends with the same weights as an uninterrupted one:

    out/
      model.safetensors config.json tokenizer.json tokenizer_config.json manifest.json   (when done)
      checkpoint/                                                           (while training)
        epoch-N/  model.safetensors config.json tokenizer files state.pt    (the last epoch)
        best.safetensors                                                    (the best epoch so far)

`state.pt` holds the optimizer, scheduler, RNG states, epoch, best score and history; it is
loaded with `torch.load(weights_only=True)`. Shuffling is derived from (seed, epoch), not from a
running random stream, so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.datasets.base import Dataset, Example
from engine.device import describe_device, dtype_name, resolve_device, resolve_dtype
from engine.errors import UserError
from engine.evaluate import evaluate
from engine.manifest import MANIFEST_NAME, write_manifest
from engine.models import DEFAULT_MAX_LENGTH, build_classifier, code_texts, parse_base, quiet_transformers, save_model
from engine.victim import Victim, encode_codes, model_input_names, pad_batch

CHECKPOINT_DIR = "checkpoint"
SELECT_METRICS = ("accuracy", "f1")
_LENGTH_GROUP = 50  # batches per length-sorted group when building training batches


# Peak learning rates for randomly initialised RoBERTas. Larger ones diverge to the uniform
# prediction at 1e-3: scratch:small on GCJ authorship (66 classes, 396 programs) stayed at
# chance for 4 epochs at 1e-3 and reached 0.55 validation accuracy by epoch 19 at 3e-4.
SCRATCH_LR = {"tiny": 1e-3, "small": 3e-4, "base": 1e-4}


@dataclass
class TrainConfig:
    """Hyper-parameters of a fine-tuning run (all recorded in the manifest)."""

    base: str = "scratch:small"
    epochs: int | None = None  # None: 10 for scratch models, 3 for pre-trained ones
    batch_size: int = 16
    lr: float | None = None  # None: by scratch size (SCRATCH_LR), 5e-5 for pre-trained ones
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_length: int = DEFAULT_MAX_LENGTH
    patience: int = 3
    seed: int = 42
    head: str = "softmax"
    vocab_size: int | None = None
    select_metric: str = "accuracy"
    eval_batch_size: int = 64
    dtype: str = "fp32"
    device: str = "auto"  # not a hyper-parameter: a run may resume on another device
    backend: str = "auto"  # validation/test forward pass (engine.backends); like the device, not a hyper-parameter

    @property
    def from_scratch(self) -> bool:
        return self.base.strip().startswith("scratch")

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        if not self.from_scratch:
            return 5e-5
        size = self.base.strip().partition(":")[2] or "small"
        return SCRATCH_LR.get(size, SCRATCH_LR["small"])

    def resolved_epochs(self) -> int:
        if self.epochs is not None:
            return int(self.epochs)
        return 10 if self.from_scratch else 3

    def check(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {self.epochs}")
        for name in ("batch_size", "max_length", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise UserError(f"--patience must be ≥ 0 (0 disables early stopping), got {self.patience}")
        if not 0 <= self.warmup_ratio < 1:
            raise UserError(f"--warmup must be in [0, 1), got {self.warmup_ratio}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        if self.select_metric not in SELECT_METRICS:
            raise UserError(f"--select-metric {self.select_metric!r}: use {' or '.join(SELECT_METRICS)}")
        dtype_name(self.dtype)

    def hyperparameters(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("device")
        values.pop("backend")
        values["lr"] = self.resolved_lr()
        values["epochs"] = self.resolved_epochs()
        values["dtype"] = dtype_name(self.dtype)
        return values


@dataclass
class Objective:
    """What a run learns from when it is not the gold labels alone (knowledge distillation).

    - `build(texts)` makes the fresh model, tokenizer and base_info from the training code,
      in place of `config.base`;
    - `loss(logits, indices, labels)` is the batch loss: `indices` are positions in the training
      inputs (the train examples, then `extra_codes`), `labels` their gold labels (-1 for extras);
    - `extra_codes` are unlabelled inputs trained on after the labelled ones;
    - `key` identifies everything the loss depends on: a checkpoint made with another key is
      never resumed.
    """

    build: Callable[[list[str]], tuple[Any, Any, dict[str, Any]]]
    loss: Callable[..., torch.Tensor]
    extra_codes: list = field(default_factory=list)
    key: dict[str, Any] = field(default_factory=dict)
    # Robust training (engine.compress.robust): `views(epoch)` gives renamed copies of training inputs
    # as (input index, program) pairs, fresh each epoch (None: none that epoch); a batch then also runs
    # its inputs' renamed copies and `loss` gets a fourth argument, the `RenamedBatch`.
    views: Callable[[int], list[tuple[int, Any]] | None] | None = None
    after_step: Callable[[Any], None] | None = None  # after every optimizer step (e.g. re-apply a pruning mask)
    first_eligible_epoch: int = 1  # epochs before it are never the kept (best) epoch, nor count for patience


@dataclass
class RenamedBatch:
    """The renamed copies in one batch: their logits, the batch position of each one's original, and
    each one's position in the epoch's `views` list."""

    logits: torch.Tensor
    owner: torch.Tensor
    slots: torch.Tensor


@dataclass
class TrainResult:
    out_dir: Path
    finished: bool  # False when stopped on purpose after `stop_after_epoch`
    manifest: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_state() -> dict[str, Any]:
    """RNG states as tensors and plain lists (loadable with `torch.load(weights_only=True)`)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                       "has_gauss": int(has_gauss), "cached": float(cached)},
             "random": {"version": version, "internal": list(internal), "gauss": gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"], n["cached"]))
    r = state["random"]
    random.setstate((r["version"], tuple(r["internal"]), r["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_optimizer(model, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(parameter)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of example indices for `epoch`, grouped by length to pad less.

    Indices are shuffled, cut into groups of `_LENGTH_GROUP` batches, sorted by length inside a
    group, cut into batches, and the batches shuffled again. Depends only on (seed, epoch).
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    group = batch_size * _LENGTH_GROUP
    batches = []
    for start in range(0, len(order), group):
        chunk = sorted(order[start:start + group], key=lambda i: -lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def split_for_validation(dataset: Dataset, seed: int) -> tuple[list[Example], list[Example], str]:
    """(train, valid, where valid came from): the valid split, or 10 % of train held out by `seed`."""
    train = list(dataset.split("train")) if "train" in dataset.splits else []
    if not train:
        raise UserError(f"dataset {dataset.name!r} has no training examples (splits: {', '.join(dataset.splits) or 'none'})")
    valid = list(dataset.splits.get("valid") or [])
    if valid:
        return train, valid, "valid split"
    if len(train) < 10:
        raise UserError(f"dataset {dataset.name!r} has no valid split and only {len(train)} training examples")
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    cut = max(1, len(train) // 10)
    held = set(order[:cut])
    return ([ex for i, ex in enumerate(train) if i not in held], [train[i] for i in sorted(held)],
            f"10% of train held out with seed {seed}")


def train(dataset: Dataset, config: TrainConfig, out_dir: str | os.PathLike, *, resume: bool | None = None,
          overwrite: bool = False, progress: bool | None = None, stop_after_epoch: int | None = None,
          log=None, objective: Objective | None = None) -> TrainResult:
    """Fine-tune `config.base` on `dataset` into `out_dir`; see the module docstring.

    `resume=None` resumes when `out_dir` holds a checkpoint, `True` requires one, `False` refuses
    to touch one. `overwrite=True` deletes an existing checkpoint or model first.
    `stop_after_epoch=k` stops after epoch k with the checkpoint in place, as an interruption would.
    `objective` replaces the model builder and the cross-entropy loss (see `Objective`).
    """
    config.check()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    out = Path(out_dir)
    checkpoint_root = out / CHECKPOINT_DIR
    device = resolve_device(config.device)
    compute_dtype = resolve_dtype(config.dtype, device)
    _prepare_out_dir(out, overwrite, resume)
    last = _latest_checkpoint(checkpoint_root)
    if resume and last is None:
        raise UserError(f"--resume: {checkpoint_root} holds no checkpoint to resume from")

    train_examples, valid_examples, valid_source = split_for_validation(dataset, config.seed)
    for split_name, examples in (("train", train_examples), ("valid", valid_examples)):
        bad = [ex.id for ex in examples if not 0 <= ex.label < dataset.num_labels]
        if bad:
            raise UserError(f"{split_name} examples {bad[:5]} have labels outside 0..{dataset.num_labels - 1}")
    lr = config.resolved_lr()
    epochs = config.resolved_epochs()
    extra_codes = list(objective.extra_codes) if objective else []
    steps_per_epoch = math.ceil((len(train_examples) + len(extra_codes)) / config.batch_size)
    total_steps = steps_per_epoch * epochs
    warmup_steps = int(total_steps * config.warmup_ratio)

    if last is not None:
        state = torch.load(last / "state.pt", map_location="cpu", weights_only=True)
        _check_compatible(state, config, dataset, last, objective)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(last)
            tokenizer = AutoTokenizer.from_pretrained(last)
        base_info = state["base_info"]
        log(f"resuming from {last} (epoch {state['epoch']} of {epochs} done)")
    else:
        state = None
        set_seed(config.seed)
        texts = code_texts([ex.code for ex in train_examples] + extra_codes)
        if objective is not None:
            model, tokenizer, base_info = objective.build(texts)
        else:
            model, tokenizer, base_info = build_classifier(
                parse_base(config.base), label_names=dataset.label_names, texts=texts,
                max_length=config.max_length, vocab_size=config.vocab_size, head=config.head)
    model.to(device)
    optimizer = make_optimizer(model, lr, config.weight_decay)
    from transformers import get_linear_schedule_with_warmup  # linear warm-up to lr, then linear decay to 0

    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    scaler = torch.amp.GradScaler(device.type) if compute_dtype == torch.float16 else None
    history: list[dict[str, Any]] = []
    best_score, best_epoch, stale, start_epoch, stopped_early, seconds_before = -math.inf, 0, 0, 0, False, 0.0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        history = list(state["history"])
        best_score, best_epoch, stale = state["best_score"], state["best_epoch"], state["stale"]
        start_epoch, stopped_early = state["epoch"], state["stopped_early"]
        seconds_before = state["seconds"]

    input_names = model_input_names(tokenizer)
    encoded = encode_codes(tokenizer, [ex.code for ex in train_examples] + extra_codes, config.max_length, input_names)
    lengths = [len(e["input_ids"]) for e in encoded]
    labels = torch.tensor([ex.label for ex in train_examples] + [-1] * len(extra_codes))
    validator = Victim(model, tokenizer, max_length=config.max_length, batch_size=config.eval_batch_size,
                       device=device, dtype="fp32", cache_size=0, backend=config.backend)
    sigmoid = model.config.num_labels == 1

    def autocast():
        if compute_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=compute_dtype)

    from tqdm.auto import tqdm

    started = time.perf_counter()
    epoch = start_epoch
    first_eligible = objective.first_eligible_epoch if objective else 1
    if first_eligible > epochs:
        raise UserError(f"the robust phase starts at epoch {first_eligible} but training has only {epochs} epochs")
    for epoch in range(start_epoch + 1, epochs + 1):
        if stopped_early:
            break
        epoch_started = time.perf_counter()
        views = objective.views(epoch) if objective is not None and objective.views is not None else None
        by_input: dict[int, list[int]] = {}
        view_encoded: list = []
        if views:
            view_encoded = encode_codes(tokenizer, [code for _, code in views], config.max_length, input_names)
            for slot, (index, _) in enumerate(views):
                by_input.setdefault(index, []).append(slot)
        model.train()
        batches = epoch_batches(lengths, config.batch_size, config.seed, epoch)
        total_loss, seen = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="batch", disable=_disabled(progress),
                   dynamic_ncols=True, leave=False)
        for batch in bar:
            slots = [slot for i in batch for slot in by_input.get(i, ())]
            rows = [encoded[i] for i in batch] + [view_encoded[slot] for slot in slots]
            tensors = pad_batch(tokenizer, rows, None, device)
            targets = labels[batch].to(device)
            with autocast():
                logits = model(**tensors).logits.float()
            renamed = None
            if slots:
                position = {index: at for at, index in enumerate(batch)}
                renamed = RenamedBatch(logits[len(batch):],
                                       torch.tensor([position[views[slot][0]] for slot in slots], device=device),
                                       torch.tensor(slots, device=device))
                logits = logits[:len(batch)]
            if objective is not None:
                if objective.views is not None:
                    loss = objective.loss(logits, torch.tensor(batch, device=device), targets, renamed)
                else:
                    loss = objective.loss(logits, torch.tensor(batch, device=device), targets)
            elif sigmoid:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], targets.float())
            else:
                loss = torch.nn.functional.cross_entropy(logits, targets)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if objective is not None and objective.after_step is not None:
                objective.after_step(model)
            total_loss += loss.item() * len(batch)
            seen += len(batch)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        bar.close()
        model.eval()
        valid = evaluate(validator, valid_examples, num_labels=dataset.num_labels, split="valid",
                         progress=progress).metrics
        score = valid[config.select_metric]
        eligible = epoch >= first_eligible
        improved = eligible and score > best_score
        if improved:
            best_score, best_epoch, stale = score, epoch, 0
        elif eligible:
            stale += 1
        stopped_early = bool(config.patience and stale >= config.patience and epoch < epochs)
        record = {"epoch": epoch, "train_loss": total_loss / max(1, seen), "valid_accuracy": valid["accuracy"],
                  "valid_f1": valid["f1"], "seconds": round(time.perf_counter() - epoch_started, 3),
                  "best": improved, **({"renamed_views": len(views or ())} if objective is not None and objective.views
                                       else {})}
        history.append(record)
        log(f"epoch {epoch}/{epochs}: loss {record['train_loss']:.4f}, valid accuracy {valid['accuracy']:.4f}, "
            f"f1 {valid['f1']:.4f}{' (best)' if improved else ''}, {record['seconds']:.1f} s"
            + (f"; no improvement for {stale} epochs, stopping" if stopped_early else ""))
        _save_checkpoint(checkpoint_root, epoch, model, tokenizer, improved, {
            "epoch": epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "rng": rng_state(),
            "history": history, "best_score": best_score, "best_epoch": best_epoch, "stale": stale,
            "stopped_early": stopped_early, "seconds": seconds_before + time.perf_counter() - started,
            "config": config.hyperparameters(), "dataset_fingerprint": dataset.fingerprint, "base_info": base_info,
            "objective": objective.key if objective else None,
        })
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < epochs and not stopped_early:
            log(f"stopping after epoch {epoch} as asked; run again with the same --out to resume")
            return TrainResult(out, False, None, history)

    train_seconds = seconds_before + time.perf_counter() - started
    from safetensors.torch import load_model

    load_model(model, str(checkpoint_root / "best.safetensors"), device=str(device))
    model.eval()
    save_model(model.to("cpu"), tokenizer, out)
    model.to(device)
    tester = Victim(model, tokenizer, max_length=config.max_length, batch_size=config.eval_batch_size,
                    device=device, dtype="fp32", cache_size=0, backend=config.backend)
    test_split = "test" if dataset.splits.get("test") else None
    metrics = (evaluate(tester, dataset.split("test"), num_labels=dataset.num_labels, split="test",
                        progress=progress).metrics if test_split else None)
    manifest = write_manifest(out, {
        "kind": "classifier",
        "base": config.base,
        "base_info": base_info,
        "task": dataset.task,
        "language": dataset.language,
        "compression": {"method": "none"},
        "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint,
                    "splits": {name: len(examples) for name, examples in dataset.splits.items()},
                    "valid_source": valid_source, "details": dataset.manifest},
        "label_names": list(dataset.label_names),
        "num_labels": dataset.num_labels,
        "head": config.head,
        "hyperparameters": config.hyperparameters(),
        "device": describe_device(device),
        "eval_backend": tester.describe()["backend"],
        "training": {"epochs_run": len(history), "best_epoch": best_epoch,
                     "best_valid_" + config.select_metric: best_score, "stopped_early": stopped_early,
                     "resumed": last is not None, "seconds": round(train_seconds, 3),
                     "steps_per_epoch": steps_per_epoch, "history": history},
        "metrics_split": test_split,
        "metrics": _metric_summary(metrics),
        "confusion": metrics["confusion"] if metrics else None,
    }, model=model)
    shutil.rmtree(checkpoint_root, ignore_errors=True)
    log(f"saved {out} (best epoch {best_epoch}); test accuracy "
        + (f"{metrics['accuracy']:.4f}, {metrics['average']} f1 {metrics['f1']:.4f}" if metrics else "n/a (no test split)"))
    return TrainResult(out, True, manifest, history)


def _metric_summary(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if metrics is None:
        return None
    return {key: metrics[key] for key in ("n", "accuracy", "precision", "recall", "f1", "average", "positive_label")}


def _disabled(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _prepare_out_dir(out: Path, overwrite: bool, resume: bool | None) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    has_checkpoint = _latest_checkpoint(out / CHECKPOINT_DIR) is not None
    if overwrite:
        if resume:
            raise UserError("--resume and --overwrite contradict each other")
        for name in (CHECKPOINT_DIR, MANIFEST_NAME, "model.safetensors"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        return
    if has_checkpoint and resume is False:
        raise UserError(f"{out} holds an unfinished training checkpoint; resume it (default) or pass --overwrite")
    if not has_checkpoint and (out / MANIFEST_NAME).exists():
        raise UserError(f"{out} already holds a trained model ({MANIFEST_NAME}); choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)


def _latest_checkpoint(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    epochs = []
    for path in root.glob("epoch-*"):
        suffix = path.name.partition("-")[2]
        if suffix.isdigit() and (path / "state.pt").is_file():
            epochs.append((int(suffix), path))
    return max(epochs)[1] if epochs else None


def _save_checkpoint(root: Path, epoch: int, model, tokenizer, improved: bool, state: dict[str, Any]) -> None:
    """Write epoch `epoch`'s checkpoint next to the old one, then swap, so a crash never leaves half a checkpoint."""
    from safetensors.torch import save_model as save_safetensors

    root.mkdir(parents=True, exist_ok=True)
    if improved:
        temporary = root / "best.safetensors.tmp"
        save_safetensors(model, str(temporary))
        os.replace(temporary, root / "best.safetensors")
    staging = root / f"epoch-{epoch}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    save_model(model, tokenizer, staging)
    torch.save(state, staging / "state.pt")
    final = root / f"epoch-{epoch}"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    for old in root.glob("epoch-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def _check_compatible(state: dict[str, Any], config: TrainConfig, dataset: Dataset, where: Path,
                      objective: Objective | None = None) -> None:
    if state["dataset_fingerprint"] != dataset.fingerprint:
        raise UserError(f"{where}: the checkpoint was trained on other data (fingerprint {state['dataset_fingerprint']}, "
                        f"now {dataset.fingerprint}); use another --out or pass --overwrite")
    if state.get("objective") != (objective.key if objective else None):
        raise UserError(f"{where}: the checkpoint was made with another training objective ({state.get('objective')}); "
                        "resume with the same options, use another --out, or pass --overwrite")
    recorded, current = state["config"], config.hyperparameters()
    changed = [f"{key}: {recorded.get(key)!r} → {current.get(key)!r}" for key in sorted(set(recorded) | set(current))
               if recorded.get(key) != current.get(key)]
    if changed:
        raise UserError(f"{where}: the checkpoint was made with other hyper-parameters ({'; '.join(changed)}); "
                        "resume with the same options, use another --out, or pass --overwrite")
