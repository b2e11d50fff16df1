"""`engine compress`: pruned, int8 and distilled variants of a model, measured against it.

    engine compress --method prune --ratio 0.4 --model runs/victim --out runs/victim-prune40
    engine compress --method prune --structured heads --ratio 0.25 --model runs/victim --out runs/victim-heads25
    engine compress --method quantize --dtype int8 --model runs/victim --out runs/victim-int8
    engine compress --method distill --target-mb 3 --model runs/victim --out runs/victim-student
    engine compress --all --model runs/victim --out runs/variants     # prune/ quantize/ distill/
    engine compress --method harden --model runs/victim-int8 --out runs/victim-int8-robust   # robust fine-tuning
    engine compress --method distill --robust --model runs/victim --out runs/victim-student-robust

Without dataset options the parent's own builtin dataset (name, size, data seed from its
manifest) is used. Contract and measurements: docs/compression.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli_base import add_device_options
from engine.compress.methods import METHODS, find
from engine.datasets.registry import BUILTINS, add_dataset_options, dataset_from_args
from engine.device import set_threads
from engine.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compress",
        help="prune, int8-quantize or distill a model; measure each variant against it (writes model directories)",
        description="Make a compressed variant of --model (a model directory) and measure it side by side with the "
        "parent in the same run: size on disk, parameters and non-zero parameters, latency at batch 1, throughput "
        "at the best batch size, test-split accuracy/precision/recall/F1 and agreement with the parent, all in "
        "OUT/manifest.json. --all writes the three standard variants into OUT/prune, OUT/quantize, OUT/distill.",
    )
    p.add_argument("--model", required=True, help="the parent: a model directory (ours, or a third-party checkpoint)")
    p.add_argument("--out", required=True, help="variant directory to write (with --all: a directory for the three)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--method", choices=tuple(METHODS), metavar="METHOD",
                       help="; ".join(f"{name}: {spec.description}" for name, spec in METHODS.items()))
    which.add_argument("--all", action="store_true",
                       help="the standard variants, measured together, in OUT/<method>: " + "; ".join(
                           f"{name} {_describe(spec.standard)}" for name, spec in METHODS.items() if spec.standard)
                       + " (methods that train take their training options)")
    g = p.add_argument_group("prune")
    g.add_argument("--ratio", type=float, default=None,
                   help="share of weights (or with --structured heads, of attention heads) to remove, 0 < R < 1")
    g.add_argument("--scope", choices=("linear", "qkv"), default="linear",
                   help="unstructured pruning over all encoder linear layers (default) or attention Q/K/V only")
    g.add_argument("--structured", choices=("heads",), default=None,
                   help="remove whole attention heads ranked by importance instead of single weights")
    g.add_argument("--importance-examples", type=int, default=256,
                   help="training examples used to rank heads (default 256)")
    g = p.add_argument_group("quantize")
    g.add_argument("--dtype", choices=("int8", "fp16", "bf16"), default="int8",
                   help="int8: dynamic quantization of linear layers for CPU inference (default); fp16/bf16: "
                   "weights cast for GPU inference")
    g = p.add_argument_group("distill")
    g.add_argument("--target-mb", type=float, default=3.0, help="student size on disk to aim for, float32 MB (default 3)")
    g.add_argument("--layers", type=int, default=None, help="fix the student's layers (default: searched)")
    g.add_argument("--hidden", type=int, default=None, help="fix the student's hidden size")
    g.add_argument("--heads", type=int, default=None, help="fix the student's attention heads")
    g.add_argument("--intermediate", type=int, default=None, help="fix the student's feed-forward size")
    g.add_argument("--vocab-size", type=int, default=None, help="fix the student's BPE vocabulary (1000-6000)")
    g.add_argument("--temperature", type=float, default=2.0, help="softmax temperature of the KL term (default 2)")
    g.add_argument("--hard-weight", type=float, default=0.0,
                   help="weight of the gold-label cross-entropy, 0-1 (default 0: soft labels only)")
    g.add_argument("--unlabelled", metavar="PATH",
                   help="more code to distill on: a directory of source files or a JSONL file with a \"code\" field")
    g = p.add_argument_group("training (distill, harden)")
    g.add_argument("--epochs", type=int, default=None, help="epochs (default: distill 10, harden 4)")
    g.add_argument("--batch-size", type=int, default=None, help="training batch size (default 16)")
    g.add_argument("--lr", type=float, default=None, help="peak learning rate (default: distill 5e-4, harden 3e-4)")
    g.add_argument("--patience", type=int, default=None,
                   help="early stopping patience in epochs, 0 never (default: distill 3, harden 0)")
    g.add_argument("--seed", type=int, default=None, help="training seed, also of the renamings (default 42)")
    g.add_argument("--stop-after-epoch", type=int, default=None, metavar="K",
                   help="stop the training after epoch K leaving its checkpoint (rerun to resume)")
    g = p.add_argument_group("robust (harden; distill with --robust): docs/robust-compression.md")
    g.add_argument("--robust", action="store_true",
                   help="distill: also train on renamed programs with a consistency term (after --robust-warmup epochs)")
    g.add_argument("--renamings", type=int, default=None,
                   help="fresh random alpha-equivalent renamings per training program and epoch (default 1); harden "
                   "--renamings 0 without --adversarial is the control: the same fine-tuning on the originals only")
    g.add_argument("--rename-share", type=float, default=None,
                   help="probability that each variable of a program is renamed, at least one is (default 1)")
    g.add_argument("--consistency", type=float, default=None,
                   help="weight of KL(p(original) || p(renamed)) in the loss (default 1)")
    g.add_argument("--adversarial", metavar="DIR",
                   help="also train on the programs of an engine augment directory (e.g. MHM on the train split)")
    g.add_argument("--robust-targets", choices=("original", "renamed"), default=None,
                   help="distill --robust: a renamed program's soft label is the teacher's on the original (default) or "
                   "on the renamed program")
    g.add_argument("--robust-warmup", type=int, default=None,
                   help="distill --robust: plain distillation epochs before renamed programs join (default: half the epochs)")
    g = p.add_argument_group("measurement")
    g.add_argument("--timing-examples", type=int, default=64, help="test programs timed (default 64)")
    g.add_argument("--batch-sizes", default="1,8,32", help="batch sizes tried for throughput (default 1,8,32)")
    g.add_argument("--repeats", type=int, default=3, help="timing rounds, best kept (default 3)")
    g.add_argument("--eval-batch-size", type=int, default=32, help="batch size for the test split (default 32)")
    p.add_argument("--allow-compressed", action="store_true",
                   help="compress a model that is already compressed, where that is meaningful")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    add_device_options(p, "int8 runs on the CPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_dataset_options(p)
    p.set_defaults(run=run_compress)


def run_compress(args: argparse.Namespace) -> int:
    from engine.compress.variants import (Options, VariantSpec, compress, load_parent, standard_specs, summary,
                                          write_index)

    set_threads(args.threads)
    parent = load_parent(args.model)
    out = Path(args.out).expanduser()
    if args.all:
        if args.ratio is not None or args.structured or args.dtype != "int8" or args.scope != "linear":
            raise UserError("--all makes the standard variants (prune: global L1 at 0.4; quantize: int8; distill); "
                            "--ratio, --scope, --structured and --dtype are for one --method")
        specs = standard_specs(out, {name: _method_params(args, name) for name, spec in METHODS.items() if spec.trains})
    else:
        specs = [VariantSpec(out.name, out, args.method, _method_params(args, args.method))]
    options = Options(device=args.device, backend=args.backend, overwrite=args.overwrite, allow_compressed=args.allow_compressed,
                      progress=False if args.no_progress else None, timing_examples=args.timing_examples,
                      batch_sizes=_batch_sizes(args.batch_sizes), repeats=args.repeats,
                      eval_batch_size=args.eval_batch_size, stop_after_epoch=args.stop_after_epoch)
    dataset = _dataset(args, parent.manifest)
    manifests = compress(parent.path, specs, dataset, options)
    if args.all and manifests:
        write_index(out, specs, manifests)
    variants = {spec.name: summary(manifests[spec.name]) | {"out": str(spec.out)}
                for spec in specs if spec.name in manifests}
    json.dump({"model": str(parent.path), "finished": bool(manifests), "variants": variants}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _method_params(args: argparse.Namespace, method: str) -> dict:
    """The method's parameters: the options its `Method.options` names, as parsed."""
    options = vars(args)
    return {key: options[key] for key in find(method).options}


def _describe(params: dict) -> str:
    return "(" + ", ".join(f"{key} {value}" for key, value in params.items() if value is not None) + ")"


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--batch-sizes {text!r}: give comma-separated integers, e.g. 1,8,32") from None
    if not sizes or min(sizes) < 1:
        raise UserError(f"--batch-sizes {text!r}: every batch size must be at least 1")
    return sizes


def _dataset(args: argparse.Namespace, manifest: dict | None):
    """The dataset the options name; without options, the parent's own builtin dataset."""
    if args.dataset or args.data_format or args.data:
        return dataset_from_args(args)
    trained = (manifest or {}).get("dataset") or {}
    details = trained.get("details") or {}
    if trained.get("name") not in BUILTINS:
        where = f"was trained on {trained['name']!r}, not a builtin" if trained.get("name") else "has no manifest naming its dataset"
        raise UserError(f"{args.model} {where}: give the dataset options (--dataset NAME, or --data-format FMT --data PATH)")
    args.dataset = trained["name"]
    args.data_seed = int(details.get("seed") or 0)
    args.dataset_size = (details.get("key") or {}).get("size")
    dataset = dataset_from_args(args)
    if trained.get("fingerprint") and dataset.fingerprint != trained["fingerprint"]:
        raise UserError(f"rebuilt {dataset.name} (size {args.dataset_size}, data seed {args.data_seed}) but got fingerprint "
                        f"{dataset.fingerprint}, not the model's {trained['fingerprint']} (another Python or stdlib?); "
                        "give the dataset options explicitly")
    return dataset
