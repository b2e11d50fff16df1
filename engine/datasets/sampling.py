"""A label-stratified sample of examples that every stage draws identically.

`engine attack --sample N` and `engine substitutes --sample N` (and `engine study` with
`examples_per_cell`) attack a sample of a split instead of all of it. The sample must be the
same in every cell of a study — the original model and its compressed variants are compared on
the same examples, pairwise — and in the substitutes stage that prepares them, so it is drawn
without a random generator or any state: within each label, examples are ordered by a hash of
their id and the first ones are taken. Labels get seats in proportion to their share of the
population (largest remainders, ties to the smaller label), so the sample's label mix is the
population's to within one example per label. The result keeps the population's order.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def id_rank(example_id: str) -> bytes:
    return hashlib.sha256(f"sample:{example_id}".encode("utf-8")).digest()


def allocate(counts: dict[int, int], size: int) -> dict[int, int]:
    """Seats per label for a sample of `size` from a population with these label counts."""
    total = sum(counts.values())
    if size >= total:
        return dict(counts)
    quotas = {label: size * count / total for label, count in counts.items()}
    seats = {label: int(quota) for label, quota in quotas.items()}
    left = size - sum(seats.values())
    for label in sorted(quotas, key=lambda lab: (-(quotas[lab] - seats[lab]), lab))[:left]:
        seats[label] += 1
    return seats


def stratified_sample(examples: Sequence[T], size: int) -> list[T]:
    """`size` of `examples` (objects with `.id` and `.label`), stratified by label; see the module docstring."""
    if size < 1:
        raise ValueError(f"a sample needs at least one example, got {size}")
    by_label: dict[int, list[T]] = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    seats = allocate({label: len(group) for label, group in by_label.items()}, size)
    chosen = set()
    for label, group in by_label.items():
        for example in sorted(group, key=lambda e: id_rank(str(e.id)))[:seats[label]]:
            chosen.add(id(example))
    return [example for example in examples if id(example) in chosen]
