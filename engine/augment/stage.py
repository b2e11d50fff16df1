"""`engine augment`: renamed training programs with their original labels, as attack records and a dataset.

For each of `per_example` seeds (seed, seed+1, …) the split is attacked by the attack runner
(`engine.attacks.runner`, the code path of `engine attack`) into `OUT/seed-S/`: the same
records, manifest and summary, resumable (`--resume`) and shardable (`--shard K/N`). `random`
is the cheap variant: one random alpha-equivalent renaming per example
(`engine.augment.renamings.RandomRenaming`), queried once so that the record says whether it
alone changes the prediction; any other renaming recipe (mhm, alert, …) is the attack itself.

Then every program the runs produced whose validity check found it alpha-equivalent to its
original (`valid_alpha_equivalent`, the language layer's `check_rename`) is written, with its
original's label, to `OUT/<split>.jsonl`, one object a line:

    {"id": "<example id>~<attack>-<seed>", "original_id": …, "code": …, ["code2": …,] "label": "<label name>",
     "attack": …, "seed": …, "status": "success"|"failed"}

which the `jsonl` loader reads (`OUT/dataset.json` gives the options), and which
`engine compress --method harden --adversarial OUT` reads by `original_id`. Examples the model
already misclassifies, or without renameable variables, yield no program, as in `engine attack`.
The file is rebuilt from all records present at the end of every run (under a lock), so shards
finishing in any order leave it complete.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UserError

RANDOM = "random"
RENAMING_ATTACK = "random-renaming"  # the records' `attack` for --attack random (not the `random` search recipe)
NOT_RENAMINGS = ("coda",)  # recipes that also rewrite structure: their programs are not pure renamings
MANIFEST = "augment.json"


def augment_attacks() -> tuple[str, ...]:
    from engine.attacks import registry

    return (RANDOM, *(name for name in registry.RECIPES if name not in (RANDOM, *NOT_RENAMINGS)))


@dataclass
class AugmentOptions:
    attack: str
    per_example: int = 1
    seed: int = 0
    split: str = "train"
    rename_share: float = 1.0
    run: dict[str, Any] = field(default_factory=dict)  # the RunOptions fields shared by every seed's run

    def check(self) -> None:
        if self.attack not in augment_attacks():
            raise UserError(f"--attack {self.attack!r}: use one of {', '.join(augment_attacks())} "
                            f"({', '.join(NOT_RENAMINGS)} rewrites more than names)")
        if self.per_example < 1:
            raise UserError(f"--per-example must be at least 1, got {self.per_example}")
        if not 0 < self.rename_share <= 1:
            raise UserError(f"--rename-share must be in (0, 1], got {self.rename_share}")


def augment(*, victim, dataset, model: dict[str, Any], out: str | os.PathLike, options: AugmentOptions,
            params: Any = None, environment=None) -> dict[str, Any]:
    """Run the `per_example` seeds' attacks into `out/seed-S` and write the dataset file; returns a summary.

    `environment(seed)` builds the attack environment for a recipe (`engine.attacks.environment`).
    """
    from engine.attacks import registry
    from engine.attacks.runner import AttackRunner, RunOptions
    from engine.augment.renamings import RandomRenaming, Renamings

    options.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_manifest(out, dataset, options)
    renamings = Renamings.for_dataset(dataset, share=options.rename_share) if options.attack == RANDOM else None
    runs = {}
    for k in range(options.per_example):
        seed = options.seed + k
        if renamings is not None:
            search, name, run_params = RandomRenaming(renamings), RENAMING_ATTACK, {"rename_share": options.rename_share}
        else:
            search, name, run_params = registry.build_search(options.attack, params, environment(seed)), options.attack, params
        run_options = RunOptions(attack=name, params=run_params, seed=seed, split=options.split, **options.run)
        runner = AttackRunner(victim=victim, dataset=dataset, options=run_options, out=out / f"seed-{seed}",
                              search=search, model=model)
        runs[f"seed-{seed}"] = runner.run()
    written = write_dataset(out, dataset, options.split)
    return {"runs": runs, "programs": written, "dataset_file": str(out / f"{options.split}.jsonl")}


def _check_manifest(out: Path, dataset, options: AugmentOptions) -> None:
    """OUT/augment.json: which dataset, split, attack, seeds and share; a rerun must match it."""
    mine = {"dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint, "language": dataset.language,
                        "task": dataset.task, "label_names": list(dataset.label_names)},
            "split": options.split, "attack": options.attack, "seed": options.seed, "per_example": options.per_example,
            "rename_share": options.rename_share if options.attack == RANDOM else None,
            "dataset_file": f"{options.split}.jsonl"}
    path = out / MANIFEST
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = [key for key in mine if key not in ("per_example",) and previous.get(key) != mine[key]]
        if changed and not options.run.get("overwrite"):
            raise UserError(f"{path}: written for {', '.join(f'{key} {previous.get(key)!r}' for key in changed)}; "
                            "this run differs; use another --out or pass --overwrite")
        mine["per_example"] = max(mine["per_example"], int(previous.get("per_example") or 0))
    path.write_text(json.dumps(mine, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- the dataset file


def _records(out: Path) -> Iterator[dict[str, Any]]:
    from engine.attacks.records import read_records

    for run in sorted(out.glob("seed-*")):
        for path in sorted(run.glob("records*.jsonl")):
            yield from read_records(path)


def write_dataset(out: Path, dataset, split: str) -> int:
    """Rebuild OUT/<split>.jsonl from every run's records (see the module docstring); returns the programs written."""
    examples = {str(ex.id): ex for ex in dataset.split(split)}
    rows = []
    for record in _records(out):
        code = record.get("adversarial_code")
        if code is None or record.get("valid_alpha_equivalent") is not True or record.get("valid_parses") is False:
            continue
        example = examples.get(str(record["example_id"]))
        if example is None:
            raise UserError(f"{out}: record for example {record['example_id']!r}, which is not in the {split} split of "
                            f"{dataset.name}; the directory was written for other data")
        label = dataset.label_names[example.label]
        row = {"id": f"{example.id}~{record['attack']}-{record['seed']}", "original_id": str(example.id), "code": code,
               "label": label, "attack": record["attack"], "seed": record["seed"], "status": record["status"]}
        if example.is_pair:
            row["code2"] = example.code[1]
        rows.append(row)
    rows.sort(key=lambda row: row["id"])
    with open(out / "dataset.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # shards finishing together: one rebuild at a time, the last one complete
        temporary = out / f"{split}.jsonl.tmp-{os.getpid()}"
        temporary.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        os.replace(temporary, out / f"{split}.jsonl")
        pair = bool(rows and "code2" in rows[0])
        description = {"data_format": "jsonl", "data": f"{split}.jsonl", "language": dataset.language,
                       "task": dataset.task, "columns": "code=code,label=label,id=id" + (",code2=code2" if pair else ""),
                       "programs": len(rows), "note": "renamed programs with their original's label; original_id "
                       "names the example of the augmented split"}
        (out / "dataset.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return len(rows)


def read_programs(directory: str | os.PathLike, dataset) -> dict[str, list]:
    """{original example id: [renamed inputs]} from an `engine augment` directory, checked against `dataset`."""
    directory = Path(directory).expanduser()
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{directory}: no {MANIFEST}; give a directory written by engine augment")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    fingerprint = (manifest.get("dataset") or {}).get("fingerprint")
    if fingerprint != dataset.fingerprint:
        raise UserError(f"{directory}: augmented {manifest['dataset'].get('name')} with fingerprint {fingerprint}, not "
                        f"this dataset ({dataset.name}, {dataset.fingerprint})")
    path = directory / manifest.get("dataset_file", "train.jsonl")
    if not path.is_file():
        raise UserError(f"{path}: missing; rerun engine augment with --resume to rebuild it")
    examples = {str(ex.id): ex for split in dataset.splits.values() for ex in split}
    programs: dict[str, list] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                original, code, label = str(row["original_id"]), row["code"], row["label"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise UserError(f"{path}:{number}: not an engine augment row ({err})") from None
            example = examples.get(original)
            if example is None or dataset.label_names[example.label] != label:
                raise UserError(f"{path}:{number}: example {original!r} with label {label!r} is not in {dataset.name}")
            programs.setdefault(original, []).append((code, row["code2"]) if "code2" in row else code)
    return programs
