"""Every dataset `engine` can load, the builtin cache, and the dataset options every command shares.

`BUILTINS` and `FORMATS` are found in `engine/datasets/builtins/` and `engine/datasets/formats/`
(each module declares its entries, `engine.datasets.spec`): the one list the options below, the
study config, `engine data list` and the docs tables read.

- `load_dataset(name_or_format, path=None, **options)`: the plain API;
- `add_dataset_options(parser)` / `dataset_from_args(args)`: the same options on every command
  that needs a dataset (data show, train, eval, attack), so they are spelled alike everywhere.

Builtin datasets are built once into a "pool" (labelled examples, no split) cached under
`cache_root()/datasets/<name>/<key>/` with a manifest; the key hashes everything the pool
depends on (builder version, size, Python version, a hash of the sources), so a changed input
is a new entry, never a stale one. The split is made from the pool on every load, by seed.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.common.discovery import discover
from engine.datasets.base import TASKS, Dataset
from engine.datasets.loaders import DEFAULT_FRACTIONS, Record, assemble, file_sha256, split_records
from engine.datasets.spec import Builtin, Format
from engine.errors import UserError

CACHE_ENV = "CRT_CACHE_DIR"
APP_DIR = "code-robustness-toolkit"


BUILTINS: dict[str, Builtin] = discover("engine.datasets.builtins", "BUILTINS")
FORMATS: dict[str, Format] = discover("engine.datasets.formats", "FORMATS")


# --------------------------------------------------------------------------- cache


def cache_root() -> Path:
    """$CRT_CACHE_DIR, else $XDG_CACHE_HOME/code-robustness-toolkit, else ~/.cache/code-robustness-toolkit."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / APP_DIR


@dataclass
class Pool:
    records: list[Record]
    label_names: list[str]
    manifest: dict[str, Any]
    path: Path
    from_cache: bool
    seconds: float  # this call: building, or reading the cache


def _key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _pool_fingerprint(records: list[Record], label_names: list[str]) -> str:
    digest = hashlib.sha256(json.dumps(label_names).encode())
    for record in records:
        digest.update(json.dumps([record.id, record.code, record.label, record.group]).encode())
    return digest.hexdigest()[:16]


def _write_pool(directory: Path, records: list[Record], manifest: dict[str, Any]) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = directory.with_name(f"{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    pool_file = temporary / "pool.jsonl.gz"
    with open(pool_file, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        for record in records:
            line = {"id": record.id, "code": record.code, "label": record.label, "group": record.group, "meta": record.meta}
            handle.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))
    manifest = {**manifest, "pool_sha256": file_sha256(pool_file)}
    (temporary / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    try:
        os.replace(temporary, directory)
    except OSError:  # another process finished the same entry first: keep theirs
        shutil.rmtree(temporary, ignore_errors=True)


def _read_pool(directory: Path) -> tuple[list[Record], dict[str, Any]] | None:
    manifest_file, pool_file = directory / "manifest.json", directory / "pool.jsonl.gz"
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        if file_sha256(pool_file) != manifest.get("pool_sha256"):
            return None
        records = []
        with gzip.open(pool_file, "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                code = tuple(row["code"]) if isinstance(row["code"], list) else row["code"]
                records.append(Record(row["id"], code, row["label"], row.get("meta") or {}, row.get("group")))
        return records, manifest
    except (OSError, ValueError, KeyError):
        return None


def build_builtin(name: str, size: int | None = None, rebuild: bool = False, progress: bool = True) -> Pool:
    """The builtin's labelled pool, from the cache or built now (and cached)."""
    builtin = _builtin(name)
    size = builtin.default_size if size is None else size
    if size < 1:
        raise UserError(f"--dataset-size must be at least 1 ({builtin.size_help})")
    started = time.perf_counter()
    key = builtin.key(size)
    directory = cache_root() / "datasets" / name / _key_hash(key)
    cached = None if rebuild else _read_pool(directory)
    if cached is not None:
        records, manifest = cached
        return Pool(records, manifest["label_names"], manifest, directory, True, time.perf_counter() - started)
    shutil.rmtree(directory, ignore_errors=True)  # absent, unreadable or damaged: built again below
    bar = _progress_bar(builtin, progress)
    try:
        records, label_names, facts = builtin.build(size, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    manifest = {
        "builtin": name,
        "key": key,
        "label_names": label_names,
        "examples": len(records),
        "pool_fingerprint": _pool_fingerprint(records, label_names),
        "build_seconds": round(seconds, 2),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **facts,
    }
    try:
        _write_pool(directory, records, manifest)
    except OSError as err:
        print(f"warning: could not cache {name} in {directory}: {err.strerror}", file=sys.stderr)
    return Pool(records, label_names, manifest, directory, False, seconds)


def _progress_bar(builtin: Builtin, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(desc=f"building {builtin.name}", unit=builtin.unit, file=sys.stderr, disable=None, leave=False)


def load_builtin(
    name: str, *, size: int | None = None, seed: int = 0, rebuild: bool = False, progress: bool = True,
    pool: Pool | None = None,
) -> Dataset:
    """A builtin dataset: its cached (or newly built) pool, split by `seed`."""
    builtin = _builtin(name)
    if pool is None:
        pool = build_builtin(name, size=size, rebuild=rebuild, progress=progress)
    splits = split_records(pool.records, DEFAULT_FRACTIONS, seed, salt=name)
    grouped = any(record.group is not None for record in pool.records)
    how = "by group (all variants of one problem together)" if grouped else "stratified by label"
    made = {split: f"{share * 100:.0f}% of the pool, {how}; seed {seed}" for split, share in DEFAULT_FRACTIONS.items()}
    facts = {key: value for key, value in pool.manifest.items() if key != "label_names"}
    facts["cache_path"] = str(pool.path)
    return assemble(
        name=name, task=builtin.task, language=builtin.language, sources={}, seed=seed,
        label_names=pool.label_names, label_index={label: i for i, label in enumerate(pool.label_names)},
        splits=splits, made=made, manifest=facts,
    )


def _builtin(name: str) -> Builtin:
    try:
        return BUILTINS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; builtins are {', '.join(BUILTINS)}") from None


# --------------------------------------------------------------------------- the plain API


_OPTIONS = ("seed", "skip_bad", "columns", "language", "task", "size", "rebuild", "progress")


def load_dataset(name_or_format: str, path: str | os.PathLike | None = None, **options: Any) -> Dataset:
    """A builtin by name (`stdlib-attribution`, `humaneval-defects`) or a file format with `path`.

    Options: seed (0), skip_bad (False), columns/language/task (jsonl, csv only),
    size (builtins only), rebuild and progress (builtins only).
    """
    check_options(name_or_format, path, options)
    seed = int(options.get("seed") or 0)
    if name_or_format in BUILTINS:
        return load_builtin(
            name_or_format, size=options.get("size"), seed=seed,
            rebuild=bool(options.get("rebuild")), progress=options.get("progress", True),
        )
    spec = FORMATS[name_or_format]
    kwargs: dict[str, Any] = {"seed": seed, "skip_bad": bool(options.get("skip_bad"))}
    if spec.generic:
        kwargs.update(columns=options.get("columns"), language=options.get("language"), task=options.get("task"))
    return spec.load(path, **kwargs)


def check_options(name_or_format: str, path: str | os.PathLike | None, options: dict[str, Any]) -> None:
    """UserError for a combination of dataset options that cannot work."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(f"load_dataset() got unknown option(s) {', '.join(unknown)}; options are {', '.join(_OPTIONS)}")
    if name_or_format in BUILTINS:
        if path is not None:
            raise UserError(f"{name_or_format} is a builtin dataset: it takes no --data path")
        _reject(options, ("skip_bad", "columns", "language", "task"), f"the builtin {name_or_format}",
                hint="these options are for --data-format files")
        return
    if name_or_format not in FORMATS:
        raise UserError(
            f"unknown dataset or format {name_or_format!r}; builtins: {', '.join(BUILTINS)}; formats: {', '.join(FORMATS)}"
        )
    if path is None:
        raise UserError(f"--data-format {name_or_format} needs --data PATH (a file or a directory)")
    _reject(options, ("size", "rebuild"), f"--data-format {name_or_format}", hint="it is for builtin datasets")
    if not FORMATS[name_or_format].generic:
        _reject(options, ("columns", "language", "task"), f"--data-format {name_or_format}",
                hint="--columns, --language and --task are for jsonl and csv; this format fixes them")


def _reject(options: dict[str, Any], names: tuple[str, ...], what: str, hint: str = "") -> None:
    for name in names:
        if options.get(name) not in (None, False, ""):
            flag = {"size": "--dataset-size", "skip_bad": "--skip-bad"}.get(name, f"--{name.replace('_', '-')}")
            raise UserError(f"{flag} does not apply to {what}" + (f" ({hint})" if hint else ""))


# --------------------------------------------------------------------------- the CLI options


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """The dataset options, identical on every command that reads a dataset.

    The data seed is `--seed` (dest `data_seed`) and always also `--data-seed`; a command that
    has a `--seed` of its own must add it before calling this, and then only `--data-seed`
    is added.
    """
    group = parser.add_argument_group("dataset")
    group.add_argument("--dataset", choices=list(BUILTINS), metavar="NAME",
                       help=f"a builtin dataset: {', '.join(BUILTINS)}")
    group.add_argument("--data-format", choices=list(FORMATS), metavar="FORMAT",
                       help=f"read files: {'|'.join(FORMATS)} (with --data)")
    group.add_argument("--data", metavar="PATH", help="the file or directory of --data-format")
    group.add_argument("--columns", metavar="KEY=COL,...",
                       help="jsonl/csv: code=COL,label=COL[,id=COL][,code2=COL for pairs]")
    group.add_argument("--language", help="jsonl/csv: c|java|python")
    group.add_argument("--task", choices=TASKS, help="jsonl/csv: the task (default classification, clone with code2)")
    group.add_argument("--skip-bad", action="store_true",
                       help="skip malformed lines and count them in the manifest instead of stopping at the first")
    seed_flags = ["--data-seed"] if "--seed" in parser._option_string_actions else ["--seed", "--data-seed"]
    group.add_argument(*seed_flags, dest="data_seed", type=int, default=0, metavar="N",
                       help="seed of any split the loader makes (default 0)")
    group.add_argument("--dataset-size", type=int, metavar="N",
                       help="builtins: " + "; ".join(f"{spec.size_help} ({name}, default {spec.default_size})"
                                                     for name, spec in BUILTINS.items()))


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    """The dataset the options name; bad combinations are a UserError that says what to do."""
    name = getattr(args, "dataset", None)
    fmt = getattr(args, "data_format", None)
    path = getattr(args, "data", None)
    if name and fmt:
        raise UserError("give either --dataset NAME (builtin) or --data-format FORMAT --data PATH, not both")
    if name and path:
        raise UserError(f"--dataset {name} is builtin and reads no files; drop --data (or use --data-format)")
    if not name and not fmt:
        if path:
            raise UserError(f"--data needs --data-format ({'|'.join(FORMATS)})")
        raise UserError(
            f"choose a dataset: --dataset {'|'.join(BUILTINS)}, or --data-format {'|'.join(FORMATS)} --data PATH"
        )
    options = {
        "seed": getattr(args, "data_seed", 0) or 0,
        "skip_bad": getattr(args, "skip_bad", False),
        "columns": getattr(args, "columns", None),
        "language": getattr(args, "language", None),
        "task": getattr(args, "task", None),
        "size": getattr(args, "dataset_size", None),
        "rebuild": getattr(args, "rebuild", False),
    }
    if name:
        check_options(name, None, options)
        pool = build_builtin(name, size=options["size"], rebuild=bool(options["rebuild"]))
        if not pool.from_cache:
            print(f"built {name} in {pool.seconds:.1f} s; cached in {pool.path}", file=sys.stderr)
        dataset = load_builtin(name, seed=int(options["seed"]), pool=pool)
    else:
        dataset = load_dataset(fmt, path, **options)
    skipped = dataset.manifest.get("skipped", {}).get("count", 0)
    if skipped:
        reasons = ", ".join(f"{n} {reason}" for reason, n in dataset.manifest["skipped"]["by_reason"].items())
        print(f"skipped {skipped} bad line(s) in {dataset.name}: {reasons}", file=sys.stderr)
    return dataset
