"""Study configs: TOML in, a validated `StudyConfig` out.

A config has fixed sections (see `SECTIONS`; every key is documented in docs/study.md). Besides
its own keys, a section that feeds a stage accepts any option of that stage's command: in
`[[attacks]]`, `iterations = 20` becomes `engine attack … --iterations 20`. Such keys are
checked against the real command's argparse options (name, type, choices), so a typo or a
value the stage would refuse is an error naming the key and the file before anything runs,
and the config format never lags behind the commands it drives.

Errors are `StudyConfigError` (a `UserError`): one line, naming the file, the section (with
the entry's number and name for arrays) and the key, listing the allowed keys or values.
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.attacks import registry
from engine.common.reports import REPORT_FORMATS
from engine.compress.methods import METHODS
from engine.errors import UserError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

LABELS = "labels"  # the free-form [labels] section: variant name -> how the report names it
MLM_PRETRAIN = "pretrain"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_REQUIRED = object()

# Options the study sets itself on every stage; a config may not pass them through.
DATASET_OPTIONS = frozenset({"dataset", "data_format", "data", "columns", "language", "task", "skip_bad",
                             "data_seed", "dataset_size", "seed_data", "rebuild"})
RUNTIME_OPTIONS = frozenset({"device", "threads", "no_progress", "out", "resume", "overwrite", "help"})
STAGE_OWNED = {
    "train": {"base", "stop_after_epoch"},
    "pretrain-mlm": set(),
    "compress": {"method", "model", "all", "stop_after_epoch", "adversarial"},
    "augment": {"attack", "model", "split", "n", "substitutes", "shard", "mlm"},
    "substitutes": {"mlm", "split", "n", "sample"},
    "attack": {"attack", "attack_name", "model", "n", "seed", "budget", "batch_size", "shard", "substitutes",
               "transfer_from", "sample"},
}

# kind -> {option key: argparse.Action}, or None when the command is not installed.
OptionSource = Callable[[str], "dict[str, argparse.Action] | None"]


class StudyConfigError(UserError):
    """A study config that cannot be run; the message names the file, section and key."""


@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # str, int, float, bool, list[int], list[str], str|null
    default: Any = _REQUIRED
    help: str = ""
    choices: tuple[str, ...] | None = None
    minimum: float | None = None


@dataclass(frozen=True)
class Section:
    name: str
    array: bool
    keys: tuple[Key, ...]
    command: str | None  # stage command whose options are also accepted
    help: str


SECTIONS: dict[str, Section] = {s.name: s for s in (
    Section("study", False, (
        Key("name", "str", help="the study's name (shown in the report)"),
        Key("description", "str", "", help="free text"),
        Key("seeds", "list[int]", [0], help="attack seeds; every attack cell runs once per seed"),
        Key("device", "str", "auto", help="device of every stage: auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N, mps"),
        Key("threads", "int|null", None, minimum=1,
            help="torch CPU threads per stage (default: torch's own, one per core); with --jobs N use cores / N"),
        Key("gpus", "float", 0.0, minimum=0,
            help="GPUs each model-running cell requests from Ray (e.g. 1, or 0.5 to pack two per GPU)"),
        Key("executor", "str", "local", choices=("local", "process", "ray"),
            help="default executor (--executor overrides): local, process or ray"),
        Key("jobs", "int|null", None, minimum=1, help="default --jobs: cells at once for the process and ray executors"),
        Key("include_original", "bool", True, help="also attack the uncompressed victim (the baseline of every comparison)"),
        Key("report", "list[str]", ["latex", "html"], choices=tuple(REPORT_FORMATS),
            help="formats of the final `analysis report`; [] for none"),
        Key("examples_per_cell", "int|null", None, minimum=1,
            help="attack a label-stratified sample of N of each attack cell's examples (the same N in every cell "
            "of a dataset): the whole grid at a size you can afford; --examples-per-cell overrides it"),
    ), None, "the study as a whole"),
    Section("datasets", True, (
        Key("name", "str", None, help="label used in cell names (default: the builtin or loader name)"),
        Key("builtin", "str|null", None, help="a builtin dataset (engine data list)"),
        Key("loader", "str|null", None, help="a file format (engine data list), with path"),
        Key("path", "str|null", None, help="file or directory for loader; ~ and $VARS expand at run time, relative "
            "paths resolve against the directory `engine study` runs in"),
        Key("size", "int|null", None, minimum=1, help="builtin only: --dataset-size"),
        Key("seed", "int", 0, help="seed of any split the loader makes (--data-seed)"),
        Key("columns", "str|null", None, help="jsonl/csv: code=COL,label=COL[,id=COL][,code2=COL]"),
        Key("language", "str|null", None, help="jsonl/csv: c, java or python"),
        Key("task", "str|null", None, help="jsonl/csv: the task"),
        Key("skip_bad", "bool", False, help="skip malformed lines instead of stopping"),
    ), None, "datasets: every model is trained on every dataset"),
    Section("models", True, (
        Key("name", "str", help="label used in cell names and reports"),
        Key("base", "str", help="scratch:tiny|small|base, minilm, a model directory or a hub id"),
        Key("datasets", "list[str]", [], help="train this model only on these [[datasets]] (their names); "
            "default: on every dataset"),
    ), "train", "victims to fine-tune; other keys are `engine train` options (epochs, lr, max_length, …)"),
    Section("compressions", True, (
        Key("name", "str", None, help="label (default: the method)"),
        Key("method", "str", choices=tuple(METHODS), help="compression method"),
        Key("of", "str|null", None,
            help="the name of another [[compressions]] entry, listed before this one: compress its output (e.g. "
            "method = \"harden\" of = \"prune\": robust fine-tuning of the pruned variant) instead of the victim"),
        Key("models", "list[str]", [], help="compress only these [[models]] (their names); default: every victim"),
        Key("adversarial", "str|null", None,
            help="the name of an [[augment]] entry: also train on the adversarial programs it writes "
            "(engine compress --adversarial; harden and distill --robust)"),
    ), "compress", "compressed variants of every victim; other keys are `engine compress` options (ratio, target_mb, …)"),
    Section("augment", True, (
        Key("name", "str", help="label, named by a [[compressions]] entry's adversarial"),
        Key("of", "str|null", None,
            help="the variant attacked: a [[compressions]] name, or null for the original"),
        Key("attack", "str", choices=("random", "alert", "mhm", "mhm-ns", "wir-random"),
            help="random (one random renaming per program) or an attack recipe (engine augment --attack)"),
        Key("n", "int|null", None, minimum=1, help="only the first N training programs (default: all)"),
    ), "augment", "adversarial training programs (engine augment on the train split), made for the compressions "
        "that name them; other keys are `engine augment` options (budget, per_example, …)"),
    Section("mlm", False, (
        Key("source", "str", MLM_PRETRAIN,
            help="'pretrain' (train a masked LM per dataset with engine pretrain-mlm) or a masked-LM directory / hub id"),
    ), "pretrain-mlm", "the masked LM behind natural substitutes; other keys are `engine pretrain-mlm` options"),
    Section("substitutes", False, (
        Key("from_dataset", "bool", False,
            help="use substitutes shipped in the dataset (e.g. ALERT's Devign files) instead of computing them"),
    ), "substitutes", "natural substitutes (ALERT, MHM-NS); other keys are `engine substitutes` options (top_k, …)"),
    Section("attack_defaults", False, (
        Key("n", "int|null", None, minimum=1, help="examples attacked per cell"),
        Key("budget", "int|null", None, minimum=1, help="query budget per example"),
        Key("batch_size", "int|null", None, minimum=1, help="victim batch size (an engineering knob: not hashed)"),
    ), "attack", "defaults for every [[attacks]] entry; other keys are `engine attack` options"),
    Section("attacks", True, (
        Key("recipe", "str|null", None, choices=tuple(registry.RECIPES),
            help="attack recipe (required unless transfer is given)"),
        Key("name", "str", None, help="label (default: the recipe); also the records' attack_name when it differs from "
            "the recipe, so two entries of one recipe (another budget) stay apart in the report"),
        Key("transfer", "str|null", None,
            help="the name of another [[attacks]] entry: replay the adversarial programs it found on the original on "
            "every victim and variant (engine attack --transfer-from) instead of attacking; needs include_original"),
        Key("n", "int|null", None, minimum=1, help="examples attacked per cell (default: attack_defaults.n)"),
        Key("budget", "int|null", None, minimum=1, help="query budget per example (default: attack_defaults.budget)"),
        Key("batch_size", "int|null", None, minimum=1, help="victim batch size (not hashed)"),
        Key("substitutes", "bool|null", None,
            help="feed natural substitutes (default: true for alert and mhm-ns, false otherwise)"),
    ), "attack", "attacks run on every victim and variant; other keys are `engine attack` options (recipe parameters)"),
)}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    builtin: str | None
    loader: str | None
    path: str | None  # as written (hashed); expanded at run time
    size: int | None
    seed: int
    columns: str | None
    language: str | None
    task: str | None
    skip_bad: bool

    def hashed(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}


@dataclass(frozen=True)
class StageSpec:
    """One entry of a stage section: its own keys plus pass-through options of the stage command."""

    name: str
    values: dict[str, Any]  # the section's own keys, defaults filled in
    options: dict[str, Any]  # pass-through options (key -> TOML value), validated

    def applies_to(self, model: str) -> bool:
        """A [[compressions]] entry with `models` is made for those victims only."""
        return not self.values.get("models") or model in self.values["models"]


@dataclass
class StudyConfig:
    path: Path
    name: str
    description: str
    seeds: list[int]
    device: str
    threads: int | None
    gpus: float
    executor: str
    jobs: int | None
    include_original: bool
    report: list[str]
    datasets: list[DatasetSpec]
    models: list[StageSpec]
    compressions: list[StageSpec]
    mlm: StageSpec
    substitutes: StageSpec
    attacks: list[StageSpec]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    augments: list[StageSpec] = field(default_factory=list)  # [[augment]]: adversarial training programs
    labels: dict[str, str] = field(default_factory=dict)  # [labels]: variant name -> text in the report
    examples_per_cell: int | None = None  # attack cells attack a stratified sample of this many examples

    def augment_needs_substitutes(self, augment: StageSpec) -> bool:
        return augment.values["attack"] in ("alert", "mhm-ns")

    def attack_needs_substitutes(self, attack: StageSpec) -> bool:
        wanted = attack.values["substitutes"]
        return registry.recipe(attack.values["recipe"]).natural_substitutes if wanted is None else bool(wanted)


# --------------------------------------------------------------------------- option sources


def cli_options(command: str) -> dict[str, argparse.Action] | None:
    """The options of `engine COMMAND` (key: the long flag without dashes, `-` as `_`), or None if absent."""
    from engine.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices.get(command)
            if sub is None:
                return None
            return actions_by_key(sub)
    return None


def actions_by_key(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    found = {}
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--"):
                found.setdefault(option[2:].replace("-", "_"), action)
    return found


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path, options: OptionSource = cli_options) -> StudyConfig:
    """Read and validate a study config; `options` gives each stage command's argparse options."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StudyConfigError(f"{path}: cannot read the study config ({err.strerror or err})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise StudyConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(raw, path, options)


def parse_config(raw: dict[str, Any], path: Path, options: OptionSource = cli_options) -> StudyConfig:
    unknown = sorted(set(raw) - set(SECTIONS) - {LABELS})
    if unknown:
        raise StudyConfigError(f"{path}: unknown section [{unknown[0]}]; sections are {', '.join([*SECTIONS, LABELS])}")
    for required in ("study", "datasets", "models", "attacks"):
        if required not in raw:
            raise StudyConfigError(f"{path}: the [{'[' if SECTIONS[required].array else ''}{required}"
                                   f"{']' if SECTIONS[required].array else ''}] section is missing")
    cache: dict[str, dict[str, argparse.Action] | None] = {}

    def stage_options(command: str) -> dict[str, argparse.Action] | None:
        if command not in cache:
            cache[command] = options(command)
        return cache[command]

    reader = _Reader(path, stage_options)
    study = reader.table("study", raw["study"])
    datasets = [_dataset(reader, where, values) for where, values in reader.array("datasets", raw["datasets"])]
    models = [_stage(reader, where, values, name=values["name"]) for where, values in reader.array("models", raw["models"])]
    compressions = [_stage(reader, where, values, name=values["name"] or values["method"])
                    for where, values in reader.array("compressions", raw.get("compressions", []))]
    augments = [_stage(reader, where, values, name=values["name"])
                for where, values in (reader.array("augment", raw["augment"]) if "augment" in raw else [])]
    mlm = _stage(reader, *reader.single("mlm", raw.get("mlm", {})), name="mlm")
    substitutes = _stage(reader, *reader.single("substitutes", raw.get("substitutes", {})), name="substitutes")
    defaults = _stage(reader, *reader.single("attack_defaults", raw.get("attack_defaults", {})), name="attack_defaults")
    attacks = []
    for where, values in reader.array("attacks", raw["attacks"]):
        _attack_source(reader, where, values, attacks)
        for key in ("n", "budget", "batch_size"):
            if values[key] is None:
                values[key] = defaults.values[key]
        for key in ("n", "budget"):
            if values[key] is None:
                raise StudyConfigError(f"{path}: {where}: no {key!r}; set it here or in [attack_defaults]")
        merged = {**defaults.options, **values.pop("__options__")}
        attacks.append(StageSpec(values["name"] or values["recipe"], values, merged))
    config = StudyConfig(
        path=path, name=study["name"], description=study["description"], seeds=study["seeds"],
        device=study["device"], threads=study["threads"], gpus=study["gpus"],
        executor=study["executor"], jobs=study["jobs"],
        include_original=study["include_original"], report=study["report"], datasets=datasets, models=models,
        compressions=compressions, mlm=mlm, substitutes=substitutes, attacks=attacks, raw=raw, augments=augments,
        examples_per_cell=study["examples_per_cell"])
    _check_study(config, reader)
    config.labels = _labels(path, raw.get(LABELS, {}), config)
    return config


def _labels(path: Path, raw: Any, config: StudyConfig) -> dict[str, str]:
    """[labels]: how the report names variants, e.g. `int8 = "Int8 (dynamic)"`, passed on as
    `analysis report --label KEY=TEXT`. A key is "original", a compression or model name, or
    MODEL-COMPRESSION for one model's variant."""
    if not isinstance(raw, dict):
        raise StudyConfigError(f"{path}: [labels] must be a table of name = \"text\" entries, got {_toml_type(raw)}")
    originals = {"original", *(m.name for m in config.models)} if config.include_original else set()
    names = {*originals, *(c.name for c in config.compressions),
             *(f"{m.name}-{c.name}" for m in config.models for c in config.compressions if c.applies_to(m.name))}
    for key, text in raw.items():
        if key not in names:
            raise StudyConfigError(f"{path}: [labels]: {key!r} names no variant; use one of {', '.join(sorted(names))}")
        if not isinstance(text, str) or not text.strip():
            raise StudyConfigError(f"{path}: [labels]: {key} = {text!r} should be a non-empty string")
    return {key: text.strip() for key, text in raw.items()}


def _attack_source(reader: _Reader, where: str, values: dict[str, Any], earlier: list[StageSpec]) -> None:
    """A transfer entry takes its recipe, n and budget from the entry it replays (listed before it);
    any other entry needs a recipe."""
    source = values["transfer"]
    if source is None:
        if values["recipe"] is None:
            raise StudyConfigError(f"{reader.path}: {where}: the key 'recipe' is required (attack recipe), "
                                   "or transfer = NAME of another entry to replay")
        return
    found = [a for a in earlier if a.name == source]
    if not found:
        names = ", ".join(a.name for a in earlier) or "none"
        raise StudyConfigError(f"{reader.path}: {where}: transfer = {source!r} names no [[attacks]] entry listed before "
                               f"this one (earlier entries: {names})")
    if found[0].values["transfer"] is not None:
        raise StudyConfigError(f"{reader.path}: {where}: transfer = {source!r} is itself a transfer entry; replay an "
                               "entry that attacks")
    recipe = found[0].values["recipe"]
    if values["recipe"] not in (None, recipe):
        raise StudyConfigError(f"{reader.path}: {where}: recipe = {values['recipe']!r} differs from the recipe of "
                               f"{source!r} ({recipe!r}), whose programs it replays; leave recipe out")
    if values["substitutes"]:
        raise StudyConfigError(f"{reader.path}: {where}: a transfer entry replays programs; substitutes = true does "
                               "not apply")
    values["recipe"] = recipe
    values["substitutes"] = False
    for key in ("n", "budget"):
        if values[key] is None:
            values[key] = found[0].values[key]
    if values["name"] is None:
        values["name"] = f"{source}-transfer"


def _dataset(reader: _Reader, where: str, values: dict[str, Any]) -> DatasetSpec:
    from engine.datasets.registry import BUILTINS, FORMATS

    values.pop("__options__")
    builtin, loader = values["builtin"], values["loader"]
    if (builtin is None) == (loader is None):
        raise StudyConfigError(f"{reader.path}: {where}: give exactly one of builtin = NAME or loader = FORMAT")
    if builtin is not None:
        if builtin not in BUILTINS:
            raise StudyConfigError(f"{reader.path}: {where}: builtin = {builtin!r} is unknown; "
                                   f"builtins: {', '.join(BUILTINS)}")
        for key in ("path", "columns", "language", "task"):
            if values[key] is not None:
                raise StudyConfigError(f"{reader.path}: {where}: {key!r} is for loader datasets, not builtin ones")
    else:
        if loader not in FORMATS:
            raise StudyConfigError(f"{reader.path}: {where}: loader = {loader!r} is unknown; formats: {', '.join(FORMATS)}")
        if values["path"] is None:
            raise StudyConfigError(f"{reader.path}: {where}: loader = {loader!r} needs path = FILE_OR_DIRECTORY")
        if values["size"] is not None:
            raise StudyConfigError(f"{reader.path}: {where}: size is for builtin datasets")
        if not FORMATS[loader].generic:
            for key in ("columns", "language", "task"):
                if values[key] is not None:
                    raise StudyConfigError(f"{reader.path}: {where}: {key!r} is for jsonl and csv; {loader} fixes it")
    name = values["name"] or builtin or loader
    reader.check_name(where, name)
    return DatasetSpec(name=name, **{k: v for k, v in values.items() if k != "name"})


def _stage(reader: _Reader, where: str, values: dict[str, Any], name: str) -> StageSpec:
    options = values.pop("__options__")
    reader.check_name(where, name)
    return StageSpec(name, values, options)


def _check_study(config: StudyConfig, reader: _Reader) -> None:
    path = config.path
    if not config.seeds:
        raise StudyConfigError(f"{path}: [study] seeds is empty; give at least one seed")
    if len(set(config.seeds)) != len(config.seeds):
        raise StudyConfigError(f"{path}: [study] seeds {config.seeds} repeats a seed")
    for section, entries in (("datasets", config.datasets), ("models", config.models),
                             ("compressions", config.compressions), ("attacks", config.attacks),
                             ("augment", config.augments)):
        seen: set[str] = set()
        for index, entry in enumerate(entries, 1):
            if entry.name in seen:
                raise StudyConfigError(f"{path}: [[{section}]] #{index}: the name {entry.name!r} is used twice; "
                                       "give each entry a distinct name")
            seen.add(entry.name)
    for index, compression in enumerate(config.compressions):
        source = compression.values["of"]
        if source is None:
            continue
        earlier = [c.name for c in config.compressions[:index]]
        if source not in earlier:
            raise StudyConfigError(f"{path}: [[compressions]] #{index + 1} ({compression.name}): of = {source!r} names "
                                   "no [[compressions]] entry listed before this one (earlier entries: "
                                   f"{', '.join(earlier) or 'none'})")
    victims = [m.name for m in config.models]
    for index, compression in enumerate(config.compressions, 1):
        where = f"{path}: [[compressions]] #{index} ({compression.name})"
        unknown = [name for name in compression.values["models"] if name not in victims]
        if unknown:
            raise StudyConfigError(f"{where}: models = {unknown} names no [[models]] entry; the models are "
                                   f"{', '.join(victims)}")
        source = compression.values["of"]
        if source is not None:
            parent = next(c for c in config.compressions if c.name == source)
            missing = _not_made_for(compression, parent, victims)
            if missing:
                raise StudyConfigError(f"{where}: of = {source!r} is not made for models {missing} "
                                       f"(its models = {parent.values['models']}); restrict this entry's models too")
        _check_adversarial(config, index, compression, where, victims)
    used = {c.values["adversarial"] for c in config.compressions}
    for index, augment in enumerate(config.augments, 1):
        where = f"{path}: [[augment]] #{index} ({augment.name})"
        if augment.values["of"] is not None and augment.values["of"] not in {c.name for c in config.compressions}:
            raise StudyConfigError(f"{where}: of = {augment.values['of']!r} names no [[compressions]] entry (leave it "
                                   "out to attack the original)")
        if augment.name not in used:
            raise StudyConfigError(f"{where}: no [[compressions]] entry names it (adversarial = {augment.name!r}), so it "
                                   "would never run")
    names = [d.name for d in config.datasets]
    for index, model in enumerate(config.models, 1):
        unknown = [name for name in model.values["datasets"] if name not in names]
        if unknown:
            raise StudyConfigError(f"{path}: [[models]] #{index} ({model.name}): datasets = {unknown} names no "
                                   f"[[datasets]] entry; the datasets are {', '.join(names)}")
    transfers = [a.name for a in config.attacks if a.values["transfer"] is not None]
    if transfers and not config.include_original:
        raise StudyConfigError(f"{path}: [[attacks]] {transfers}: a transfer replays what an attack found on the "
                               "original; set include_original = true")
    if config.compressions and "original" in {c.name for c in config.compressions}:
        raise StudyConfigError(f"{path}: [[compressions]]: the name 'original' is reserved for the uncompressed victim")
    if not config.include_original and not config.compressions:
        raise StudyConfigError(f"{path}: include_original = false and no [[compressions]]: nothing to attack")
    natural = [a for a in config.attacks if config.attack_needs_substitutes(a)]
    natural += [a for a in config.augments if config.augment_needs_substitutes(a)]
    if config.mlm.values["source"] != MLM_PRETRAIN and config.mlm.options:
        raise StudyConfigError(f"{path}: [mlm] options {sorted(config.mlm.options)} are for source = 'pretrain'; "
                               f"source = {config.mlm.values['source']!r} is used as it is")
    if natural and not config.substitutes.values["from_dataset"]:
        if config.mlm.values["source"] == MLM_PRETRAIN and reader.options("pretrain-mlm") is None:
            raise StudyConfigError(f"{path}: attacks {[a.name for a in natural]} need natural substitutes, "
                                   "but `engine pretrain-mlm` is not installed")
        if reader.options("substitutes") is None:
            raise StudyConfigError(f"{path}: attacks {[a.name for a in natural]} need natural substitutes, but "
                                   "`engine substitutes` is not installed; set substitutes = false on them")


def _not_made_for(compression: StageSpec, parent: StageSpec, victims: list[str]) -> list[str]:
    """The victims `compression` is made for that `parent` (the variant it reads) is not."""
    return [m for m in (compression.values["models"] or victims) if not parent.applies_to(m)]


def _check_adversarial(config: StudyConfig, index: int, compression: StageSpec, where: str, victims: list[str]) -> None:
    """`adversarial = NAME` names an [[augment]] entry whose attacked variant is made before this
    compression, for every model this compression is made for."""
    name = compression.values["adversarial"]
    if name is None:
        return
    augment = next((a for a in config.augments if a.name == name), None)
    if augment is None:
        known = ", ".join(a.name for a in config.augments) or "none"
        raise StudyConfigError(f"{where}: adversarial = {name!r} names no [[augment]] entry (entries: {known})")
    method = compression.values["method"]
    if method not in ("harden", "distill") or (method == "distill" and compression.options.get("robust") is not True):
        raise StudyConfigError(f"{where}: adversarial programs are for method = \"harden\" or \"distill\" (with "
                               f"robust = true), not {compression.values['method']!r}")
    target = augment.values["of"]
    if target is None:
        return
    earlier = config.compressions[:index - 1]
    parent = next((c for c in earlier if c.name == target), None)
    if parent is None:
        raise StudyConfigError(f"{where}: adversarial = {name!r} attacks of = {target!r}, which must be a "
                               "[[compressions]] entry listed before this one")
    missing = _not_made_for(compression, parent, victims)
    if missing:
        raise StudyConfigError(f"{where}: adversarial = {name!r} attacks {target!r}, which is not made for models "
                               f"{missing}; restrict this entry's models too")


# --------------------------------------------------------------------------- the generic reader


class _Reader:
    """Checks one section's keys and types; pass-through keys against the stage command's options."""

    def __init__(self, path: Path, options: Callable[[str], dict[str, argparse.Action] | None]) -> None:
        self.path = path
        self.options = options

    def table(self, name: str, raw: Any) -> dict[str, Any]:
        where, values = self.single(name, raw)
        values.pop("__options__")
        return values

    def single(self, name: str, raw: Any) -> tuple[str, dict[str, Any]]:
        where = f"[{name}]"
        if not isinstance(raw, dict):
            raise StudyConfigError(f"{self.path}: {where} must be a table ([{name}]), got {_toml_type(raw)}")
        return where, self._entry(SECTIONS[name], where, raw)

    def array(self, name: str, raw: Any) -> list[tuple[str, dict[str, Any]]]:
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            raise StudyConfigError(f"{self.path}: {name} must be an array of tables ([[{name}]] entries)")
        if not raw and name != "compressions":
            raise StudyConfigError(f"{self.path}: [[{name}]] has no entries")
        entries = []
        for index, item in enumerate(raw, 1):
            label = item.get("name") or item.get("recipe") or item.get("method") or item.get("builtin") or item.get("loader")
            where = f"[[{name}]] #{index}" + (f" ({label})" if isinstance(label, str) else "")
            entries.append((where, self._entry(SECTIONS[name], where, item)))
        return entries

    def check_name(self, where: str, name: Any) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise StudyConfigError(f"{self.path}: {where}: name {name!r} must start with a letter or digit and use "
                                   "only letters, digits and _ . + -")

    def _entry(self, section: Section, where: str, raw: dict[str, Any]) -> dict[str, Any]:
        own = {key.name: key for key in section.keys}
        values: dict[str, Any] = {}
        for key in section.keys:
            if key.name in raw:
                values[key.name] = self._own(where, key, raw[key.name])
            elif key.default is _REQUIRED:
                raise StudyConfigError(f"{self.path}: {where}: the key {key.name!r} is required ({key.help})")
            else:
                values[key.name] = list(key.default) if isinstance(key.default, list) else key.default
        passthrough = {}
        for name in raw:
            if name in own:
                continue
            passthrough[name] = self._passthrough(section, where, name, raw[name])
        values["__options__"] = dict(sorted(passthrough.items()))
        return values

    def _own(self, where: str, key: Key, value: Any) -> Any:
        kind = key.kind
        if not _is_type(value, kind.removesuffix("|null")):  # TOML has no null: a nullable key is left out
            raise StudyConfigError(f"{self.path}: {where}: {key.name} = {value!r} should be {_type_words(kind)}")
        items = value if isinstance(value, list) else [value]
        for item in items:
            if key.choices and item not in key.choices:
                raise StudyConfigError(f"{self.path}: {where}: {key.name} = {item!r} is not allowed; "
                                       f"use one of {', '.join(key.choices)}")
            if key.minimum is not None and isinstance(item, (int, float)) and item < key.minimum:
                raise StudyConfigError(f"{self.path}: {where}: {key.name} = {item!r} must be at least {key.minimum:g}")
        return list(value) if isinstance(value, list) else value

    def _passthrough(self, section: Section, where: str, name: str, value: Any) -> Any:
        own = ", ".join(key.name for key in section.keys)
        if section.command is None:
            raise StudyConfigError(f"{self.path}: {where}: unknown key {name!r}; allowed keys: {own}")
        actions = self.options(section.command)
        if actions is None:
            raise StudyConfigError(f"{self.path}: {where}: key {name!r} would be an option of `engine "
                                   f"{section.command}`, which is not installed here; allowed keys: {own}")
        reserved = DATASET_OPTIONS | RUNTIME_OPTIONS | STAGE_OWNED.get(section.command, set())
        if name in reserved:
            raise StudyConfigError(f"{self.path}: {where}: {name!r} is set by the study itself, not per entry "
                                   "(datasets in [[datasets]], device and threads in [study])")
        action = actions.get(name)
        if action is None:
            choices = sorted(k for k in actions if k not in reserved)
            raise StudyConfigError(f"{self.path}: {where}: unknown key {name!r}; allowed keys: {own}, or an option of "
                                   f"`engine {section.command}`: {', '.join(choices)}")
        _check_action_value(self.path, where, name, value, action)
        return value


def _check_action_value(path: Path, where: str, name: str, value: Any, action: argparse.Action) -> None:
    flag_only = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
    if flag_only:
        if not isinstance(value, bool):
            raise StudyConfigError(f"{path}: {where}: {name} = {value!r} should be true or false (a flag)")
        return
    many = action.nargs in ("+", "*") or isinstance(action.nargs, int) and action.nargs > 1
    items = value if isinstance(value, list) and many else [value]
    expected = {int: "int", float: "float"}.get(action.type, "str")
    for item in items:
        if isinstance(item, (dict, list, bool)):
            raise StudyConfigError(f"{path}: {where}: {name} = {value!r} should be {_type_words(expected)}")
        if expected == "int" and not isinstance(item, int):
            raise StudyConfigError(f"{path}: {where}: {name} = {item!r} should be an integer")
        if expected == "float" and not isinstance(item, (int, float)):
            raise StudyConfigError(f"{path}: {where}: {name} = {item!r} should be a number")
        if expected == "str" and action.type not in (None, str):
            try:
                action.type(str(item))
            except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
                raise StudyConfigError(f"{path}: {where}: {name} = {item!r} is refused by the command: {err}") from None
        converted = action.type(str(item)) if action.type in (int, float) else item
        if action.choices is not None and converted not in action.choices:
            raise StudyConfigError(f"{path}: {where}: {name} = {item!r} is not allowed; use one of "
                                   f"{', '.join(map(str, action.choices))}")


def _is_type(value: Any, kind: str) -> bool:
    if value is None:
        return False
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind.startswith("list["):
        inner = kind[5:-1]
        return isinstance(value, list) and all(_is_type(item, inner) for item in value)
    raise AssertionError(kind)


def _type_words(kind: str) -> str:
    base = kind.removesuffix("|null")
    words = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
             "list[int]": "a list of integers", "list[str]": "a list of strings"}[base]
    return words + (" (or left out)" if kind.endswith("|null") else "")


def _toml_type(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)
