"""`engine attack`: run an identifier-renaming attack on a victim over a dataset split.

    engine attack --attack mhm --model runs/victim --dataset stdlib-attribution --n 50 --out logs/mhm
    engine attack --attack alert --model runs/victim --dataset stdlib-attribution --out logs/alert --resume
    engine attack --attack wir-random --model runs/victim --dataset stdlib-attribution --out logs/w --shard 2/4
    engine attack --attack mhm --model runs/victim-int8 --dataset stdlib-attribution --out logs/t --transfer-from logs/mhm

Writes OUT/records.jsonl (one record per example, `docs/log-schema.md`), OUT/manifest.json and
OUT/summary.json, and prints a summary table. See `docs/attacks.md`.
"""
from __future__ import annotations

import argparse
import re
import sys

from engine.attacks import registry
from engine.attacks.runner import SIDES, TOO_LONG
from engine.attacks.substitutes import add_substitute_options, on_demand_mlm
from engine.cli_base import add_device_options
from engine.datasets.registry import add_dataset_options, dataset_from_args
from engine.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attack",
        help="attack a victim over a dataset split; one JSONL record per example (resumable, shardable)",
        description="Run an identifier-renaming attack (" + ", ".join(registry.RECIPES) + ") on a classifier over a "
        "dataset split. Every rename goes through the language layer (no collisions, no fields or calls renamed); "
        "every query goes through the victim (batched, cached, counted). Records are appended and flushed one per "
        "example, so --resume continues a killed run without losing or repeating an example.",
    )
    p.add_argument("--attack", required=True, choices=tuple(registry.RECIPES), help="attack recipe")
    p.add_argument("--attack-name", metavar="NAME", default=None,
                   help="name this attack configuration in the records (their attack_name) and the report, when one "
                   "recipe runs in several, e.g. alert-4x for a larger budget or alert-transfer for a replay (default: "
                   "the recipe's name)")
    p.add_argument("--model", required=True, help="victim model directory (or hub id)")
    p.add_argument("--out", required=True, help="output directory for records.jsonl, manifest.json, summary.json")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test", help="split to attack (default test)")
    p.add_argument("--n", type=int, default=None, metavar="N", help="attack the first N examples of the split (default all)")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="attack a label-stratified sample of N of those examples (the same N in every run, "
                   "chosen by a hash of the example id; see engine/datasets/sampling.py)")
    p.add_argument("--budget", type=int, default=None,
                   help="maximum victim queries per example, the original program's included (default: the "
                   "recipe's own iteration limits)")
    p.add_argument("--seed", type=int, default=0, help="attack seed; each example's RNG is seeded from it and the "
                   "example id (default 0)")
    p.add_argument("--attack-side", choices=SIDES, default="first",
                   help="for code pairs: which program to rename; both = the first, then the second with the budget "
                   "left (default first)")
    p.add_argument("--substitutes", metavar="PATH|dataset",
                   help="natural substitutes for alert/mhm-ns: 'dataset' uses the examples' own `substitutes` field "
                   "(e.g. the Devign files), PATH a cache written by `engine substitutes` (default: computed by the "
                   "masked LM)")
    p.add_argument("--resume", action="store_true", help="continue OUT: skip example ids already recorded")
    p.add_argument("--overwrite", action="store_true", help="delete OUT's records first")
    p.add_argument("--shard", metavar="K/N", help="attack only shard K of N (by a hash of the example id); "
                   "writes records-K-of-N.jsonl")
    p.add_argument("--transfer-from", metavar="LOGS",
                   help="replay the successful adversarial programs of another run (its OUT directory) on this "
                   "victim instead of attacking")
    p.add_argument("--max-parse-errors", type=int, default=None,
                   help="record programs with more parse errors than this as errors (default: attack them; "
                   "validity is judged relative to the original)")
    p.add_argument("--too-long", choices=TOO_LONG, default="attack",
                   help="programs longer than the model's maximum length: attack what the model reads, the truncated "
                   "input (default; records say truncated: true), or record an error (strict runs)")
    p.add_argument("--no-compile-check", action="store_true", help="skip compiling adversarial programs")
    p.add_argument("--no-tests", action="store_true", help="skip running the example's tests on adversarial programs")
    p.add_argument("--fail-fast", action="store_true", help="stop on an internal error instead of recording it")
    victim = add_victim_options(p)
    victim.add_argument("--interleave", type=int, default=1, metavar="K",
                        help="attack K examples at a time, their searches taking turns and their victim calls merged "
                        "into one (cross-example batching: pays on a GPU; default 1, one after the other)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_dataset_options(p)
    registry.add_recipe_options(p)
    add_substitute_options(p)
    p.set_defaults(run=run_attack)


def add_victim_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """How the attacked model is loaded and fed: shared by every command that queries a victim
    (`engine attack`, `engine augment`), read back by `load_victim`."""
    victim = p.add_argument_group("victim")
    victim.add_argument("--batch-size", type=int, default=64, help="programs per model call (default 64)")
    victim.add_argument("--cache-size", type=int, default=100_000, help="exact-input cache entries (default 100000; 0 off)")
    victim.add_argument("--max-length", type=int, default=None,
                        help="tokens per input (default: the model's training length)")
    victim.add_argument("--normalize", choices=("none", "strip", "whitespace"), default="none",
                        help="input normalisation before tokenizing (default none)")
    victim.add_argument("--label-map", metavar="I,J,...", help="model output for each dataset label, e.g. 1,0")
    add_device_options(victim)
    victim.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="inference dtype (default fp32)")
    return victim


def load_victim(args: argparse.Namespace, dataset):
    """The victim `add_victim_options` describes, refused when its outputs do not match the dataset's labels."""
    from engine.victim import Victim, parse_label_map

    victim = Victim.load(args.model, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
                         backend=args.backend, normalize=args.normalize, label_map=parse_label_map(args.label_map),
                         cache_size=args.cache_size, max_length=args.max_length)
    if victim.num_labels != dataset.num_labels:
        raise UserError(f"{args.model} has {victim.num_labels} outputs but {dataset.name} has {dataset.num_labels} "
                        "labels; attack a model trained on this dataset")
    return victim


def run_attack(args: argparse.Namespace) -> int:
    from engine.attacks.environment import make_environment
    from engine.attacks.runner import AttackRunner, RunOptions, model_info, parse_shard
    from engine.device import set_threads

    set_threads(args.threads)
    params = registry.params_from_args(args.attack, args)
    options = RunOptions(
        attack=args.attack, attack_name=args.attack_name, params=params, seed=args.seed, budget=args.budget,
        split=args.split, n=args.n,
        sample=args.sample,
        shard=parse_shard(args.shard), attack_side=args.attack_side, resume=args.resume, overwrite=args.overwrite,
        max_parse_errors=args.max_parse_errors, too_long=args.too_long, compile_check=not args.no_compile_check,
        tests_check=not args.no_tests, progress=False if args.no_progress else None, fail_fast=args.fail_fast,
        substitutes=args.substitutes, interleave=args.interleave,
    )
    options.check()
    if args.attack_name is not None and not re.fullmatch(r"[^/\x00]+", args.attack_name):
        raise UserError(f"--attack-name {args.attack_name!r}: give a non-empty name without '/' (reports name files after it)")
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite contradict each other; choose one")
    dataset = dataset_from_args(args)
    if args.split not in dataset.splits:
        raise UserError(f"dataset {dataset.name} has no {args.split} split; it has {', '.join(dataset.splits)}")
    victim = load_victim(args, dataset)
    search = None
    if args.transfer_from is None:
        env = make_environment(dataset, victim, seed=args.seed, split=args.split, substitutes=args.substitutes,
                               mlm=on_demand_mlm(args))
        search = registry.build_search(args.attack, params, env)
    runner = AttackRunner(victim=victim, dataset=dataset, options=options, out=args.out, search=search,
                          model=model_info(args.model, victim), transfer_from=args.transfer_from)
    summary = runner.run()
    runner.print_summary(summary)
    print(f"records: {runner.records_path}", file=sys.stderr)
    return 0
