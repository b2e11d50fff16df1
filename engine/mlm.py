"""Masked-language-model pre-training on code: `engine pretrain-mlm`.

Trains a from-scratch RoBERTa masked LM (scratch sizes as for classifiers) with a byte-level
BPE tokenizer trained on the same code, and writes a directory that
`AutoModelForMaskedLM.from_pretrained` / `AutoTokenizer.from_pretrained` load. ALERT-style
attacks use such a model to propose substitute names; any Hugging Face masked-LM directory
(e.g. CodeBERT-MLM, where available) can stand in for it.

Programs longer than `max_length` are cut into consecutive windows, each wrapped in `<s> … </s>`.
Masking is BERT's: 15 % of the non-special tokens are chosen; of those 80 % become `<mask>`,
10 % a random token, 10 % stay. The valid split (or 10 % of train) gives the reported loss,
perplexity and masked-token accuracy.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.datasets.base import Dataset
from engine.device import describe_device, resolve_device
from engine.errors import UserError
from engine.manifest import MANIFEST_NAME, write_manifest
from engine.models import SCRATCH_SIZES, build_masked_lm, code_texts, save_model
from engine.train import make_optimizer, set_seed


@dataclass
class MlmConfig:
    size: str = "small"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_length: int = 256
    mask_prob: float = 0.15
    vocab_size: int | None = None
    seed: int = 42
    device: str = "auto"

    def check(self) -> None:
        if self.size not in SCRATCH_SIZES:
            raise UserError(f"--size {self.size!r}: use {'|'.join(SCRATCH_SIZES)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_length < 16:
            raise UserError(f"--max-length {self.max_length} is too small for MLM windows (at least 16)")
        if not 0 < self.mask_prob < 1:
            raise UserError(f"--mask-prob must be in (0, 1), got {self.mask_prob}")


SPECIAL_IDS = (0, 1, 2, 3, 4)  # <s> <pad> </s> <unk> <mask>: never masked, never drawn as random tokens


def windows(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Each program's tokens cut into windows of `max_length - 2`, wrapped in `<s> … </s>`."""
    body = max_length - 2
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    out = []
    for tokens in ids:
        for start in range(0, len(tokens), body):
            piece = tokens[start:start + body]
            if len(piece) >= 4:
                out.append([tokenizer.bos_token_id, *piece, tokenizer.eos_token_id])
    return out


def mask_tokens(input_ids: torch.Tensor, tokenizer, mask_prob: float, generator: torch.Generator,
                special: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: returns (masked inputs, labels with -100 where no prediction is asked)."""
    labels = input_ids.clone()
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & ~special
    labels[~chosen] = -100
    inputs = input_ids.clone()
    replace = chosen & (torch.rand(input_ids.shape, generator=generator) < 0.8)
    inputs[replace] = tokenizer.mask_token_id
    randomize = chosen & ~replace & (torch.rand(input_ids.shape, generator=generator) < 0.5)
    random_ids = torch.randint(len(SPECIAL_IDS), len(tokenizer), input_ids.shape, generator=generator)
    inputs[randomize] = random_ids[randomize]
    return inputs, labels


def _pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids, mask


def _evaluate(model, tokenizer, rows, config: MlmConfig, device) -> dict[str, float]:
    generator = torch.Generator().manual_seed(config.seed + 7)  # the same masks every epoch
    total_loss, total_tokens, correct = 0.0, 0, 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), config.batch_size):
            ids, mask = _pad(rows[start:start + config.batch_size], tokenizer.pad_token_id)
            special = (ids < len(SPECIAL_IDS))
            inputs, labels = mask_tokens(ids, tokenizer, config.mask_prob, generator, special)
            logits = model(input_ids=inputs.to(device), attention_mask=mask.to(device)).logits.float().cpu()
            asked = labels != -100
            if not asked.any():
                continue
            total_loss += torch.nn.functional.cross_entropy(logits[asked], labels[asked], reduction="sum").item()
            correct += int((logits[asked].argmax(-1) == labels[asked]).sum())
            total_tokens += int(asked.sum())
    loss = total_loss / max(1, total_tokens)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "masked_accuracy": correct / max(1, total_tokens),
            "masked_tokens": total_tokens}


def pretrain_mlm(dataset: Dataset, config: MlmConfig, out_dir: str | os.PathLike, *, overwrite: bool = False,
                 progress: bool | None = None, log=None) -> dict[str, Any]:
    """Train a masked LM on `dataset`'s code and write it to `out_dir`; returns the manifest."""
    from tqdm.auto import tqdm

    config.check()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    out = Path(out_dir)
    if (out / MANIFEST_NAME).exists() and not overwrite:
        raise UserError(f"{out} already holds a model ({MANIFEST_NAME}); choose another --out or pass --overwrite")
    device = resolve_device(config.device)
    train_codes = [ex.code for ex in dataset.splits.get("train") or []]
    if not train_codes:
        raise UserError(f"dataset {dataset.name!r} has no training split to pre-train on")
    valid_codes = [ex.code for ex in dataset.splits.get("valid") or []]
    train_texts = code_texts(train_codes)
    if valid_codes:
        valid_texts, valid_source = code_texts(valid_codes), "valid split"
    else:
        shuffled = train_texts[:]
        random.Random(config.seed).shuffle(shuffled)
        cut = max(1, len(shuffled) // 10)
        valid_texts, train_texts = shuffled[:cut], shuffled[cut:] or shuffled
        valid_source = f"10% of train held out with seed {config.seed}"
    set_seed(config.seed)
    model, tokenizer, base_info = build_masked_lm(config.size, texts=train_texts, max_length=config.max_length,
                                                  vocab_size=config.vocab_size)
    model.to(device)
    train_rows = windows(tokenizer, train_texts, config.max_length)
    valid_rows = windows(tokenizer, valid_texts, config.max_length)
    if not train_rows:
        raise UserError("the training code is too short to make any MLM window")
    steps = math.ceil(len(train_rows) / config.batch_size) * config.epochs
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
    from transformers import get_linear_schedule_with_warmup  # linear warm-up to lr, then linear decay to 0

    scheduler = get_linear_schedule_with_warmup(optimizer, int(steps * config.warmup_ratio), steps)
    history = []
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(train_rows), generator=generator).tolist()
        total, count = 0.0, 0
        bar = tqdm(range(0, len(order), config.batch_size), desc=f"mlm epoch {epoch}/{config.epochs}", unit="batch",
                   disable=None if progress is None else not progress, leave=False, dynamic_ncols=True)
        for start in bar:
            ids, mask = _pad([train_rows[i] for i in order[start:start + config.batch_size]], tokenizer.pad_token_id)
            inputs, labels = mask_tokens(ids, tokenizer, config.mask_prob, generator, ids < len(SPECIAL_IDS))
            if not (labels != -100).any():
                continue
            loss = model(input_ids=inputs.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item()
            count += 1
            bar.set_postfix(loss=f"{total / count:.3f}")
        bar.close()
        valid = _evaluate(model, tokenizer, valid_rows, config, device) if valid_rows else None
        history.append({"epoch": epoch, "train_loss": total / max(1, count), "valid": valid})
        log(f"mlm epoch {epoch}/{config.epochs}: train loss {total / max(1, count):.3f}"
            + (f", valid loss {valid['loss']:.3f}, masked accuracy {valid['masked_accuracy']:.3f}" if valid else ""))
    model.eval()
    save_model(model.to("cpu"), tokenizer, out)
    return write_manifest(out, {
        "kind": "masked_lm",
        "base": f"scratch:{config.size}",
        "base_info": base_info,
        "language": dataset.language,
        "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint,
                    "splits": {name: len(examples) for name, examples in dataset.splits.items()},
                    "valid_source": valid_source},
        "hyperparameters": {key: value for key, value in asdict(config).items() if key != "device"},
        "device": describe_device(device),
        "training": {"windows": len(train_rows), "valid_windows": len(valid_rows), "history": history,
                     "seconds": round(time.perf_counter() - started, 3)},
        "metrics": history[-1]["valid"],
    }, model=model)
