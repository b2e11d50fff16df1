"""`engine data list | show | build`: the datasets from the command line."""
from __future__ import annotations

import argparse
import json
import sys

from engine.datasets.base import SPLITS, Dataset, Example
from engine.datasets.registry import BUILTINS, FORMATS, add_dataset_options, build_builtin, cache_root, dataset_from_args

_SHOWN_LINES = 15


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser(
        "data",
        help="list, inspect and build datasets",
        description="List the builtin datasets and file formats, show a dataset's splits and "
        "examples, or build (and cache) a builtin dataset.",
    )
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    p = commands.add_parser("list", help="builtin datasets and file formats, one line each")
    p.set_defaults(run=run_list)

    p = commands.add_parser(
        "show",
        help="counts per split and label, the fingerprint and a few examples",
        description="Load a dataset with the same options as every other command and print its "
        "splits, label counts, fingerprint, how missing splits were made, skipped lines, and examples.",
    )
    add_dataset_options(p)
    p.add_argument("--split", choices=SPLITS, default="train", help="split to show examples from (default train)")
    p.add_argument("--n", type=int, default=3, metavar="N", help="examples to show (default 3)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON instead")
    p.set_defaults(run=run_show)

    p = commands.add_parser(
        "build",
        help="build and cache a builtin dataset; prints where and how long",
        description=f"Build a builtin dataset into the cache ({cache_root()}; set CRT_CACHE_DIR "
        "to move it). A cached build is reused unless --rebuild.",
    )
    p.add_argument("--dataset", required=True, choices=list(BUILTINS), metavar="NAME",
                   help=f"{' | '.join(BUILTINS)}")
    p.add_argument("--dataset-size", type=int, metavar="N",
                   help="; ".join(f"{spec.size_help} ({name})" for name, spec in BUILTINS.items()))
    p.add_argument("--rebuild", action="store_true", help="ignore a cached build and build again")
    p.set_defaults(run=run_build)


def run_list(args: argparse.Namespace) -> int:
    print("builtin datasets (--dataset NAME):")
    width = max(map(len, [*BUILTINS, *FORMATS]))
    for name, builtin in BUILTINS.items():
        print(f"  {name:<{width}}  {builtin.description} [--dataset-size: {builtin.size_help}, default {builtin.default_size}]")
    print("file formats (--data-format FORMAT --data PATH):")
    for name, spec in FORMATS.items():
        print(f"  {name:<{width}}  {spec.description}")
    print(f"cache: {cache_root()} (set CRT_CACHE_DIR to move it)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    dataset = dataset_from_args(args)
    if args.json:
        json.dump({**dataset.manifest, "fingerprint": dataset.fingerprint}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    print(f"dataset {dataset.name}: task {dataset.task}, language {dataset.language}, "
          f"{dataset.num_labels} labels, fingerprint {dataset.fingerprint}")
    print(_label_table(dataset))
    for split, how in dataset.manifest.get("splits_made", {}).items():
        print(f"{split} made: {how}")
    if "resplit" in dataset.manifest:
        print(f"re-split: {dataset.manifest['resplit']}")
    skipped = dataset.manifest.get("skipped", {})
    if skipped.get("count"):
        print(f"skipped {skipped['count']} bad line(s):")
        for line in skipped["first"]:
            print(f"  {line}")
    examples = dataset.split(args.split)[: max(0, args.n)]
    for example in examples:
        print()
        print(_show_example(example, dataset))
    return 0


def _label_table(dataset: Dataset) -> str:
    names = dataset.label_names
    shown = names if len(names) <= 12 else names[:10]
    width = max(8, *(len(name) for name in shown))
    header = f"{'split':<6} {'total':>6}  " + " ".join(f"{name[:width]:>{width}}" for name in shown)
    if len(names) > len(shown):
        header += f"  (+{len(names) - len(shown)} more labels)"
    rows = [header]
    for split in SPLITS:
        examples = dataset.splits.get(split, [])
        counts = [0] * len(names)
        for example in examples:
            counts[example.label] += 1
        row = f"{split:<6} {len(examples):>6}  " + " ".join(f"{counts[i]:>{width}}" for i in range(len(shown)))
        if len(names) > len(shown):
            row += f"  min {min(counts)} max {max(counts)} per label"
        rows.append(row)
    return "\n".join(rows)


def _show_example(example: Example, dataset: Dataset) -> str:
    meta = {k: v for k, v in example.meta.items() if k not in ("test", "substitutes")}
    if "substitutes" in example.meta:
        meta["substitutes"] = f"{len(example.meta['substitutes'])} identifiers"
    head = f"--- {example.id}  label {example.label} ({dataset.label_names[example.label]})"
    if meta:
        head += f"  {json.dumps(meta, default=str)[:300]}"
    codes = example.code if isinstance(example.code, tuple) else (example.code,)
    parts = [head]
    for index, code in enumerate(codes):
        if len(codes) > 1:
            parts.append(f"[code {index + 1}]")
        lines = code.splitlines()
        parts.extend(lines[:_SHOWN_LINES])
        if len(lines) > _SHOWN_LINES:
            parts.append(f"... ({len(lines) - _SHOWN_LINES} more lines)")
    return "\n".join(parts)


def run_build(args: argparse.Namespace) -> int:
    pool = build_builtin(args.dataset, size=args.dataset_size, rebuild=args.rebuild)
    manifest = pool.manifest
    labels = {}
    for record in pool.records:
        labels[record.label] = labels.get(record.label, 0) + 1
    verb = "cached (reused)" if pool.from_cache else f"built in {pool.seconds:.1f} s"
    print(f"{args.dataset}: {len(pool.records)} examples, {verb}")
    if pool.from_cache:
        print(f"originally built in {manifest.get('build_seconds')} s at {manifest.get('built_at')}")
    print("labels: " + ", ".join(f"{name} {labels.get(name, 0)}" for name in pool.label_names))
    for key in ("equivalent_mutants", "timeouts", "problems_dropped", "functions_per_class", "python"):
        if key in manifest:
            print(f"{key.replace('_', ' ')}: {manifest[key]}")
    print(f"cache: {pool.path}")
    return 0
