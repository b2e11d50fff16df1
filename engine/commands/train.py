"""`engine train | pretrain-mlm | eval`: models from the command line.

    engine train --dataset stdlib-attribution --base scratch:tiny --out runs/victim
    engine train --data-format gcj --data ../shared/data/gcjpy --base minilm --out runs/gcj
    engine pretrain-mlm --dataset stdlib-attribution --base scratch:small --out runs/mlm
    engine eval --model runs/victim --dataset stdlib-attribution --split test --out runs/victim-eval.json

Heavy imports (torch, transformers) happen inside the handlers, so `engine --help` stays fast.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.cli_base import add_device_options
from engine.datasets.registry import add_dataset_options, dataset_from_args
from engine.device import DTYPES, set_threads
from engine.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="fine-tune a classifier on a dataset (writes a model directory with manifest.json)",
        description="Fine-tune --base on the dataset's train split with AdamW and a linear warm-up schedule, "
        "validate every epoch, stop early after --patience epochs without improvement, keep the best "
        "epoch, and report test-split metrics in OUT/manifest.json. A checkpoint is written every epoch; "
        "running the same command again resumes an interrupted run.",
    )
    p.add_argument("--base", default="scratch:small",
                   help="scratch:tiny|small|base (RoBERTa + BPE tokenizer trained on the code), minilm "
                   "(the bundled pre-trained MiniLM), or a Hugging Face directory / hub id (default scratch:small)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default 10 scratch, 3 pre-trained)")
    p.add_argument("--batch-size", type=int, default=16, help="training batch size (default 16)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default scratch tiny 1e-3, small 3e-4, base 1e-4; pre-trained 5e-5)")
    p.add_argument("--warmup", type=float, default=0.1, help="share of steps for linear warm-up (default 0.1)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per input, pairs share it (default 256)")
    p.add_argument("--patience", type=int, default=3,
                   help="stop after this many epochs without validation improvement; 0 never stops (default 3)")
    p.add_argument("--select-metric", choices=("accuracy", "f1"), default="accuracy",
                   help="validation metric that picks the best epoch (default accuracy)")
    p.add_argument("--head", choices=("softmax", "sigmoid"), default="softmax",
                   help="one logit per label (softmax) or, for 2 labels, one logit through a sigmoid")
    p.add_argument("--vocab-size", type=int, default=None,
                   help="BPE vocabulary for scratch bases (default 3000 tiny, 8000 small/base)")
    p.add_argument("--seed", type=int, default=42, help="training seed: init, shuffling, dropout (default 42)")
    _add_runtime_options(p, batch_default=None)
    p.add_argument("--resume", action="store_true",
                   help="require a checkpoint in --out and resume it (resuming is automatic when one exists)")
    p.add_argument("--overwrite", action="store_true", help="delete a checkpoint or model already in --out first")
    p.add_argument("--stop-after-epoch", type=int, default=None, metavar="K",
                   help="stop after epoch K leaving the checkpoint, e.g. to split training into time slices")
    g = p.add_argument_group("robust training (docs/robust-compression.md)")
    g.add_argument("--renamings", type=int, default=0,
                   help="also train on K fresh random alpha-equivalent renamings of each program per epoch, with a "
                   "consistency term (default 0: off)")
    g.add_argument("--rename-share", type=float, default=1.0,
                   help="probability that each variable is renamed, at least one is (default 1)")
    g.add_argument("--consistency", type=float, default=1.0,
                   help="weight of KL(p(original) || p(renamed)) with --renamings (default 1)")
    add_dataset_options(p)
    p.set_defaults(run=run_train)

    p = subparsers.add_parser(
        "pretrain-mlm",
        help="pre-train a small masked language model on a dataset's code",
        description="Train a from-scratch RoBERTa masked LM (and its BPE tokenizer) on the train split's code; "
        "the directory loads with AutoModelForMaskedLM and serves attacks that need substitute names.",
    )
    p.add_argument("--base", default="scratch:small", help="scratch:tiny|small|base (default scratch:small)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--epochs", type=int, default=3, help="epochs (default 3)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per batch (default 32)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per window (default 256)")
    p.add_argument("--mask-prob", type=float, default=0.15, help="share of tokens to predict (default 0.15)")
    p.add_argument("--vocab-size", type=int, default=None, help="BPE vocabulary (default 3000 tiny, 8000 small/base)")
    p.add_argument("--seed", type=int, default=42, help="training seed (default 42)")
    add_device_options(p, backend=False)
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_dataset_options(p)
    p.set_defaults(run=run_pretrain_mlm)

    p = subparsers.add_parser(
        "eval",
        help="measure a model on a dataset split: per-example predictions and metrics (JSON)",
        description="Run any sequence classifier (ours, a Hugging Face directory or hub id) on a dataset split "
        "and write accuracy, precision, recall, F1 (binary for 2 labels, macro otherwise) and, per example, "
        "id, label, prediction and the probability of each class.",
    )
    p.add_argument("--model", required=True, help="model directory or hub id")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test", help="split to measure (default test)")
    p.add_argument("--out", help="JSON file to write (default: print the metrics only)")
    p.add_argument("--max-length", type=int, default=None,
                   help="tokens per input (default: the model's training length, else its limit up to 512)")
    p.add_argument("--normalize", choices=("none", "strip", "whitespace"), default="none",
                   help="input normalisation before tokenizing (default none; recorded in the output)")
    p.add_argument("--label-map", metavar="I,J,...",
                   help="model output (index or label name) for each dataset label, when the checkpoint's class "
                   "order differs from the dataset's, e.g. 1,0")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N examples of the split")
    _add_runtime_options(p, batch_default=32)
    add_dataset_options(p)
    p.set_defaults(run=run_eval)


def _add_runtime_options(p: argparse.ArgumentParser, batch_default: int | None) -> None:
    add_device_options(p)
    p.add_argument("--dtype", choices=DTYPES, default="fp32",
                   help="fp32 (default); bf16 (CPU or GPU) or fp16 (GPU only)")
    if batch_default is None:
        p.add_argument("--eval-batch-size", type=int, default=64, help="batch size for validation/test (default 64)")
    else:
        p.add_argument("--batch-size", type=int, default=batch_default, help=f"inference batch size (default {batch_default})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def run_train(args: argparse.Namespace) -> int:
    from engine.train import TrainConfig, train

    set_threads(args.threads)
    dataset = dataset_from_args(args)
    config = TrainConfig(
        base=args.base, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, warmup_ratio=args.warmup,
        weight_decay=args.weight_decay, max_length=args.max_length, patience=args.patience, seed=args.seed,
        head=args.head, vocab_size=args.vocab_size, select_metric=args.select_metric,
        eval_batch_size=args.eval_batch_size, dtype=args.dtype, device=args.device, backend=args.backend,
    )
    objective = None
    if args.renamings:
        from engine.compress.robust import renamed_training

        objective = renamed_training(dataset, config, renamings=args.renamings, rename_share=args.rename_share,
                                     consistency=args.consistency)
    result = train(dataset, config, args.out, resume=True if args.resume else None, overwrite=args.overwrite,
                   progress=_progress(args), stop_after_epoch=args.stop_after_epoch, objective=objective)
    summary = {"out": str(result.out_dir), "finished": result.finished,
               "epochs_run": len(result.history)}
    if result.manifest:
        summary |= {"best_epoch": result.manifest["training"]["best_epoch"],
                    "metrics": result.manifest["metrics"], "parameters": result.manifest["parameters"],
                    "size_mb": result.manifest["size_mb"], "seconds": result.manifest["training"]["seconds"]}
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def run_pretrain_mlm(args: argparse.Namespace) -> int:
    from engine.mlm import MlmConfig, pretrain_mlm

    set_threads(args.threads)
    kind, _, size = args.base.partition(":")
    if kind != "scratch":
        raise UserError(f"--base {args.base}: pretrain-mlm trains from scratch; use scratch:tiny|small|base "
                        "(an existing masked-LM directory can be used by attacks directly)")
    dataset = dataset_from_args(args)
    config = MlmConfig(size=size or "small", epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       max_length=args.max_length, mask_prob=args.mask_prob, vocab_size=args.vocab_size,
                       seed=args.seed, device=args.device)
    manifest = pretrain_mlm(dataset, config, args.out, overwrite=args.overwrite, progress=_progress(args))
    json.dump({"out": args.out, "metrics": manifest["metrics"], "parameters": manifest["parameters"],
               "size_mb": manifest["size_mb"], "seconds": manifest["training"]["seconds"]}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from engine.evaluate import evaluate, write_json
    from engine.victim import Victim, parse_label_map

    set_threads(args.threads)
    dataset = dataset_from_args(args)
    if args.split not in dataset.splits:
        raise UserError(f"dataset {dataset.name!r} has no {args.split} split (it has {', '.join(dataset.splits)})")
    examples = dataset.split(args.split)
    if args.limit is not None:
        if args.limit < 1:
            raise UserError("--limit must be at least 1")
        examples = examples[:args.limit]
    victim = Victim.load(args.model, max_length=args.max_length, batch_size=args.batch_size, device=args.device,
                         dtype=args.dtype, backend=args.backend, normalize=args.normalize, label_map=parse_label_map(args.label_map),
                         cache_size=0)
    _warn_mismatch(victim, dataset, args)
    result = evaluate(victim, examples, num_labels=dataset.num_labels, split=args.split, progress=_progress(args))
    counters = victim.counters()
    payload = {
        "model": args.model,
        "model_manifest": _model_summary(victim.manifest),
        "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint, "task": dataset.task,
                    "language": dataset.language, "label_names": dataset.label_names, "split": args.split,
                    "examples": len(examples), "limit": args.limit},
        "victim": victim.describe(),
        "metrics": result.metrics,
        "counters": counters.to_json(),
        "sequences_per_second": round(counters.forward_passes / counters.model_seconds, 2) if counters.model_seconds else None,
        "predictions": result.predictions,
    }
    if args.out:
        write_json(args.out, payload)
    metrics = result.metrics
    summary = {key: metrics[key] for key in ("n", "accuracy", "precision", "recall", "f1", "average")}
    json.dump({"model": args.model, "split": args.split, "metrics": summary, "out": args.out}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _model_summary(manifest: dict | None) -> dict | None:
    if not manifest:
        return None
    return {key: manifest.get(key) for key in ("kind", "base", "created", "dataset", "label_names", "metrics", "parameters")}


def _warn_mismatch(victim, dataset, args: argparse.Namespace) -> None:
    manifest = victim.manifest or {}
    trained = manifest.get("dataset") or {}
    if trained.get("name") == dataset.name and trained.get("fingerprint") not in (None, dataset.fingerprint):
        print(f"warning: {args.model} was trained on {dataset.name} with fingerprint {trained['fingerprint']}, "
              f"this is {dataset.fingerprint} (another data seed or size?): the {args.split} split may overlap "
              "its training data", file=sys.stderr)
    names = manifest.get("label_names")
    if names and args.label_map is None and list(names) != list(dataset.label_names):
        if sorted(names) == sorted(dataset.label_names):
            order = ",".join(str(names.index(name)) for name in dataset.label_names)
            raise UserError(f"{args.model} orders its labels {names}, the dataset {dataset.label_names}; "
                            f"pass --label-map {order}")
        print(f"warning: the model's labels {names} differ from the dataset's {dataset.label_names}", file=sys.stderr)
