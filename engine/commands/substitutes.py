"""`engine substitutes`: natural substitute names for every variable of a dataset split, cached.

    engine substitutes --mlm runs/mlm --dataset stdlib-attribution --split test
    engine substitutes --mlm microsoft/codebert-base-mlm --data-format devign --data ../shared/data/devign
    engine substitutes --mlm dataset --data-format devign --data ../shared/data/devign --out subs/devign

The output directory (default: the cache, keyed by dataset fingerprint, MLM fingerprint and
parameters) holds `manifest.json` and one `<split>.jsonl`; attacks read it with
`--substitutes DIR` (see docs/attacks.md). Heavy imports happen inside the handler.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli_base import add_device_options
from engine.datasets.base import SPLITS
from engine.datasets.registry import add_dataset_options, dataset_from_args
from engine.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "substitutes",
        help="propose natural substitute names with a masked LM (ALERT's stage), cached per dataset and model",
        description="For every renameable variable of every program of the chosen splits, propose names with a "
        "masked language model (all occurrences masked, top-k by a beam over the name's subwords), keep valid "
        "identifiers, and store the ones whose contextual embedding is most similar to the original's. "
        "Resumable: a rerun skips programs already written. `--mlm dataset` converts a dataset's own "
        "`substitutes` field (Devign) into the same format, filtered by the language layer's rules.",
    )
    p.add_argument("--mlm", required=True, metavar="DIR|HUB-ID|dataset",
                   help="a masked-LM directory (engine pretrain-mlm, or e.g. microsoft/codebert-base-mlm where it is "
                   "available offline), or `dataset` for the dataset's precomputed substitutes")
    p.add_argument("--split", default="test", metavar="SPLIT[,SPLIT]",
                   help="splits to process, comma-separated, or `all` (default test)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: the cache, keyed by dataset, MLM and parameters)")
    p.add_argument("--n", type=int, default=None, metavar="N",
                   help="only the first N programs of each split (default all), as `engine attack --n`")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="only a label-stratified sample of N of those, the same one `engine attack --sample N` attacks")
    p.add_argument("--top-k", type=int, default=60, help="proposals per variable from the masked LM (default 60)")
    p.add_argument("--keep", type=int, default=30, help="proposals kept by contextual cosine (default 30)")
    p.add_argument("--max-subwords", type=int, default=4, help="mask slots for one name at most (default 4)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per MLM forward pass (default 32)")
    p.add_argument("--max-length", type=int, default=None, help="MLM window in tokens (default: the MLM's limit, ≤ 512)")
    add_device_options(p, backend=False)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_dataset_options(p)
    p.set_defaults(run=run_substitutes)


def _splits(text: str, dataset) -> list[str]:
    names = list(dataset.splits) if text.strip() == "all" else [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        if name not in SPLITS or name not in dataset.splits:
            raise UserError(f"--split {name!r}: dataset {dataset.name!r} has {', '.join(dataset.splits)}")
    if not names:
        raise UserError("--split is empty")
    return names


def _selected(dataset, split: str, args: argparse.Namespace):
    """The programs of `split` an attack with the same --n and --sample would attack."""
    from engine.attacks.runner import select_examples

    for option in ("n", "sample"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise UserError(f"--{option} must be at least 1, got {getattr(args, option)}")
    if args.n is None and args.sample is None:
        return dataset.split(split)
    return select_examples(dataset.split(split), args.n, None, args.sample)


def run_substitutes(args: argparse.Namespace) -> int:
    from engine.attacks import substitutes as subs

    config = subs.SubstituteConfig(top_k=args.top_k, keep=args.keep, max_subwords=args.max_subwords,
                                   batch_size=args.batch_size, max_length=args.max_length, device=args.device)
    config.check()
    dataset = dataset_from_args(args)
    splits = _splits(args.split, dataset)
    progress = False if args.no_progress else None
    summary: dict = {"dataset": dataset.name, "dataset_fingerprint": dataset.fingerprint, "splits": {}}
    if args.mlm == "dataset":
        key = subs.cache_key(dataset.fingerprint, "dataset-field", None, "dataset")
        out = Path(args.out).expanduser() if args.out else subs.default_cache_dir(key)
        subs.open_cache(out, key, {"dataset": dataset.name, "language": dataset.language, "mlm": "dataset"})
        for split in splits:
            summary["splits"][split] = subs.from_dataset_field(_selected(dataset, split, args), dataset.language,
                                                               out / f"{split}.jsonl")
    else:
        from engine.device import set_threads

        set_threads(args.threads)
        mlm = subs.MaskedLM(args.mlm, device=args.device, max_length=args.max_length)
        key = subs.cache_key(dataset.fingerprint, mlm.fingerprint, config, args.mlm, mlm.max_length)
        out = Path(args.out).expanduser() if args.out else subs.default_cache_dir(key)
        subs.open_cache(out, key, {"dataset": dataset.name, "language": dataset.language, "mlm": args.mlm,
                                   "max_length": mlm.max_length, "batch_size": config.batch_size})
        for split in splits:
            summary["splits"][split] = subs.build_split(mlm, _selected(dataset, split, args), dataset.language,
                                                        out / f"{split}.jsonl", config, progress=progress)
    summary["out"] = str(out)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
