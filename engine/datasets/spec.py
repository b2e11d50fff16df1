"""What a dataset module declares: `FORMATS = (Format(...),)` in `engine/datasets/formats/` (files
a user points at) or `BUILTINS = (Builtin(...),)` in `engine/datasets/builtins/` (datasets built
offline from local sources). `engine.datasets.registry` imports every module of both packages,
so a new loader or builtin is one new module (plus its test): `--data-format`/`--dataset`, the
study config's `loader`/`builtin` keys, `engine data list` and the docs tables read the registry.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Format:
    """A file format: `load(path, *, seed, skip_bad, **generic options) -> Dataset`.

    `load` reads its files with the helpers of `engine.datasets.loaders` (bad lines with file
    and line number, `--skip-bad`, missing splits completed by seed) and ends with `assemble`.
    """

    name: str  # --data-format and the study config's `loader`
    description: str  # one line: the files it reads; language, task
    load: Callable[..., Any]
    generic: bool = False  # takes --columns/--language/--task (jsonl, csv); else they are fixed
    task: str | None = None  # fixed task (None for generic formats)
    language: str | None = None  # fixed language (None for generic formats)
    labels: int | None = None  # classes in the published corpus, for study planning before reading it
    sizes: tuple[int, int] | None = None  # (train, test) examples of the published corpus, for planning


@dataclass(frozen=True)
class Builtin:
    """A dataset built offline into a cached pool (`engine.datasets.registry.build_builtin`)."""

    name: str  # --dataset and the study config's `builtin`
    description: str
    task: str
    language: str
    default_size: int
    size_help: str  # what --dataset-size counts
    key: Callable[[int], dict[str, Any]]  # size -> everything the pool depends on (the cache key)
    build: Callable[..., tuple[list, list[str], dict[str, Any]]]  # (size, progress) -> records, label names, facts
    unit: str  # what a progress step counts
