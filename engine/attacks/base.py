"""The attack framework: what every search is given, what it may call, what it returns.

An attack is composed of replaceable parts (the way TextAttack composes recipes):

- a **substitute source** proposes new names for a variable (`SubstituteSource`);
- **constraints** say whether a rename is admissible (`AttackContext.admissible`, which is the
  language layer's `validate`: valid identifier, not a keyword/builtin, not already anywhere in
  the program, not given to two variables; clean re-parse is guaranteed by span substitution
  and verified once on the final program by the runner's validity check);
- the **goal** is untargeted: success when the predicted label differs from the true label
  (`AttackContext.is_success`); examples the victim already gets wrong are skipped by the
  runner, so the true label is also the original prediction;
- a **search** (`Search.attack(ctx) -> Outcome`) decides which candidates to query.

The runner (`engine/attacks/runner.py`) builds one `AttackContext` per example: one parse
(`Extraction`), one `Renamer`, an RNG seeded from (run seed, example id) so results never
depend on order or sharding, and a budgeted, counted query function. Searches never call the
victim directly and never parse candidates: a candidate is a rename mapping, rendered by span
substitution, or a finished program text (structure rewrites).

Query accounting. `queries` counts candidate programs evaluated, cache hits included (the
number papers report); the original program's query, made by the runner before the search,
counts too, so `budget` bounds *everything* spent on an example. Forward passes (unique
programs run through the model) come from `victim.counters()`.

Budget semantics (explicit, the same for every recipe):

- `ctx.query(candidates)` evaluates the first `min(len(candidates), ctx.remaining)` candidates
  in ONE victim call and returns their probability rows, so the result may be **shorter than
  the input**; it then sets `ctx.exhausted = True`. A search must treat a short result as
  "budget spent": check the rows it got (a success among them counts) and stop.
- Calling `ctx.query` with a non-empty list when `ctx.remaining == 0` raises
  `BudgetExhausted`. The runner catches it and records the example as `failed` with the best
  candidate seen so far (`ctx.best`), so a search may also simply let it propagate.
- `ctx.query([])` returns an empty array and costs nothing.

Every evaluated candidate is also tracked by the context: `ctx.first_success` (the first
candidate, in query order, whose prediction differs from the true label) and `ctx.best` (the
candidate with the lowest true-label probability so far). Searches still return an `Outcome`;
the runner falls back to these only when the search raised `BudgetExhausted`.

Flips are checked. The name rules above are checked on every candidate without parsing it, and
they can disagree with what a parse of the renamed program finds: a name the rules admit that
the extraction treats differently (one ALERT "success" in 6,227 renamed a gcjpy module variable
to `___`, which the extraction took for a dunder until the two shared one rule), or, in a
program with parse errors, a name that changes how the parser recovers. So a candidate whose prediction differs from the true label is parsed once and checked: a rename
must be alpha-equivalent to the original (`check_rename`), a structure rewrite must not add
parse errors. One that fails is *rejected*: the query is spent, but its row is replaced by the
original program's row, so no search takes it as a success or as progress, and the reason is
kept (`ctx.rejected_flips`, written to the run's extras). The cost is one parse per flip, not
per query.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from engine.code import CodeInputError, Extraction, Renamer, check_rename, extract, validate
from engine.code.rename import pair_rejection
from engine.datasets.base import Example
from engine.splice import EditedCode

Code = str | tuple[str, str]


class BudgetExhausted(Exception):
    """`ctx.query` was called with candidates after the per-example budget was spent."""


# --------------------------------------------------------------------------- candidates and outcomes


@dataclass(frozen=True)
class Candidate:
    """A candidate program that is more than a rename of the original (CODA's structure rewrites).

    `code` is the full text of the attacked side; `mapping` the renames it carries, in terms of
    the ORIGINAL program's variable names ({} for a pure rewrite); `structure_edits` how many
    semantics-preserving rewrites were applied to get it. A plain rename candidate is just a
    `dict` (old -> new), and a bare `str` is treated as `Candidate(code=str)`.
    """

    code: str
    mapping: Mapping[str, str] = field(default_factory=dict)
    structure_edits: int = 0
    extras: Mapping[str, Any] = field(default_factory=dict)


CandidateLike = Mapping[str, str] | str | Candidate


@dataclass
class Evaluated:
    """One evaluated candidate: what was run, and the victim's probability row for it."""

    candidate: Candidate
    probs: np.ndarray  # num_labels probabilities

    @property
    def label(self) -> int:
        return int(np.argmax(self.probs))


@dataclass
class Outcome:
    """What a search returns for one example.

    - `success`: the final program's predicted label differs from the true label;
    - `mapping`: the final rename map {original name: new name} ({} when nothing was renamed);
    - `code`: the final adversarial program (attacked side only), None when the search produced
      none (e.g. no admissible candidate at all);
    - `probs`: the victim's probability row for `code` (None with `code`);
    - `structure_edits`: rewrites applied (CODA), 0 for pure renames;
    - `reason`: for a failure, why the search stopped (e.g. "budget exhausted", "iterations
      done", "no admissible candidate"); None on success;
    - `extras`: per-recipe facts worth keeping (e.g. {"stage": "greedy"|"ga"}, acceptance
      counts); written to the run's `extras.jsonl` side file, not to the schema record.
    """

    success: bool
    mapping: dict[str, str]
    code: str | None
    probs: np.ndarray | None
    structure_edits: int = 0
    reason: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_evaluated(cls, ctx: AttackContext, item: Evaluated | None, reason: str | None = None,
                       **extras: Any) -> Outcome:
        """The outcome for an evaluated candidate (None: nothing was produced)."""
        if item is None:
            return cls(False, {}, None, None, reason=reason or "no admissible candidate", extras=extras)
        success = ctx.is_success(item.probs)
        return cls(success, dict(item.candidate.mapping), item.candidate.code, item.probs,
                   item.candidate.structure_edits, None if success else reason, extras)


# --------------------------------------------------------------------------- the victim seen by a search


class VictimLike(Protocol):
    """What the framework needs from a victim (`engine.victim.Victim` satisfies it).

    Tests may pass any object with these members (e.g. a stand-in whose probabilities depend
    on whether one identifier is present).
    """

    num_labels: int
    max_length: int

    def predict_proba(self, codes: Sequence[Code]) -> np.ndarray: ...

    def embed(self, codes: Sequence[Code]) -> np.ndarray: ...  # one vector per program, counted as queries

    def counters(self): ...  # an object with .queries, .forward_passes, .victim_seconds, .model_seconds


def example_rng(seed: int, example_id: Any, *more: Any) -> np.random.Generator:
    """A generator that depends only on the run seed and the example id (not order, not shard), and
    on any further keys (robust training draws per epoch: `example_rng(seed, "epoch", 3, example_id)`)."""
    digest = hashlib.sha256("\x00".join(str(key) for key in (example_id, *more)).encode("utf-8")).digest()
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


# --------------------------------------------------------------------------- the per-example context


class AttackContext:
    """Everything a search may use for one example. Built by the runner; see the module docstring.

    Attributes
    ----------
    example: the dataset `Example` (its `meta` may hold `substitutes`, tests, ...).
    code: the attacked program (for pairs, the attacked side).
    side: None for single programs, "first" or "second" for pairs.
    language: "c" | "java" | "python".
    extraction, renamer: the one parse of `code` and its span renamer.
    true_label: the ground-truth label (== the original prediction: misclassified examples are skipped).
    variables: the renameable identifier names, in program order.
    rng: numpy Generator seeded from (run seed, example id).
    budget: maximum queries for this example, the original program's included (None: unlimited).
    original_probs: the victim's row for the unmodified input (queried by the runner, counted).
    hidden_from: for an input longer than the model's window, the character offset (in
        `renamer.text`) of the first renameable occurrence the model does not read; None when it
        reads them all. `variables` then holds only variables with an occurrence before it
        (`engine.attacks.window`).
    """

    def __init__(self, *, example: Example, code: str, language: str, extraction: Extraction,
                 true_label: int, victim: VictimLike, rng: np.random.Generator, budget: int | None,
                 side: str | None = None, queries_used: int = 0,
                 original_probs: np.ndarray | None = None, renamer: Renamer | None = None) -> None:
        self.example = example
        self.code = code
        self.side = side
        self.language = language
        self.extraction = extraction
        self.renamer = renamer or Renamer(extraction)
        self.true_label = int(true_label)
        self.variables: list[str] = list(extraction.identifiers)
        self.rng = rng
        self.budget = budget
        self.victim = victim
        self.queries_used = int(queries_used)
        self.exhausted = budget is not None and queries_used >= budget
        self.original_probs = original_probs
        self.first_success: Evaluated | None = None
        self.best: Evaluated | None = None
        self.hidden_from: int | None = None
        self.rejected_flips: list[str] = []  # why each flipping candidate was not a valid program
        self._flip_verdicts: dict[str, str | None] = {}  # program text -> why it is invalid (None: valid)

    # ------------------------------------------------------------------ budget and queries

    @property
    def remaining(self) -> int | None:
        """Queries left for this example (None: unlimited)."""
        return None if self.budget is None else max(0, self.budget - self.queries_used)

    def full_input(self, code: str) -> Code:
        """The victim input for an attacked-side program: the pair with the other side kept as is."""
        if self.side is None:
            return code
        first, second = self.example.code  # type: ignore[misc]
        return (code, second) if self.side == "first" else (first, code)

    def render(self, candidate: CandidateLike) -> Candidate:
        """A mapping (span substitution on the original, no parse) or a text, as a `Candidate`."""
        if isinstance(candidate, Candidate):
            return candidate
        if isinstance(candidate, str):
            return Candidate(code=candidate)
        mapping = {old: new for old, new in candidate.items() if new != old}
        # The text carries its edits, so the victim re-tokenizes only around them (engine.splice).
        return Candidate(code=EditedCode(self.renamer.text, self.renamer.edits(mapping)), mapping=mapping)

    def query(self, candidates: Sequence[CandidateLike], *, probe: bool = False) -> np.ndarray:
        """Probability rows (len ≤ len(candidates)) × num_labels, from ONE victim call.

        Evaluates at most `remaining` candidates (see the module docstring for the exact budget
        rules); raises `BudgetExhausted` when called with candidates and no budget left.
        `probe=True` marks inputs that are not adversarial candidates (e.g. the importance
        ranking's masked programs): they cost queries like any other but are never taken as
        `first_success` or `best`.
        """
        return self._evaluate(candidates, probe)[1]

    def query_candidates(self, candidates: Sequence[CandidateLike]) -> list[Evaluated]:
        """Like `query`, returning `Evaluated` items (candidate + row) for the evaluated prefix."""
        rendered, rows = self._evaluate(candidates)
        return [Evaluated(c, row) for c, row in zip(rendered, rows)]

    def embed(self, codes: Sequence[str]) -> np.ndarray:
        """The victim's embedding (`Victim.embed`) of each program, charged to the budget like `query`.

        One query per program, in ONE victim call; the same budget rules as `query`: at most
        `remaining` programs are embedded (the result may be shorter, and `exhausted` is set),
        and `BudgetExhausted` is raised when called with programs and no budget left. Recipes
        read the model only through `query` and `embed`, so `queries` bounds everything they spend.
        """
        if not codes:
            return np.zeros((0, 0), dtype=np.float32)
        codes = self._affordable(codes)
        vectors = np.asarray(self.victim.embed(list(codes)), dtype=np.float32)
        self.queries_used += len(codes)
        return vectors

    def _affordable(self, items: Sequence) -> Sequence:
        """The prefix of `items` the budget allows (setting `exhausted` when it takes the rest);
        `BudgetExhausted` when nothing is left. `items` is not empty."""
        left = self.remaining
        if left is None:
            return items
        if left == 0:
            self.exhausted = True
            raise BudgetExhausted(f"example {self.example.id}: budget of {self.budget} queries spent")
        if len(items) >= left:
            self.exhausted = True
            return items[:left]
        return items

    def _evaluate(self, candidates: Sequence[CandidateLike], probe: bool = False) -> tuple[list[Candidate], np.ndarray]:
        """(the rendered evaluated prefix, its probability rows); only that prefix is rendered."""
        if not candidates:
            return [], np.zeros((0, self.victim.num_labels))
        rendered = [self.render(c) for c in self._affordable(candidates)]
        probs = np.asarray(self.victim.predict_proba([self.full_input(c.code) for c in rendered]), dtype=np.float64)
        self.queries_used += len(rendered)
        if not probe:
            self._reject_invalid_flips(rendered, probs)
            self._track(rendered, probs)
        return rendered, probs

    def _reject_invalid_flips(self, rendered: list[Candidate], probs: np.ndarray) -> None:
        """Replace, in place, the row of every flipping candidate that is not a valid program by
        the original's row (see "Flips are checked" in the module docstring)."""
        for i in np.flatnonzero(probs.argmax(axis=1) != self.true_label):
            reason = self.flip_invalid_reason(rendered[i])
            if reason is None:
                continue
            self.rejected_flips.append(reason)
            if self.original_probs is not None:
                probs[i] = self.original_probs
            else:  # a context built without the original's row: the true label, certain
                probs[i] = np.eye(probs.shape[1])[self.true_label]

    def flip_invalid_reason(self, candidate: Candidate) -> str | None:
        """Why `candidate` is not the original program renamed (or validly rewritten); None when it is."""
        code = str(candidate.code)
        if code in self._flip_verdicts:
            return self._flip_verdicts[code]
        try:
            if candidate.mapping and not candidate.structure_edits:
                checked = check_rename(self.extraction, code, candidate.mapping)
                reason = None if checked.parses and checked.alpha_equivalent else (
                    "not alpha-equivalent: " + "; ".join(checked.reasons[:2]))
            else:
                errors = extract(code, self.language).parse_errors
                reason = (None if errors <= self.extraction.parse_errors else
                          f"{errors} parse errors, the original has {self.extraction.parse_errors}")
        except CodeInputError as err:
            reason = f"does not parse: {err}"
        self._flip_verdicts[code] = reason
        return reason

    def _track(self, rendered: list[Candidate], probs: np.ndarray) -> None:
        labels = probs.argmax(axis=1)
        if self.first_success is None:
            flips = np.flatnonzero(labels != self.true_label)
            if flips.size:
                i = int(flips[0])
                self.first_success = Evaluated(rendered[i], probs[i])
        i = int(np.argmin(probs[:, self.true_label]))
        if self.best is None or probs[i, self.true_label] < self.best.probs[self.true_label]:
            self.best = Evaluated(rendered[i], probs[i])

    # ------------------------------------------------------------------ goal

    def is_success(self, probs: np.ndarray) -> bool:
        """Untargeted goal: the predicted label of a probability row differs from the true label."""
        return int(np.argmax(probs)) != self.true_label

    def successes(self, rows: np.ndarray) -> np.ndarray:
        """Indices of rows whose predicted label differs from the true label."""
        return np.flatnonzero(rows.argmax(axis=1) != self.true_label) if len(rows) else np.zeros(0, dtype=int)

    # ------------------------------------------------------------------ constraints

    def name_ok(self, variable: str, new: str) -> str | None:
        """Mapping-independent checks for `variable -> new`; None when allowed, else the reason
        (the language layer's rules: `engine.code.rename.pair_rejection`)."""
        return pair_rejection(self.extraction, variable, new)

    def admissible(self, variable: str, new: str, mapping: Mapping[str, str] | None = None) -> str | None:
        """Whether renaming `variable -> new` on top of `mapping` is allowed: None, or the reason.

        `mapping` is the current rename map (original names -> new names); `new` must also not be
        given to another variable in it. Equivalent to `validate(extraction, mapping | {variable: new})`
        restricted to this pair.
        """
        reason = self.name_ok(variable, new)
        if reason is None and mapping:
            for old, taken in mapping.items():
                if taken == new and old != variable:
                    return f"{new!r} is also given to {old}"
        return reason

    def filter_names(self, variable: str, names: Sequence[str], mapping: Mapping[str, str] | None = None,
                     limit: int | None = None) -> list[str]:
        """The admissible, distinct names of `names` for `variable` (in order, at most `limit`)."""
        kept: list[str] = []
        seen: set[str] = set()
        for name in names:
            name = name.strip()
            if name in seen or self.admissible(variable, name, mapping) is not None:
                continue
            seen.add(name)
            kept.append(name)
            if limit is not None and len(kept) >= limit:
                break
        return kept

    def validate(self, mapping: Mapping[str, str]) -> list:
        """The language layer's full `validate` of a whole mapping (list of `Rejection`, [] when valid)."""
        return validate(self.extraction, mapping)

    # ------------------------------------------------------------------ facts

    @property
    def original_true_probability(self) -> float:
        assert self.original_probs is not None
        return float(self.original_probs[self.true_label])

    def occurrences(self, variable: str) -> int:
        return len(self.extraction.identifiers[variable].spans)


# --------------------------------------------------------------------------- substitute sources


@runtime_checkable
class SubstituteSource(Protocol):
    """Proposes new names for a variable: `candidates(ctx, variable, n) -> list[str]`.

    Returns at most `n` distinct names that pass `ctx.name_ok(variable, name)` (syntax,
    keywords, builtins, not already in the program), best first when the source ranks them.
    Mapping-dependent constraints (a name already given to another variable in the current
    map) are the search's job: `ctx.admissible(variable, name, mapping)` / `ctx.filter_names`.
    Randomness must come from `ctx.rng` only. Fewer than `n` (or none) is allowed.
    Implementations: `engine.attacks.sources.RandomNamePool` (original MHM, WIR-Random, random
    baseline), `engine.attacks.sources.PrecomputedSubstitutes` (a dataset's `substitutes`
    field, or a table loaded from a file), `engine.attacks.substitutes` (masked-LM natural
    substitutes; part B).
    """

    name: str

    def candidates(self, ctx: AttackContext, variable: str, n: int) -> list[str]: ...


# --------------------------------------------------------------------------- searches and recipes


@runtime_checkable
class Search(Protocol):
    """A search: `attack(ctx) -> Outcome`. Built once per run by a recipe builder; `attack` is
    called once per example with a fresh context and must not keep per-example state between
    calls (results must not depend on order or sharding)."""

    name: str

    def attack(self, ctx: AttackContext) -> Outcome: ...


@dataclass
class AttackEnvironment:
    """Run-level resources a recipe builder may use (built once per run by the command).

    - `dataset`: the loaded `Dataset` (all splits: CODA's references and the random-name pool
      use the train split, never the attacked split);
    - `victim`: the victim (for run-level preparation such as reference embeddings, through
      `predict_proba` and `embed` only; queries made here are counted by the victim but charged
      to no example, and must be reported by the recipe in its extras / docs);
    - `language`, `seed`, `split`;
    - `substitutes`: the `--substitutes` value (None, "dataset", or a path);
    - `natural_substitutes`: a callable returning the natural-substitute `SubstituteSource`
      (dataset field, precomputed file, or part B's masked-LM source); ALERT and MHM-NS use it;
    - `name_pool`: a callable returning the random-name `SubstituteSource`.
    """

    dataset: Any
    victim: VictimLike
    language: str
    seed: int
    split: str = "test"
    substitutes: str | None = None
    natural_substitutes: Callable[[], SubstituteSource] | None = None
    name_pool: Callable[[], SubstituteSource] | None = None



# --------------------------------------------------------------------------- helpers shared by searches


def try_names(ctx: AttackContext, variable: str, names: Sequence[str],
              mapping: Mapping[str, str] | None = None, limit: int | None = None) -> list[Evaluated]:
    """Query `mapping | {variable: name}` for the first `limit` admissible names of `names`, in ONE batch.

    Inadmissible names (`ctx.admissible` against `mapping`, and the variable's current name) are
    dropped before querying, so nothing is spent on them; the result may be shorter when the
    budget runs out (see `query`). Sources may be asked for `n + len(mapping)` names so that
    `limit=n` admissible ones remain after names taken by other variables are dropped.
    """
    mapping = dict(mapping or {})
    names = [name for name in names if name != mapping.get(variable)]
    names = ctx.filter_names(variable, names, mapping, limit)
    return ctx.query_candidates([{**mapping, variable: name} for name in names])


def strongest_flip(ctx: AttackContext, evaluated: Sequence[Evaluated]) -> Evaluated | None:
    """Among evaluated candidates that flip the label, the one with the lowest true-label probability."""
    flips = [item for item in evaluated if ctx.is_success(item.probs)]
    return min(flips, key=lambda item: item.probs[ctx.true_label]) if flips else None


def lowest(ctx: AttackContext, evaluated: Sequence[Evaluated]) -> Evaluated | None:
    """The evaluated candidate with the lowest true-label probability (first on ties)."""
    return min(evaluated, key=lambda item: item.probs[ctx.true_label]) if evaluated else None
