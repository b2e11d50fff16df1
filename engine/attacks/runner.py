"""Run a search over a dataset split: one context per example, one record per example, resumable.

For each selected example (`--n` first of the split, then `--sample N` of those stratified by
label (`engine.datasets.sampling`), then `--shard K/N` by a hash of the example id) the runner:

1. checks the input (empty, undecodable, unparseable: status `error` with a reason, never a
   crash), parses the attacked side once, and measures what of it the model reads: a program
   longer than the model's window is attacked as the model reads it (`truncated: true` in the
   record, with both token counts; only its variables with an occurrence the model reads are
   given to the search, `window.py`), or recorded as `error` with `--too-long error`;
2. queries the original (1 query, charged to the example's budget) and skips examples the
   victim already gets wrong (`skipped_misclassified`) or with nothing to rename
   (`skipped_no_identifiers`);
3. builds the `AttackContext` (RNG from run seed + example id) and calls `search.attack(ctx)`;
4. checks the final program's validity once (`validity.py`), measures token changes, and
   appends the record (flushed) with the victim's query / forward-pass / time counters.

`--resume` skips example ids already in the records file (a partial last line is cut off);
`--transfer-from` replays the adversarial programs of another run on this victim.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.attacks.base import AttackContext, BudgetExhausted, Outcome, Search, VictimLike, example_rng
from engine.attacks.records import RecordWriter, read_records, records_name, summarize, summary_table, write_text
from engine.attacks.validity import ValidityChecker
from engine.attacks.window import Window, measure, restrict_to_window
from engine.code import CodeInputError, Extraction, extract
from engine.datasets.base import Dataset, Example
from engine.cli_base import parse_k_of_n
from engine.errors import UserError
from engine.locks import exclusive
from engine.common.logschema import FIELD_NAMES, SCHEMA_VERSION

SIDES = ("first", "second", "both")
TOO_LONG = ("attack", "error")  # attack the truncated view (default), or record an error (strict runs)


@dataclass
class RunOptions:
    """Engineering and bookkeeping options of a run (the algorithm's are the recipe's params)."""

    attack: str
    params: Any = None
    attack_name: str | None = None  # the record's attack_name: one recipe run in several configurations
    seed: int = 0
    budget: int | None = None  # max queries per example, the original's included; None: the recipe's own limits
    split: str = "test"
    n: int | None = None
    sample: int | None = None  # a label-stratified sample of this many of the first n
    shard: tuple[int, int] | None = None
    attack_side: str = "first"
    resume: bool = False
    overwrite: bool = False
    max_parse_errors: int | None = None  # None: programs with parse errors are attacked (validity is relative)
    too_long: str = "attack"
    compile_check: bool = True
    tests_check: bool = True
    progress: bool | None = None
    fail_fast: bool = False
    substitutes: str | None = None
    interleave: int = 1  # examples attacked together, their victim calls merged (engine.attacks.interleave)
    extra_manifest: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.budget is not None and self.budget < 1:
            raise UserError(f"--budget must be at least 1 (the original program's query), got {self.budget}")
        if self.n is not None and self.n < 1:
            raise UserError(f"--n must be at least 1, got {self.n}")
        if self.sample is not None and self.sample < 1:
            raise UserError(f"--sample must be at least 1, got {self.sample}")
        if self.attack_side not in SIDES:
            raise UserError(f"--attack-side {self.attack_side!r}: use one of {', '.join(SIDES)}")
        if self.too_long not in TOO_LONG:
            raise UserError(f"--too-long {self.too_long!r}: use one of {', '.join(TOO_LONG)}")
        if self.interleave < 1:
            raise UserError(f"--interleave must be at least 1, got {self.interleave}")


# --------------------------------------------------------------------------- selection


def parse_shard(text: str | None) -> tuple[int, int] | None:
    return parse_k_of_n(text, "--shard")


def shard_of(example_id: str, count: int) -> int:
    """The shard (1-based) an example id belongs to: a hash, so it never depends on order."""
    return int.from_bytes(hashlib.sha256(str(example_id).encode("utf-8")).digest()[:8], "big") % count + 1


def select_examples(examples: Sequence[Example], n: int | None, shard: tuple[int, int] | None,
                    sample: int | None = None) -> list[Example]:
    chosen = list(examples[:n] if n is not None else examples)
    ids = [e.id for e in chosen]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"example id {duplicate!r} occurs twice in the split: records are keyed by id")
    if sample is not None:
        from engine.datasets.sampling import stratified_sample

        chosen = stratified_sample(chosen, sample)
    if shard is not None:
        chosen = [e for e in chosen if shard_of(e.id, shard[1]) == shard[0]]
    return chosen


# --------------------------------------------------------------------------- tokens


def token_texts(extraction: Extraction) -> list[str]:
    source = extraction.source
    texts = []
    for start, end, _type in extraction.tokens:
        text = source[start:end]
        if text.strip():
            texts.append(text.decode("utf-8", "surrogateescape"))
    return texts


def token_edit_distance(a: list[str], b: list[str]) -> int:
    """Token-level Levenshtein distance of two token-text sequences (interned to ids for the kernel)."""
    vocabulary: dict[str, int] = {}
    ids_a = np.fromiter((vocabulary.setdefault(t, len(vocabulary)) for t in a), dtype=np.int64, count=len(a))
    ids_b = np.fromiter((vocabulary.setdefault(t, len(vocabulary)) for t in b), dtype=np.int64, count=len(b))
    from engine.kernels import token_edit_distance as kernel  # numba: imported when first needed

    return kernel(ids_a, ids_b)


# --------------------------------------------------------------------------- the run


def model_info(path: str | os.PathLike | None, victim: VictimLike) -> dict[str, Any]:
    """The manifest's `model` block: what the model directory's manifest says, plus the victim options."""
    from engine.manifest import model_fingerprint, read_manifest

    manifest = (read_manifest(path) if path is not None and Path(path).is_dir() else None) or {}
    fingerprint = manifest.get("fingerprint") or (model_fingerprint(manifest["files"]) if manifest.get("files") else None)
    compression = dict(manifest.get("compression") or {})
    compression.setdefault("method", "none")
    return {
        "name": _model_name(path, manifest, compression, victim),
        "path": str(Path(path).resolve()) if path is not None else None,
        "fingerprint": fingerprint,
        "compression": compression,
        "size_mb": manifest.get("size_mb"),
        "parameters": manifest.get("parameters"),
        "nonzero_parameters": manifest.get("nonzero_parameters"),
        "latency_ms_batch1": manifest.get("latency_ms_batch1"),
        "throughput_per_s": manifest.get("throughput_per_s"),
        "test_metrics": manifest.get("test_metrics") or manifest.get("metrics"),
        "base": manifest.get("base"),
        "measurement": _parent_timing(manifest),
        "victim": victim.describe() if hasattr(victim, "describe") else {},
    }


def _parent_timing(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """A compressed variant's timing of its parent, measured side by side with itself: the only
    latency an original trained by `engine train` has (the report shows it for the original)."""
    parent = (manifest.get("measurement") or {}).get("parent")
    if not isinstance(parent, dict):
        return None
    return {"parent": {key: parent.get(key) for key in ("fingerprint", "latency_ms_batch1", "throughput_per_s")}}


def _model_name(path, manifest: dict[str, Any], compression: dict[str, Any], victim: VictimLike) -> str:
    """A short, readable model name for tables: the manifest's name, else the directory's name.

    A compressed variant's directory is often just its method (`variants/prune`), which says
    nothing once several base models are compressed, so it is prefixed by its parent's name.
    """
    if manifest.get("name"):
        return str(manifest["name"])
    if path is None:
        return str(getattr(victim, "name", "victim"))
    if not Path(path).is_dir():
        return str(path)  # a hub id such as microsoft/codebert-base
    name = Path(path).resolve().name
    parent = compression.get("parent_path")
    if compression.get("method", "none") != "none" and parent and name == compression["method"]:
        name = f"{Path(parent).name}-{name}"
    return name


def machine() -> dict[str, Any]:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}
    torch = sys.modules.get("torch")  # only when a real victim loaded it
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


class AttackRunner:
    """One run: a victim, a dataset, a search (or a transfer source) and an output directory.

    `context_factory` builds each example's context (`AttackContext`); `bench/attack.py` swaps in
    a naive one that re-parses every candidate, to measure what the design saves.
    """

    context_factory = AttackContext

    def __init__(self, *, victim: VictimLike, dataset: Dataset, options: RunOptions, out: str | os.PathLike,
                 search: Search | None = None, model: dict[str, Any] | None = None,
                 transfer_from: str | os.PathLike | None = None) -> None:
        options.check()
        self.victim = victim
        self.dataset = dataset
        self.options = options
        self.out = Path(out)
        self.search = search
        self.model = model or model_info(None, victim)
        self.transfer_from = Path(transfer_from) if transfer_from else None
        self.validity = ValidityChecker(compile=options.compile_check, tests=options.tests_check)
        self.records_path = self.out / records_name(options.shard)
        if search is None and self.transfer_from is None:
            raise ValueError("a run needs a search or a transfer source")

    # ------------------------------------------------------------------ manifest

    def manifest(self) -> dict[str, Any]:
        from engine.manifest import library_versions, utc_now

        o = self.options
        params = asdict(o.params) if o.params is not None and hasattr(o.params, "__dataclass_fields__") else o.params
        shard = {"index": o.shard[0], "count": o.shard[1]} if o.shard else {"index": 1, "count": 1}
        return {
            "schema_version": SCHEMA_VERSION,
            "created": utc_now(),
            "attack": {"name": o.attack, "label": o.attack_name, "params": params, "substitutes": o.substitutes,
                       "transfer_from": str(self.transfer_from) if self.transfer_from else None},
            "model": self.model,
            "dataset": {"name": self.dataset.name, "split": o.split, "fingerprint": self.dataset.fingerprint,
                        "task": self.dataset.task, "language": self.dataset.language,
                        "label_names": self.dataset.label_names, "n": o.n, "sample": self._sample_note()},
            "seed": o.seed,
            "budget": o.budget,
            "shard": shard,
            "attack_side": o.attack_side if self._pairs() else None,
            "options": {"max_parse_errors": o.max_parse_errors, "too_long": o.too_long,
                        "compile_check": o.compile_check, "tests_check": o.tests_check},
            "interleave": o.interleave,
            "records": self.records_path.name,
            "versions": library_versions(),
            "machine": machine(),
            **o.extra_manifest,
        }

    def _sample_note(self) -> dict[str, Any] | None:
        """What a sampled run is a sample of, for the report: size, population (the first n), stratification."""
        if self.options.sample is None:
            return None
        population = len(self.dataset.split(self.options.split)[:self.options.n])
        return {"size": min(self.options.sample, population), "of": population, "stratified_by": "label"}

    def _pairs(self) -> bool:
        return self.dataset.task == "clone" or any(e.is_pair for e in self.dataset.split(self.options.split)[:1])

    def _manifest_path(self) -> Path:
        shard = self.options.shard
        return self.out / ("manifest.json" if shard is None else f"manifest-{shard[0]}-of-{shard[1]}.json")

    _IDENTITY = ("attack", "model.fingerprint", "model.path", "dataset.fingerprint", "dataset.split", "seed",
                 "budget", "attack_side", "options")
    _NUMERICS = ("model.victim.batch_size", "model.victim.dtype", "model.victim.device", "model.victim.backend",
                 "interleave")

    def _prepare_output(self) -> set[str]:
        """Create or check the output directory; the example ids already recorded (with --resume)."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._refuse_other_sharding()
        manifest = self.manifest()
        path = self._manifest_path()
        done: set[str] = set()
        if self.records_path.exists() or path.exists():
            if self.options.overwrite:
                self.records_path.unlink(missing_ok=True)
                (self.out / self._extras_name()).unlink(missing_ok=True)
            elif not self.options.resume:
                held = " and ".join(p.name for p in (self.records_path, path) if p.exists())
                raise UserError(f"{self.out} already holds {held}; pass --resume to continue it "
                                f"or --overwrite to start again")
            else:
                if path.exists():
                    previous = json.loads(path.read_text(encoding="utf-8"))
                    current = json.loads(json.dumps(manifest, default=str))
                    identity = [k for k in self._IDENTITY  # the fingerprint identifies the model wherever it is
                                if not (k == "model.path" and _get(current, "model.fingerprint"))]
                    for key, was in _changed(previous, current, identity):
                        raise UserError(f"--resume: {path} was written with {key} = {json.dumps(was)}, this run has "
                                        f"{json.dumps(_get(current, key))}; use the same options or another --out")
                    for key, was in _changed(previous, current, self._NUMERICS):  # allowed, with a warning
                        print(f"warning: --resume: {path} was written with {key} = {json.dumps(was)}, this run has "
                              f"{json.dumps(_get(current, key))}; probabilities differ by float noise, so a search may "
                              "take another path at a near-tie (docs/attacks.md, Reproducibility)", file=sys.stderr)
                done = {str(r["example_id"]) for r in read_records(self.records_path, repair=True)}
                _drop_extras_not_in(self.out / self._extras_name(), done)
        write_text(path, json.dumps(manifest, indent=2, default=str) + "\n")
        if self.options.shard is not None and not (self.out / "manifest.json").exists():
            overall = dict(manifest, shard={"index": None, "count": self.options.shard[1]}, records="records-*-of-N.jsonl")
            write_text(self.out / "manifest.json", json.dumps(overall, indent=2, default=str) + "\n")
        return done

    def _refuse_other_sharding(self) -> None:
        """One directory, one way of sharding: shards of another count (or an unsharded run) cover
        the same examples again, and `analysis` would find them recorded twice."""
        mine = self.options.shard[1] if self.options.shard else 1
        for other in sorted(self.out.glob("records*.jsonl")):
            found = re.fullmatch(r"records-(\d+)-of-(\d+)\.jsonl", other.name)
            count = int(found.group(2)) if found else 1 if other.name == "records.jsonl" else None
            if count is not None and count != mine:
                theirs = "an unsharded run" if count == 1 else f"a run in {count} shards"
                ours = "unsharded" if mine == 1 else f"in {mine} shards"
                raise UserError(f"{self.out} holds {other.name}, from {theirs}; this run is {ours}, and shards of "
                                "different counts overlap. Use the same sharding as the records there, or another --out")

    def _lock_path(self) -> Path:
        return self.records_path.with_name(self.records_path.name + ".lock")

    def _extras_name(self) -> str:
        return self.records_path.name.replace("records", "extras", 1)

    # ------------------------------------------------------------------ the loop

    def run(self) -> dict[str, Any]:
        """Attack every selected example not yet recorded; returns the summary of the whole records file.

        The records file is locked while the run writes it: a second run into it (a retried
        study cell, a second --resume) stops with an error naming this one."""
        self.out.mkdir(parents=True, exist_ok=True)
        with exclusive(self._lock_path(), f"{self.records_path}"):
            return self._run()

    def _run(self) -> dict[str, Any]:
        done = self._prepare_output()
        if self.transfer_from is not None:
            todo = self._transfer_items(done)
        else:
            examples = select_examples(self.dataset.split(self.options.split), self.options.n, self.options.shard,
                                       self.options.sample)
            todo = [(e, None) for e in examples if str(e.id) not in done]
        bar = _bar(len(todo) + len(done), len(done), self.options.progress, self.options.attack)
        counts = {"success": 0, "attacked": 0}
        outcomes = self._outcomes(todo)
        with RecordWriter(self.records_path) as writer, RecordWriter(self.out / self._extras_name(), _json_default) as extras:
            for record, extra in outcomes:
                writer.write(record)
                if extra:
                    extras.write({"example_id": record["example_id"], **extra})
                if record["status"] in ("success", "failed"):
                    counts["attacked"] += 1
                    counts["success"] += record["status"] == "success"
                if bar is not None:
                    bar.update(1)
                    if counts["attacked"]:
                        bar.set_postfix(asr=f"{counts['success'] / counts['attacked']:.1%}", refresh=False)
        if bar is not None:
            bar.close()
        summary = summarize(read_records(self.records_path))
        summary_path = self._manifest_path().with_name(self._manifest_path().name.replace("manifest", "summary", 1))
        write_text(summary_path, json.dumps(summary, indent=2) + "\n")
        return summary

    def _outcomes(self, todo: list[tuple[Example, dict[str, Any] | None]]):
        """(record, extras) per item of `todo`, in order: one after the other, or `--interleave K` at a time."""
        jobs = [(lambda e=example, s=source: self.attack_example(e) if s is None else self.replay(e, s))
                for example, source in todo]
        if self.options.interleave > 1:
            from engine.attacks.interleave import interleaved

            return interleaved(self, jobs, self.options.interleave)
        return (job() for job in jobs)

    def print_summary(self, summary: dict[str, Any], stream=None) -> None:
        title = f"{self.options.attack} on {self.model['name']} ({self.dataset.name}, {self.options.split})"
        print(summary_table(summary, title), file=stream or sys.stdout)

    # ------------------------------------------------------------------ one example

    def _record(self, example: Example, code: str) -> dict[str, Any]:
        record = dict.fromkeys(FIELD_NAMES)
        record.update(
            schema_version=SCHEMA_VERSION, example_id=str(example.id), dataset=self.dataset.name,
            task=self.dataset.task, language=example.language, model=self.model["name"],
            compression=str(self.model["compression"].get("method", "none")), attack=self.options.attack,
            attack_name=self.options.attack_name, seed=self.options.seed, true_label=int(example.label),
            original_code=code,
        )
        return record

    def _sides(self, example: Example) -> list[str | None]:
        if not example.is_pair:
            return [None]
        return ["first", "second"] if self.options.attack_side == "both" else [self.options.attack_side]

    def attack_example(self, example: Example) -> tuple[dict[str, Any], dict[str, Any]]:
        started = time.perf_counter()
        before = self.victim.counters()
        sides = self._sides(example)
        code = _side_code(example, sides[0])
        record = self._record(example, code)
        extras: dict[str, Any] = {}
        try:
            self._attack(example, sides, record, extras)
        except Exception as err:  # noqa: BLE001 - recorded, counted in the summary, and shown
            if self.options.fail_fast:
                raise
            record.update(status="error", reason=f"internal: {type(err).__name__}: {err}")
            extras["traceback"] = traceback.format_exc(limit=6)
            print(f"warning: example {example.id}: {type(err).__name__}: {err}", file=sys.stderr)
        spent = self.victim.counters() - before
        record.update(queries=int(spent.queries), forward_passes=int(spent.forward_passes),
                      wall_time_s=round(time.perf_counter() - started, 6), victim_time_s=round(spent.victim_seconds, 6))
        return record, extras

    def _check_input(self, example: Example, code: str, record: dict[str, Any]) -> Extraction | None:
        """The extraction of the attacked side, or None after recording an `error` status."""
        if not isinstance(code, str) or not code.strip():
            record.update(status="error", reason="empty: the program is empty")
            return None
        try:
            extraction = extract(code, example.language)
        except CodeInputError as err:
            record.update(status="error", reason=f"unreadable: {err}")
            return None
        limit = self.options.max_parse_errors
        if extraction.parse_errors and (not extraction.identifiers and not extraction.exclusions
                                        or limit is not None and extraction.parse_errors > limit):
            record.update(status="error", reason=f"unparseable: {extraction.parse_errors} parse errors"
                          + ("" if limit is None else f" (--max-parse-errors {limit})"))
            return None
        return extraction

    def _window(self, example: Example, record: dict[str, Any]) -> tuple[Window | None, bool]:
        """The input's window, recorded; False when `--too-long error` makes a truncated input an error."""
        window = measure(self.victim, example.code)
        if window is None:
            return None, True
        record.update(window.fields())
        if window.truncated and self.options.too_long == "error":
            record.update(status="error", reason=f"too_long: {window.input_tokens} tokens, the model reads "
                          f"{window.read_tokens} (--too-long error; the default attacks what the model reads)")
            return window, False
        return window, True

    def _attack(self, example: Example, sides: list[str | None], record: dict[str, Any], extras: dict[str, Any]) -> None:
        o = self.options
        extraction = self._check_input(example, _side_code(example, sides[0]), record)
        if extraction is None:
            return
        window, go_on = self._window(example, record)
        if not go_on:
            return
        probs = np.asarray(self.victim.predict_proba([example.code]), dtype=np.float64)[0]
        label = int(example.label)
        record.update(original_prediction=int(probs.argmax()), original_probability=float(probs[label]),
                      identifiers=len(extraction.identifiers), tokens=len(token_texts(extraction)))
        if int(probs.argmax()) != label:
            record.update(status="skipped_misclassified", reason=f"the victim predicts {int(probs.argmax())}, "
                          f"the label is {label}")
            return
        used = 1
        outcome = ctx = None
        past_window: list[str] = []
        for side in sides:
            code = _side_code(example, side)
            if side != sides[0]:
                extraction = self._check_input(example, code, {})
                if extraction is None:
                    continue
            if not extraction.identifiers:
                continue
            ctx = self.context_factory(example=example, code=code, language=example.language, extraction=extraction,
                                true_label=label, victim=self.victim, rng=example_rng(o.seed, str(example.id)),
                                budget=o.budget, side=side, queries_used=used, original_probs=probs)
            if window is not None and window.truncated:
                hidden = restrict_to_window(self.victim, ctx)
                if hidden:
                    extras.setdefault("past_window", {})[side or "program"] = hidden
                    past_window += hidden
                if side == sides[0]:
                    record["identifiers"] = len(ctx.variables)
            if not ctx.variables:
                continue
            try:
                outcome = self.search.attack(ctx)
            except BudgetExhausted:
                chosen = ctx.first_success or ctx.best
                outcome = Outcome.from_evaluated(ctx, chosen, reason="budget exhausted")
            used = ctx.queries_used
            extras.update(outcome.extras)
            if ctx.rejected_flips:  # flips that were not valid programs (engine/attacks/base.py), at most 5 reasons
                rejected = extras.setdefault("rejected_flips", {"count": 0, "reasons": []})
                rejected["count"] += len(ctx.rejected_flips)
                rejected["reasons"] = (rejected["reasons"] + ctx.rejected_flips)[:5]
            if side is not None:
                extras["side"] = side
            if outcome.success or ctx.exhausted:
                break
        if ctx is None or outcome is None:
            reason = (f"no renameable identifier in the part the model reads: {len(past_window)} occur only past its "
                      f"window of {window.read_tokens} tokens" if past_window and window is not None
                      else _no_identifiers_reason(extraction))
            record.update(status="skipped_no_identifiers", reason=reason)
            return
        self._finish(record, ctx, outcome, extras)

    def _finish(self, record: dict[str, Any], ctx: AttackContext, outcome: Outcome, extras: dict[str, Any]) -> None:
        success = outcome.code is not None and outcome.probs is not None and ctx.is_success(outcome.probs)
        if success != outcome.success:
            raise AssertionError(f"{self.options.attack}: the outcome says success={outcome.success} but its "
                                 f"probabilities say {success}")
        record.update(status="success" if success else "failed", reason=None if success else outcome.reason,
                      original_code=ctx.code, structure_edits=outcome.structure_edits)
        if outcome.code is None:
            return
        mapping = {k: v for k, v in outcome.mapping.items() if k != v}
        record.update(adversarial_prediction=int(np.argmax(outcome.probs)),
                      adversarial_probability=float(outcome.probs[ctx.true_label]),
                      adversarial_code=outcome.code, rename_map=mapping, identifiers_changed=len(mapping))
        after = None
        try:
            after = extract(outcome.code, ctx.language)
            record["tokens_changed"] = token_edit_distance(token_texts(ctx.extraction), token_texts(after))
        except CodeInputError as err:
            extras["tokens_changed_error"] = str(err)
        validity = self.validity.check(ctx.extraction, outcome.code, mapping, outcome.structure_edits,
                                       ctx.example.meta, after=after)
        record.update(validity.fields())

    # ------------------------------------------------------------------ transfer

    def _transfer_items(self, done: set[str]) -> list[tuple[Example, dict[str, Any]]]:
        source_dir = self.transfer_from
        files = sorted(source_dir.glob("records*.jsonl")) if source_dir.is_dir() else [source_dir]
        if not files or not all(f.exists() for f in files):
            raise UserError(f"--transfer-from {source_dir}: no records*.jsonl there")
        manifest_path = (source_dir if source_dir.is_dir() else source_dir.parent) / "manifest.json"
        if manifest_path.exists():
            source = json.loads(manifest_path.read_text(encoding="utf-8"))
            fingerprint = (source.get("dataset") or {}).get("fingerprint")
            if fingerprint and fingerprint != self.dataset.fingerprint:
                raise UserError(f"--transfer-from {source_dir}: its dataset fingerprint {fingerprint} differs from "
                                f"this dataset's {self.dataset.fingerprint}; give the same dataset options")
        by_id = {str(e.id): e for e in self.dataset.split(self.options.split)}
        items = []
        for path in files:
            for record in read_records(path):
                if record.get("status") != "success" or str(record["example_id"]) in done:
                    continue
                example = by_id.get(str(record["example_id"]))
                if example is None:
                    raise UserError(f"{path}: example {record['example_id']!r} is not in split {self.options.split!r} "
                                    "of this dataset")
                items.append((example, record))
        items.sort(key=lambda item: item[1]["example_id"])
        return items[: self.options.n] if self.options.n is not None else items

    def replay(self, example: Example, source: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """One adversarial program of the source run on this victim (2 queries: original, adversarial)."""
        started = time.perf_counter()
        before = self.victim.counters()
        record = self._record(example, source["original_code"])
        side = _side_of(example, source["original_code"])
        adversarial = source["adversarial_code"]
        full = adversarial if side is None else ((adversarial, example.code[1]) if side == "first" else (example.code[0], adversarial))
        probs = np.asarray(self.victim.predict_proba([example.code, full]), dtype=np.float64)
        label = int(example.label)
        record.update(original_prediction=int(probs[0].argmax()), original_probability=float(probs[0][label]),
                      identifiers=source.get("identifiers"), tokens=source.get("tokens"))
        if int(probs[0].argmax()) != label:
            record.update(status="skipped_misclassified",
                          reason=f"the victim predicts {int(probs[0].argmax())}, the label is {label}")
        else:
            success = int(probs[1].argmax()) != label
            record.update(status="success" if success else "failed",
                          reason=None if success else "the transferred program does not fool this victim")
        for key in ("adversarial_code", "rename_map", "identifiers_changed", "structure_edits", "tokens_changed",
                    "valid_parses", "valid_alpha_equivalent", "valid_compiles", "valid_tests_pass", "validity_reasons",
                    "compile_differential"):
            record[key] = source.get(key)
        window = measure(self.victim, example.code)
        if window is not None:
            record.update(window.fields())
        record.update(adversarial_prediction=int(probs[1].argmax()), adversarial_probability=float(probs[1][label]),
                      attack=source.get("attack", self.options.attack))
        spent = self.victim.counters() - before
        record.update(queries=int(spent.queries), forward_passes=int(spent.forward_passes),
                      wall_time_s=round(time.perf_counter() - started, 6), victim_time_s=round(spent.victim_seconds, 6))
        return record, {"source_model": source.get("model"), "source_attack": source.get("attack")}


# --------------------------------------------------------------------------- helpers


def _side_code(example: Example, side: str | None) -> str:
    if side is None:
        return example.code  # type: ignore[return-value]
    return example.code[0 if side == "first" else 1]


def _side_of(example: Example, code: str) -> str | None:
    if not example.is_pair:
        return None
    return "second" if code == example.code[1] and code != example.code[0] else "first"


def _no_identifiers_reason(extraction: Extraction) -> str:
    if extraction.exclusions:
        reasons = sorted({x.reason for x in extraction.exclusions})
        return f"no renameable identifier; {len(extraction.exclusions)} excluded: {'; '.join(reasons)[:300]}"
    return "no renameable identifier (no declared variable or parameter)"


def _changed(previous: dict, current: dict, keys) -> list[tuple[str, Any]]:
    """(key, previous value) for each dotted key whose value differs between two manifests."""
    return [(key, _get(previous, key)) for key in keys if _get(previous, key) != _get(current, key)]


def _get(mapping: dict[str, Any], dotted: str) -> Any:
    value: Any = mapping
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _drop_extras_not_in(path: Path, done: set[str]) -> None:
    """Keep the side file consistent with the records after a crash (its line may precede the record's)."""
    if not path.exists():
        return
    kept = [r for r in read_records(path, repair=True) if str(r.get("example_id")) in done]
    seen: set[str] = set()
    unique = []
    for r in kept:
        if r["example_id"] not in seen:
            seen.add(r["example_id"])
            unique.append(r)
    path.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in unique), encoding="utf-8")


def _json_default(value: Any):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _bar(total: int, initial: int, progress: bool | None, name: str):
    if progress is False:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, initial=initial, desc=f"attack {name}", unit="example", file=sys.stderr,
                disable=None if progress is None else not progress, dynamic_ncols=True)
