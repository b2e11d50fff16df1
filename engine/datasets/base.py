"""What an example and a dataset are, for every loader and every consumer.

An example's `code` is one program, or a pair of programs for clone detection. Labels are
integers `0..len(label_names)-1`; loaders map whatever the file holds onto that range and
keep the mapping in the manifest, so a report can print names instead of numbers.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

Code = str | tuple[str, str]

TASKS = ("defect", "clone", "authorship", "classification")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Example:
    id: str
    code: Code
    label: int
    language: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_pair(self) -> bool:
        return isinstance(self.code, tuple)


@dataclass
class Dataset:
    """A named, fingerprinted set of splits; the fingerprint keys every cache built from it."""

    name: str
    task: str
    language: str
    label_names: list[str]
    splits: dict[str, list[Example]]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> list[Example]:
        if name not in self.splits:
            raise KeyError(f"dataset {self.name!r} has no split {name!r}; it has {', '.join(self.splits)}")
        return self.splits[name]

    @property
    def fingerprint(self) -> str:
        """Content hash of every example (id, code, label) in every split, and the label names."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.name, self.task, self.language, self.label_names]).encode())
        for split in sorted(self.splits):
            digest.update(split.encode())
            for ex in self.splits[split]:
                digest.update(json.dumps([ex.id, ex.code, ex.label]).encode())
        return digest.hexdigest()[:16]
