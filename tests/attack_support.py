"""Stand-in victims and datasets for attack tests (no model, exact and instant).

`KeyVictim` believes label 0 exactly when the word `key` occurs in the program, so renaming
the variable `key` defeats it and nothing else does; `ConstantVictim` ignores its input, so no
attack can ever defeat it. Both count queries, cache hits and forward passes like the real
`Victim` (an exact-input cache), so budget and accounting tests are exact. Their `embed` (what
CODA compares programs by) is a hashed bag of tokens, counted like `Victim.embed`.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, fields

import numpy as np

from engine.datasets.base import Dataset, Example


@dataclass(frozen=True)
class Counters:
    """What the runner reads from `victim.counters()` (the real `VictimCounters` needs torch)."""

    queries: int = 0
    forward_passes: int = 0
    victim_seconds: float = 0.0
    embeddings: int = 0

    def __sub__(self, other):
        return Counters(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))


class StubVictim:
    num_labels = 2
    max_length = 10_000

    def __init__(self, delay_s: float = 0.0) -> None:
        self._cache: dict = {}
        self._counters = Counters()
        self.delay_s = delay_s
        self.name = type(self).__name__

    def row(self, code: str) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, codes):
        started = time.perf_counter()
        rows, fresh = [], 0
        for code in codes:
            text = code if isinstance(code, str) else "\n".join(code)
            if text not in self._cache:
                self._cache[text] = self.row(text)
                fresh += 1
            rows.append(self._cache[text])
        if self.delay_s:
            time.sleep(self.delay_s * fresh)
        c = self._counters
        self._counters = Counters(c.queries + len(codes), c.forward_passes + fresh,
                                  c.victim_seconds + time.perf_counter() - started, c.embeddings)
        return np.array(rows, dtype=np.float64).reshape(len(codes), self.num_labels)

    def embed(self, codes):
        """A bag-of-tokens vector per program, hashed into 256 buckets; one query each."""
        vectors, fresh = [], 0
        for code in codes:
            key = ("embed", code)
            if key not in self._cache:
                self._cache[key] = hashed_bag(code)
                fresh += 1
            vectors.append(self._cache[key])
        c = self._counters
        self._counters = Counters(c.queries + len(codes), c.forward_passes + fresh, c.victim_seconds,
                                  c.embeddings + len(codes))
        return np.array(vectors, dtype=np.float32).reshape(len(codes), 256)

    def counters(self) -> Counters:
        return self._counters


def hashed_bag(text: str, dims: int = 256) -> np.ndarray:
    vector = np.zeros(dims, dtype=np.float32)
    for token in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S", text):
        vector[int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little") % dims] += 1.0
    return vector


class KeyVictim(StubVictim):
    """p(label 0) = 0.2 + 0.35 × min(occurrences of the word `key`, 2): 0.9 with two, 0.55 with one
    (still label 0), 0.2 with none; a little graded by length so candidates differ."""

    def __init__(self, key: str = "secret", **kwargs) -> None:
        super().__init__(**kwargs)
        self.pattern = re.compile(rf"\b{re.escape(key)}\b")

    def row(self, code: str) -> np.ndarray:
        p0 = 0.2 + 0.35 * min(len(self.pattern.findall(code)), 2)
        p0 -= (len(code) % 7) * 1e-3  # candidates differ slightly, so "lowest" is well defined
        return np.array([p0, 1 - p0])


class FunctionNameVictim(StubVictim):
    """Label 1 exactly for functions named h…: renames (variables only) and rewrites can never change it."""

    def row(self, code: str) -> np.ndarray:
        p0 = 0.1 if re.search(r"\bdef h", code) else 0.9
        p0 -= (len(code) % 7) * 1e-3
        return np.array([p0, 1 - p0])


class ConstantVictim(StubVictim):
    def row(self, code: str) -> np.ndarray:
        return np.array([0.9, 0.1])


class HashVictim(StubVictim):
    """A deterministic pseudo-random p(label 0) in [0.6, 0.95] per program: never flips, always differs."""

    def row(self, code: str) -> np.ndarray:
        import hashlib

        h = int.from_bytes(hashlib.sha256(code.encode()).digest()[:4], "big") / 2**32
        p0 = 0.6 + 0.35 * h
        return np.array([p0, 1 - p0])


PROGRAMS = [
    "def f{i}(data, secret):\n    total = 0\n    for item in data:\n        total += item * secret\n    return total\n",
    "def g{i}(values, secret, limit):\n    kept = [v for v in values if v < limit]\n    return len(kept) + secret\n",
    "def h{i}(secret):\n    count = secret\n    while count > 0:\n        count -= 1\n    return count\n",
]


def key_dataset(n: int = 6, extra: list[Example] | None = None, name: str = "keyset") -> Dataset:
    """Python programs, all label 0, each with a variable `secret` and others; plus `extra` examples."""
    examples = [Example(id=f"ex{i:02d}", code=PROGRAMS[i % len(PROGRAMS)].format(i=i), label=0, language="python")
                for i in range(n)]
    examples += extra or []
    train = [Example(id=f"tr{i}", code=PROGRAMS[i % 3].format(i=100 + i).replace("secret", f"arg{i}"), label=i % 2,
                     language="python") for i in range(6)]
    return Dataset(name=name, task="classification", language="python", label_names=["a", "b"],
                   splits={"train": train, "test": examples})


def with_references(dataset: Dataset, n: int = 6) -> Dataset:
    """More label-1 train programs named h… (no `secret`, five variables), so that CODA finds
    references of the other label with names the targets lack."""
    extra = [Example(f"ref{i}", f"def h_r{i}(alpha{i}, beta{i}, gamma{i}, delta{i}, eps{i}):\n"
                     f"    zeta{i} = alpha{i} + beta{i}\n    return zeta{i} * gamma{i} - delta{i} + eps{i}\n",
                     1, "python") for i in range(n)]
    dataset.splits["train"] = dataset.splits["train"] + extra
    return dataset
