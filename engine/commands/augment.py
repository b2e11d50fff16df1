"""`engine augment`: attack (or randomly rename) a training split; renamed programs with their labels.

    engine augment --model runs/victim --dataset stdlib-attribution --attack random --per-example 2 --out aug/random
    engine augment --model runs/victim --dataset stdlib-attribution --attack mhm --out aug/mhm --shard 1/4

Writes OUT/seed-S/ (records, manifest, summary: as `engine attack`) per seed and OUT/<split>.jsonl,
a dataset of the alpha-equivalent renamed programs. See docs/robust-compression.md.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.attacks import registry
from engine.attacks.runner import TOO_LONG
from engine.attacks.substitutes import add_substitute_options, on_demand_mlm
from engine.commands.attack import add_victim_options, load_victim
from engine.datasets.registry import add_dataset_options, dataset_from_args
from engine.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from engine.augment.stage import augment_attacks

    p = subparsers.add_parser(
        "augment",
        help="attack or randomly rename a training split: renamed programs with their original labels "
        "(attack records + a dataset file; resumable, shardable)",
        description="Attack (mhm, alert, ...) or randomly rename (random: no search, one alpha-equivalent renaming "
        "per example and seed) the programs of a split, --per-example K times with seeds SEED..SEED+K-1, through the "
        "attack runner: OUT/seed-S/ holds the records, manifest and summary of each run, as engine attack writes them. "
        "Every program whose validity check found it alpha-equivalent to its original is then written with the "
        "original's label to OUT/<split>.jsonl (read it with --data-format jsonl; OUT/dataset.json gives the options), "
        "which engine compress --method harden --adversarial OUT trains on.",
    )
    p.add_argument("--attack", required=True, choices=augment_attacks(),
                   help="random: one random renaming per example (cheap, no search); any other: that attack recipe")
    p.add_argument("--model", required=True, help="the model attacked (or, for random, queried once per program)")
    p.add_argument("--out", required=True, help="output directory (seed-S/ runs, <split>.jsonl, dataset.json)")
    p.add_argument("--split", choices=("train", "valid", "test"), default="train", help="split to augment (default train)")
    p.add_argument("--per-example", type=int, default=1, metavar="K",
                   help="renamed programs to try per example: K runs with seeds SEED..SEED+K-1 (default 1)")
    p.add_argument("--rename-share", type=float, default=1.0,
                   help="random: probability that each variable is renamed, at least one always is (default 1)")
    p.add_argument("--n", type=int, default=None, metavar="N", help="only the first N examples of the split")
    p.add_argument("--budget", type=int, default=None, help="maximum victim queries per example (attacks)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--substitutes", metavar="PATH|dataset", help="natural substitutes for alert/mhm-ns (see engine attack)")
    p.add_argument("--resume", action="store_true", help="continue OUT: skip examples already recorded in each run")
    p.add_argument("--overwrite", action="store_true", help="delete OUT's records first")
    p.add_argument("--shard", metavar="K/N", help="only shard K of N of the examples (by a hash of the example id)")
    p.add_argument("--too-long", choices=TOO_LONG, default="attack", help="as engine attack (default attack)")
    p.add_argument("--no-compile-check", action="store_true", help="skip compiling renamed programs")
    p.add_argument("--fail-fast", action="store_true", help="stop on an internal error instead of recording it")
    add_victim_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_dataset_options(p)
    registry.add_recipe_options(p)
    add_substitute_options(p)
    p.set_defaults(run=run_augment)


def run_augment(args: argparse.Namespace) -> int:
    from engine.attacks.environment import make_environment
    from engine.attacks.runner import model_info, parse_shard
    from engine.augment.stage import RANDOM, AugmentOptions, augment
    from engine.device import set_threads

    set_threads(args.threads)
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite contradict each other; choose one")
    options = AugmentOptions(attack=args.attack, per_example=args.per_example, seed=args.seed, split=args.split,
                             rename_share=args.rename_share,
                             run={"budget": args.budget, "n": args.n, "shard": parse_shard(args.shard),
                                  "resume": args.resume, "overwrite": args.overwrite, "too_long": args.too_long,
                                  "compile_check": not args.no_compile_check, "tests_check": True,
                                  "progress": False if args.no_progress else None, "fail_fast": args.fail_fast,
                                  "substitutes": args.substitutes})
    options.check()
    dataset = dataset_from_args(args)
    if args.split not in dataset.splits:
        raise UserError(f"dataset {dataset.name} has no {args.split} split; it has {', '.join(dataset.splits)}")
    victim = load_victim(args, dataset)
    params = None if args.attack == RANDOM else registry.params_from_args(args.attack, args)
    mlm = on_demand_mlm(args)

    def environment(seed: int):
        return make_environment(dataset, victim, seed=seed, split=args.split, substitutes=args.substitutes, mlm=mlm)

    summary = augment(victim=victim, dataset=dataset, model=model_info(args.model, victim), out=args.out,
                      options=options, params=params, environment=environment)
    json.dump({"programs": summary["programs"], "dataset_file": summary["dataset_file"],
               "runs": {name: {key: run.get(key) for key in ("n", "attacked", "success", "asr") if key in run}
                        for name, run in summary["runs"].items()}}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
