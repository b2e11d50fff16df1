"""Knowledge distillation into a Compressor-style student (Shi et al., ASE 2022).

The student is a small RoBERTa with its own byte-level BPE tokenizer (vocabulary 1,000–6,000)
trained on the task's training code plus any unlabelled code given. It learns from the
teacher's soft labels: the loss is `(1 − α)·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + α·CE(z_s, y)`
with temperature `T` and hard-label weight `α` (0 by default: soft labels only, as in
Compressor). Unlabelled programs contribute to the KL term only.

**Architecture.** `--target-mb` picks the shape (layers, hidden, heads, intermediate size,
vocabulary) for that size of float32 weights. Compressor searches this space with a genetic
algorithm maximising GFLOPs under the size constraint; the space here is small enough to search
exhaustively: among the shapes that fit the target but are no more than `tolerance` (10 %)
smaller, the one with the most multiply-adds per token wins (more computation, more capacity for
the same bytes); when none fits, the closest. For 3 MB and 256 tokens that is 12 layers, hidden 96, 8 heads,
intermediate 64 and a 1,000-token vocabulary, Compressor's 3 MB model. Any dimension can be fixed
(`--layers`, `--hidden`, …); the search then runs over the rest.

**Soft labels** are the teacher's probabilities for every training input, computed once through
the victim (batched, length-bucketed) and cached under
`<cache root>/soft-labels/<key>.npz`, the key hashing the teacher's fingerprint, its input length
and every input; a rerun or a resumed distillation reads them instead of querying the teacher.

**Training** is `engine.train.train` with an `Objective` (the student builder and the loss
above): the same epochs, validation on gold labels, best-epoch selection, per-epoch checkpoints
and resume. Rerunning an interrupted distillation with the same options resumes from its last
epoch checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import UserError

LAYERS = tuple(range(1, 13))
HIDDEN = (32, 48, 64, 96, 128, 192, 256, 384, 512, 768)
INTERMEDIATE = (32, 64, 128, 256, 512, 1024, 2048, 3072)
VOCAB = (1000, 2000, 3000, 4000, 5000, 6000)
HEAD_CHOICES = (12, 8, 4, 2, 1)
MIN_HEAD_WIDTH = 12
UNKNOWN_TOKEN_LIMIT = 0.05  # more unknown teacher tokens than this: the teacher cannot read the data
_EXTENSIONS = {"python": (".py",), "c": (".c", ".h"), "java": (".java",)}


@dataclass(frozen=True)
class StudentShape:
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int

    def parameters(self, max_length: int, num_labels: int) -> int:
        """Parameters of RobertaForSequenceClassification with this shape (tied nothing, no pooler)."""
        h, i = self.hidden, self.intermediate
        embeddings = (self.vocab + max_length + 2 + 1) * h + 2 * h  # words, positions (pad offset), type, LayerNorm
        layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h
        head = (h * h + h) + (h * num_labels + num_labels)
        return embeddings + self.layers * layer + head

    def size_mb(self, max_length: int, num_labels: int) -> float:
        return self.parameters(max_length, num_labels) * 4 / 1e6

    def flops_per_token(self, max_length: int) -> int:
        """Multiply-adds ×2 per token: the linear layers plus attention scores and mixing over `max_length` positions."""
        h, i = self.hidden, self.intermediate
        return self.layers * 2 * (4 * h * h + 2 * h * i + 2 * max_length * h)


def default_heads(hidden: int) -> int:
    """Most heads (of 12, 8, 4, 2, 1) that divide `hidden` with at least 12 dimensions each."""
    for heads in HEAD_CHOICES:
        if hidden % heads == 0 and hidden // heads >= MIN_HEAD_WIDTH:
            return heads
    return 1


def choose_architecture(target_mb: float, *, max_length: int, num_labels: int, tolerance: float = 0.1,
                        fixed: dict[str, int] | None = None) -> StudentShape:
    """The student shape for `target_mb` (see the module docstring); `fixed` pins any of layers/hidden/heads/intermediate/vocab."""
    if not target_mb > 0:
        raise UserError(f"--target-mb must be positive, got {target_mb}")
    fixed = {key: value for key, value in (fixed or {}).items() if value is not None}
    unknown = set(fixed) - {"layers", "hidden", "heads", "intermediate", "vocab"}
    if unknown:
        raise ValueError(f"unknown shape fields {unknown}")
    if "vocab" in fixed and not 300 <= fixed["vocab"]:
        raise UserError(f"--vocab-size {fixed['vocab']}: byte-level BPE needs at least 300 tokens")
    candidates = []
    for layers in [fixed["layers"]] if "layers" in fixed else LAYERS:
        for hidden in [fixed["hidden"]] if "hidden" in fixed else HIDDEN:
            heads = fixed.get("heads") or default_heads(hidden)
            if hidden % heads:
                continue
            for intermediate in [fixed["intermediate"]] if "intermediate" in fixed else INTERMEDIATE:
                for vocab in [fixed["vocab"]] if "vocab" in fixed else VOCAB:
                    candidates.append(StudentShape(layers, hidden, heads, intermediate, vocab))
    if not candidates:
        raise UserError(f"no student shape fits the fixed dimensions {fixed} (the hidden size must divide by the heads)")

    def error(shape: StudentShape) -> float:
        return abs(shape.size_mb(max_length, num_labels) - target_mb) / target_mb

    close = [shape for shape in candidates
             if (1 - tolerance) * target_mb <= shape.size_mb(max_length, num_labels) <= target_mb]
    if close:
        return max(close, key=lambda s: (s.flops_per_token(max_length), -error(s), -s.vocab))
    best = min(candidates, key=error)
    if error(best) > 0.5:
        sizes = [shape.size_mb(max_length, num_labels) for shape in candidates]
        raise UserError(f"--target-mb {target_mb}: the student shapes searched range from {min(sizes):.2f} to "
                        f"{max(sizes):.1f} MB (float32 weights); choose a target in that range")
    return best


# --------------------------------------------------------------------------- data


def read_unlabelled(path: str | os.PathLike, language: str) -> list[str]:
    """Programs from a directory (every file with the language's extension) or a JSONL file (`code` field per line)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"--unlabelled {path}: no such file or directory")
    codes: list[str] = []
    if path.is_dir():
        extensions = _EXTENSIONS.get(language)
        if not extensions:
            raise UserError(f"--unlabelled {path}: no file extensions known for language {language!r}; use a JSONL file")
        for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in extensions):
            try:
                codes.append(file.read_text(encoding="utf-8"))
            except UnicodeDecodeError as err:
                raise UserError(f"{file}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        if not codes:
            raise UserError(f"--unlabelled {path}: no {'/'.join(extensions)} files in it")
        return [code for code in codes if code.strip()]
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{number}: not JSON ({err.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("code"), str):
                raise UserError(f"{path}:{number}: each line must be an object with a string field \"code\"")
            codes.append(row["code"])
    if not codes:
        raise UserError(f"--unlabelled {path}: no programs in it")
    return codes


def check_teacher_fits(teacher, dataset, codes: Sequence, sample: int = 200) -> dict[str, Any]:
    """UserError when the teacher cannot label this data: other labels, or a tokenizer that does not read the code."""
    if teacher.num_labels != dataset.num_labels:
        raise UserError(f"the teacher has {teacher.num_labels} classes but dataset {dataset.name!r} has "
                        f"{dataset.num_labels}: it was not trained for this task")
    names = (teacher.manifest or {}).get("label_names")
    if names and list(names) != list(dataset.label_names):
        raise UserError(f"the teacher's labels {names} are not the dataset's {dataset.label_names} "
                        "(another task or another label order)")
    tokenizer = teacher.tokenizer
    unknown_id = tokenizer.unk_token_id
    encoded = teacher.encode(list(codes[:sample]))
    special = set(tokenizer.all_special_ids) - {unknown_id}
    tokens = [token for item in encoded for token in item["input_ids"] if token not in special]
    unknown = sum(token == unknown_id for token in tokens) if unknown_id is not None else 0
    share = unknown / len(tokens) if tokens else 1.0
    if share > UNKNOWN_TOKEN_LIMIT:
        raise UserError(f"the teacher's tokenizer does not fit this data: {share:.1%} of the tokens of the first "
                        f"{len(encoded)} training programs are unknown ({tokenizer.unk_token}); was the teacher "
                        f"trained on {dataset.language} code?")
    return {"unknown_token_share": share, "tokens_checked": len(tokens)}


# --------------------------------------------------------------------------- soft labels


def soft_label_key(teacher_fingerprint: str, max_length: int, normalize: str, codes: Sequence) -> str:
    digest = hashlib.sha256(json.dumps([teacher_fingerprint, max_length, normalize]).encode())
    for code in codes:
        digest.update(json.dumps(code).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:24]


def soft_labels(teacher, codes: Sequence, key: str, cache_dir: Path, *, chunk: int = 512,
                progress: bool | None = None) -> tuple[np.ndarray, bool]:
    """(N × C teacher probabilities, whether they came from the cache), computed once per key."""
    from tqdm.auto import tqdm

    path = cache_dir / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as stored:
                probs = stored["probs"]
            if probs.shape == (len(codes), teacher.num_labels):
                return probs, True
        except (OSError, ValueError, KeyError):
            pass  # damaged: computed again below
    rows = []
    bar = tqdm(total=len(codes), desc="teacher soft labels", unit="ex", leave=False,
               disable=None if progress is None else not progress)
    for start in range(0, len(codes), chunk):
        batch = list(codes[start:start + chunk])
        rows.append(teacher.predict_proba(batch))
        bar.update(len(batch))
    bar.close()
    probs = np.concatenate(rows) if rows else np.zeros((0, teacher.num_labels))
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = cache_dir / f"{key}.tmp-{os.getpid()}.npz"
    np.savez(temporary, probs=probs)
    os.replace(temporary, path)
    return probs, False


def distillation_loss(teacher_probs: torch.Tensor, temperature: float, hard_weight: float):
    """The Objective loss: T²-scaled KL to the teacher at temperature T, plus α × cross-entropy on labelled inputs."""
    teacher_log = teacher_probs.clamp_min(1e-12).log()

    def loss(logits: torch.Tensor, indices: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = torch.softmax(teacher_log[indices.to(teacher_log.device)].to(logits.device) / temperature, dim=-1)
        student = torch.log_softmax(logits / temperature, dim=-1)
        value = torch.nn.functional.kl_div(student, targets, reduction="batchmean") * temperature ** 2
        if hard_weight:
            labelled = labels >= 0
            hard = (torch.nn.functional.cross_entropy(logits[labelled], labels[labelled])
                    if labelled.any() else logits.sum() * 0.0)
            value = (1 - hard_weight) * value + hard_weight * hard
        return value

    return loss


# --------------------------------------------------------------------------- the run


@dataclass
class DistillConfig:
    target_mb: float = 3.0
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    intermediate: int | None = None
    vocab_size: int | None = None
    temperature: float = 2.0
    hard_weight: float = 0.0
    epochs: int = 10
    batch_size: int = 16
    lr: float = 5e-4
    patience: int = 3
    seed: int = 42
    eval_batch_size: int = 64
    device: str = "auto"
    # --robust (engine.compress.robust): renamed programs and a consistency term after `robust_warmup` epochs
    robust: bool = False
    renamings: int = 1
    rename_share: float = 1.0
    consistency: float = 1.0
    robust_targets: str = "original"
    robust_warmup: int = 5

    def robust_knobs(self) -> dict[str, Any]:
        return {"renamings": self.renamings, "rename_share": self.rename_share, "consistency": self.consistency,
                "robust_targets": self.robust_targets, "robust_warmup": self.robust_warmup} if self.robust else {}

    def check(self) -> None:
        if self.robust:
            from engine.compress.robust import TARGETS, check_knobs

            check_knobs(self.renamings, self.rename_share, self.consistency)
            if self.renamings < 1:
                raise UserError("--robust needs --renamings of at least 1")
            if self.robust_targets not in TARGETS:
                raise UserError(f"--robust-targets {self.robust_targets!r}: use {' or '.join(TARGETS)}")
            if not 0 <= self.robust_warmup < self.epochs:
                raise UserError(f"--robust-warmup {self.robust_warmup}: must be at least 0 and below --epochs "
                                f"{self.epochs} (the robust epochs follow the warm-up)")
        if not self.temperature > 0:
            raise UserError(f"--temperature must be positive, got {self.temperature}")
        if not 0 <= self.hard_weight <= 1:
            raise UserError(f"--hard-weight must be in [0, 1], got {self.hard_weight}")
        if self.vocab_size is not None and not 1000 <= self.vocab_size <= 6000:
            raise UserError(f"--vocab-size {self.vocab_size}: a student's vocabulary is 1,000–6,000 tokens")


def build_student(shape: StudentShape, texts: Sequence[str], *, label_names: Sequence[str], max_length: int):
    """A randomly initialised student RoBERTa and its BPE tokenizer trained on `texts`."""
    from transformers import RobertaForSequenceClassification

    from engine.models import ScratchSize, scratch_config, train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(texts, shape.vocab, max_length)
    size = ScratchSize(hidden=shape.hidden, layers=shape.layers, heads=shape.heads, ffn=shape.intermediate,
                       vocab=shape.vocab)
    config = scratch_config(size, vocab_size=len(tokenizer), max_length=max_length, tokenizer=tokenizer,
                            num_labels=len(label_names))
    model = RobertaForSequenceClassification(config)
    model.config.update({"id2label": dict(enumerate(label_names)),
                         "label2id": {name: i for i, name in enumerate(label_names)}})
    model.config.problem_type = "single_label_classification"
    return model, tokenizer


def distill(teacher, teacher_fingerprint: str, dataset, config: DistillConfig, out: Path, *,
            unlabelled: Sequence[str] = (), overwrite: bool = False, progress: bool | None = None,
            stop_after_epoch: int | None = None, log=None, adversarial: dict[str, list] | None = None):
    """Train a student of `teacher` (a Victim) into `out`; returns (TrainResult, distillation facts for the manifest)."""
    from engine.datasets.registry import cache_root
    from engine.manifest import read_manifest
    from engine.train import Objective, TrainConfig, TrainResult, split_for_validation, train

    config.check()
    max_length = teacher.max_length
    shape = choose_architecture(config.target_mb, max_length=max_length, num_labels=dataset.num_labels, fixed={
        "layers": config.layers, "hidden": config.hidden, "heads": config.heads,
        "intermediate": config.intermediate, "vocab": config.vocab_size})
    train_config = TrainConfig(base="distill", epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                               max_length=max_length, patience=config.patience, seed=config.seed, head="softmax",
                               vocab_size=shape.vocab, eval_batch_size=config.eval_batch_size, device=config.device)
    train_config.check()
    train_examples, _, _ = split_for_validation(dataset, train_config.seed)  # the same split train() makes
    seen = {ex.code for ex in train_examples}
    extra = list(dict.fromkeys(code for code in unlabelled if code not in seen))
    codes = [ex.code for ex in train_examples] + extra
    fit = check_teacher_fits(teacher, dataset, codes)
    key = soft_label_key(teacher_fingerprint, max_length, teacher.normalize, codes)
    probs, cached = soft_labels(teacher, codes, key, cache_root() / "soft-labels", progress=progress)
    agreement_with_gold = float(np.mean(probs[:len(train_examples)].argmax(1) == [ex.label for ex in train_examples]))
    objective_key = {"method": "distill", "teacher": teacher_fingerprint, "soft_labels": key,
                     "temperature": config.temperature, "hard_weight": config.hard_weight,
                     "architecture": asdict(shape), "unlabelled": len(extra)}
    if config.robust:
        objective_key |= {"robust": config.robust_knobs(),
                          "adversarial_programs": sum(len(v) for v in (adversarial or {}).values())}
    base_info = {"base": "distill", "kind": "distilled", "architecture": asdict(shape) | {"model_type": "roberta"},
                 "estimated_mb": round(shape.size_mb(max_length, dataset.num_labels), 3),
                 "objective_key": objective_key}

    def build(texts: list[str]):
        model, tokenizer = build_student(shape, texts, label_names=dataset.label_names, max_length=max_length)
        return model, tokenizer, base_info | {"vocab_size": len(tokenizer), "requested_vocab_size": shape.vocab}

    teacher_probs = torch.from_numpy(probs).float()
    objective = Objective(build=build, loss=distillation_loss(teacher_probs, config.temperature, config.hard_weight),
                          extra_codes=extra, key=objective_key)
    robust_facts: dict[str, Any] = {}
    if config.robust:
        objective, robust_facts = _robust_objective(objective, teacher, teacher_fingerprint, dataset, config,
                                                    teacher_probs, codes, train_examples, adversarial or {}, progress)
    if _finished(out, objective_key) and not overwrite:
        (log or print)(f"{out} already holds this student (training finished); not training it again")
        manifest = read_manifest(out)
        result = TrainResult(out, True, manifest, manifest["training"]["history"])
    else:
        result = train(dataset, train_config, out, overwrite=overwrite, progress=progress,
                       stop_after_epoch=stop_after_epoch, log=log, objective=objective)
    facts = {
        "target_mb": config.target_mb, "architecture": asdict(shape),
        "estimated_mb": base_info["estimated_mb"], "temperature": config.temperature,
        "hard_weight": config.hard_weight, "epochs": config.epochs, "lr": config.lr, "batch_size": config.batch_size,
        "seed": config.seed, "train_examples": len(train_examples), "unlabelled_examples": len(extra),
        "soft_labels": {"key": key, "from_cache": cached, "teacher_train_accuracy": agreement_with_gold},
        "teacher_tokenizer_check": fit,
    }
    if config.robust:
        facts["robust"] = config.robust_knobs() | {key: value() if callable(value) else value
                                                   for key, value in robust_facts.items()}
    return result, facts


def _robust_objective(objective, teacher, teacher_fingerprint: str, dataset, config: DistillConfig,
                      teacher_probs: torch.Tensor, codes: list, train_examples, adversarial: dict[str, list], progress):
    """The distillation objective plus renamed programs from epoch `robust_warmup + 1`, each learning a soft label
    (the teacher's on its original, or on itself) and the consistency term; returns (objective, facts)."""
    from dataclasses import replace

    from engine.augment.renamings import Renamings
    from engine.compress.robust import epoch_views, robust_distillation_loss
    from engine.datasets.registry import cache_root

    ids = [str(ex.id) for ex in train_examples] + [f"unlabelled:{i}" for i in range(len(codes) - len(train_examples))]
    renamings = Renamings.for_dataset(dataset, share=config.rename_share)
    base_views = epoch_views(renamings, codes, ids, seed=config.seed, per_example=config.renamings,
                             adversarial=adversarial, start_epoch=config.robust_warmup + 1)
    current: dict[str, torch.Tensor] = {}
    queried = {"renamed_programs_labelled_by_teacher": 0}

    def views(epoch: int):
        found = base_views(epoch)
        if found and config.robust_targets == "renamed":
            programs = [code for _, code in found]
            key = soft_label_key(teacher_fingerprint, teacher.max_length, teacher.normalize, programs)
            probs, _ = soft_labels(teacher, programs, key, cache_root() / "soft-labels", progress=progress)
            current["targets"] = torch.from_numpy(probs).float()
            queried["renamed_programs_labelled_by_teacher"] += len(programs)
        return found

    def view_targets(slots: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        if config.robust_targets == "renamed":
            return current["targets"][slots.cpu()]
        return teacher_probs[owners.cpu()]

    loss = robust_distillation_loss(teacher_probs, config.temperature, config.hard_weight, config.consistency,
                                    view_targets)
    facts = {"renaming_pool": renamings.describe(), "renaming_stats": lambda: renamings.stats.to_json(),
             "adversarial_examples": len(adversarial), "teacher_queries": lambda: dict(queried)}
    return replace(objective, loss=loss, views=views, first_eligible_epoch=config.robust_warmup + 1), facts


def _finished(out: Path, objective_key: dict[str, Any]) -> bool:
    """`out` holds a student trained with exactly this objective, its checkpoint gone (training ended)."""
    from engine.manifest import read_manifest
    from engine.train import CHECKPOINT_DIR

    manifest = read_manifest(out) if out.is_dir() else None
    recorded = ((manifest or {}).get("base_info") or {}).get("objective_key")
    return recorded == json.loads(json.dumps(objective_key)) and not (out / CHECKPOINT_DIR).exists()
