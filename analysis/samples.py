"""Say in the report when the attacked examples are a sample, and of what.

`engine attack --sample N` (and `engine study` with `examples_per_cell`) records in each run
manifest `dataset.sample = {"size", "of", "stratified_by"}`: the run attacked a label-stratified
sample of `size` of the first `of` examples of its split. A report on such runs must not read
as the full design, so every distinct sample becomes one note.
"""
from __future__ import annotations

from typing import Any


def sample_notes(manifests: dict[str, dict[str, Any]]) -> list[str]:
    samples: dict[tuple[str, str, int, int, str], int] = {}
    for manifest in manifests.values():
        dataset = (manifest or {}).get("dataset") or {}
        sample = dataset.get("sample")
        if not isinstance(sample, dict) or not isinstance(sample.get("size"), int):
            continue
        key = (str(dataset.get("name")), str(dataset.get("split")), sample["size"], int(sample.get("of") or 0),
               str(sample.get("stratified_by") or "label"))
        samples[key] = samples.get(key, 0) + 1
    return [f"A sample, not the full design: {runs} attack run(s) on {name} attacked a {by}-stratified sample of "
            f"{size:,} of the {of:,} {split} examples the design attacks; rates and tests describe that sample."
            for (name, split, size, of, by), runs in sorted(samples.items())]
