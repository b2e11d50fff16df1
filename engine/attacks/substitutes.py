"""Natural substitutes: the masked-LM stage of ALERT and MHM-NS, batched, cached and resumable.

For every renameable variable of every program of a split, `engine substitutes` proposes new
names with a masked language model and keeps the ones whose contextual embedding is closest
to the original name's. The result is a small JSONL file per split that attacks read through
`CachedSubstitutes` (a `SubstituteSource`), so the MLM runs once per dataset and model, not
once per attack run.

How a variable's substitutes are made (one pass for proposals, one per kept proposal):

1. **Proposals by masking.** Every token overlapping any occurrence of the variable is
   replaced by `<mask>`, all occurrences at once (so the model cannot copy the name from
   another occurrence; ALERT ran the MLM *unmasked*, where the top proposal is the original
   name). A name of `m` subwords keeps `m` mask slots, at most `max_subwords`. One forward
   pass; the log-probabilities at the slots of the occurrences that tokenized into exactly
   `m` clean subwords are averaged over occurrences (a slot-by-slot `m × V` table), and a beam
   search of width `top_k` over the `m` slots gives the `top_k` most likely subword sequences.
   This replaces ALERT's "cartesian product of per-position top-4, ranked by perplexity without
   context": the sequences are scored in context, by the same pass.
2. **Filter.** Decoded, stripped, de-duplicated, then kept only when the language layer's
   `validate(extraction, {variable: name})` accepts them (identifier syntax, not a keyword,
   no collision with a name used in the variable's scope: `engine.code.collisions`).
3. **Similarity.** The program is renamed to each surviving proposal (span substitution) and
   run through the encoder; a name's contextual embedding is the mean last hidden state over
   the tokens of its occurrences. The `keep` proposals most similar by cosine to the original's
   embedding are stored, most similar first (`engine.kernels.grouped_cosine_topk`).

Programs longer than the MLM's limit are seen through a window of `max_length` tokens that
starts at the variable's first occurrence (moved back so it ends at the program's end when it
can): each variable gets its own window, so long programs lose no variable.

Files: `<out>/manifest.json` (the cache key: dataset fingerprint, MLM fingerprint, parameters)
and `<out>/<split>.jsonl`, one line per program: `{"id", "side", "substitutes": {var: [names]},
"variables", "proposed"}`; `side` is null for single programs and "first"/"second" for the two
programs of a pair. Lines are appended and flushed per example; a rerun skips ids already
written (a torn last line from a killed run is dropped), so the stage is resumable.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.attacks.sources import PrecomputedSubstitutes
from engine.code import CodeInputError, Renamer, extract, validate
from engine.errors import UserError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class SubstituteConfig:
    """Algorithm parameters (ALERT's defaults) and the engineering ones, kept apart in the manifest."""

    top_k: int = 60  # proposals per variable (ALERT: top-60 per occurrence)
    keep: int = 30  # kept by contextual cosine (ALERT: 30)
    max_subwords: int = 4  # mask slots for one name at most
    max_length: int | None = None  # the MLM window; None: the MLM's own limit, at most 512
    # engineering: never change which names are kept beyond float noise
    batch_size: int = 32
    device: str = "auto"

    def check(self) -> None:
        for name in ("top_k", "keep", "max_subwords", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_length is not None and self.max_length < 16:
            raise UserError(f"--max-length {self.max_length} is too small (at least 16)")

    def algorithm(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "keep": self.keep, "max_subwords": self.max_subwords}


# --------------------------------------------------------------------------- the masked LM


class MaskedLM:
    """A Hugging Face masked LM (directory or hub id) and its fast tokenizer, on one device."""

    def __init__(self, source: str | os.PathLike, *, device: str = "auto", max_length: int | None = None):
        import torch
        from transformers import AutoModelForMaskedLM

        from engine.device import resolve_device
        from engine.models import check_max_length, load_tokenizer, quiet_transformers

        self.source = os.path.expanduser(str(source))
        self.tokenizer = load_tokenizer(self.source)
        if not getattr(self.tokenizer, "is_fast", False):
            raise UserError(f"{self.source}: substitutes need a fast tokenizer (character offsets); this one is not")
        if self.tokenizer.mask_token_id is None:
            raise UserError(f"{self.source}: the tokenizer has no mask token; is this a masked language model?")
        try:
            with quiet_transformers():
                model = AutoModelForMaskedLM.from_pretrained(self.source)
        except (OSError, ValueError) as err:
            raise UserError(f"cannot load a masked LM from {self.source}: {str(err).splitlines()[0]}") from None
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.max_length = check_max_length(model, self.tokenizer, max_length)
        self.fingerprint = mlm_fingerprint(self.source, model)
        self.torch = torch
        bare = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("a")["input_ids"]
        start = next(i for i in range(len(full)) if full[i:i + len(bare)] == bare)
        self.prefix, self.suffix = full[:start], full[start + len(bare):]
        self.body = self.max_length - len(self.prefix) - len(self.suffix)
        self.batch_size = 32
        self.forward_passes = 0
        self.seconds = 0.0

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Token ids and character offsets of whole programs (no special tokens, no truncation)."""
        if not texts:
            return []
        from engine.models import quiet_transformers

        with quiet_transformers():  # whole programs exceed max_length on purpose: windows are cut later
            batch = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                                   return_attention_mask=False)
        return [(list(ids), [tuple(o) for o in offsets])
                for ids, offsets in zip(batch["input_ids"], batch["offset_mapping"])]

    def run(self, inputs: Sequence[list[int]], jobs: Sequence[tuple[list[int], bool]]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Forward passes over `inputs` (ids with special tokens), sorted by length and batched.

        `jobs[i] = (positions, want_logprobs)`: returns, per input, the mean last hidden state
        over `positions` (float32) and, if asked, the log-probabilities at each position.
        """
        torch = self.torch
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]), reverse=True)
        results: list[Any] = [None] * len(inputs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        started = time.perf_counter()
        with torch.inference_mode():
            for begin in range(0, len(order), self.batch_size):
                chunk = order[begin:begin + self.batch_size]
                width = max(len(inputs[i]) for i in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    ids[row, :len(inputs[i])] = torch.tensor(inputs[i])
                    mask[row, :len(inputs[i])] = 1
                out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                 output_hidden_states=True)
                hidden = out.hidden_states[-1]
                for row, i in enumerate(chunk):
                    positions, want = jobs[i]
                    index = torch.tensor(positions, dtype=torch.long, device=self.device)
                    vector = hidden[row, index].float().mean(0).cpu().numpy()
                    logprobs = None
                    if want:
                        logprobs = torch.log_softmax(out.logits[row, index].float(), dim=-1).cpu().numpy()
                    results[i] = (vector, logprobs)
                self.forward_passes += len(chunk)
        self.seconds += time.perf_counter() - started
        return results

    def wrap(self, ids: Sequence[int]) -> list[int]:
        return [*self.prefix, *ids, *self.suffix]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), clean_up_tokenization_spaces=False).strip()


def mlm_fingerprint(source: str, model=None) -> str:
    """Our manifest's fingerprint, else a hash of the directory's files, else hub id + commit."""
    from engine.manifest import file_hashes, model_fingerprint, read_manifest

    path = Path(source)
    if path.is_dir():
        manifest = read_manifest(path)
        if manifest and manifest.get("fingerprint"):
            return str(manifest["fingerprint"])
        return model_fingerprint(file_hashes(path))
    commit = getattr(getattr(model, "config", None), "_commit_hash", None) or "unknown-commit"
    return hashlib.sha256(f"{source}@{commit}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- one program


@dataclass
class _Variable:
    name: str
    window: int  # first token of the window into the program's tokens
    masked: list[int]  # window ids with every occurrence masked, special tokens added
    unmasked: list[int]
    slots: list[int]  # positions (in the wrapped input) of the scored occurrences' subwords, occurrence-major
    subwords: int  # m: slots per scored occurrence
    positions: list[int]  # positions of every occurrence's tokens inside the window (for embeddings)


def _window_start(first: int, total: int, body: int) -> int:
    return max(0, min(first, total - body))


def _occurrence_tokens(offsets: list[tuple[int, int]], start: int, end: int) -> tuple[list[int], bool]:
    """Token indices overlapping chars [start, end), and whether they cover exactly the name."""
    found = [i for i, (s, e) in enumerate(offsets) if s < end and e > start and e > s]
    clean = bool(found) and offsets[found[0]][0] >= start and offsets[found[-1]][1] <= end
    return found, clean


def _char_spans(renamer: Renamer) -> dict[str, list[tuple[int, int]]]:
    spans: dict[str, list[tuple[int, int]]] = {}
    for start, end, name in renamer.spans:
        spans.setdefault(name, []).append((start, end))
    return spans


def _renamed_spans(spans: list[tuple[int, int]], old: str, new: str) -> list[tuple[int, int]]:
    """Char spans of a variable's occurrences after renaming it (other variables unchanged)."""
    delta = len(new) - len(old)
    return [(s + i * delta, s + i * delta + len(new)) for i, (s, _) in enumerate(spans)]


def _embedding_input(mlm: MaskedLM, ids: list[int], offsets, spans) -> tuple[list[int], list[int]] | None:
    positions = sorted({t for s, e in spans for t in _occurrence_tokens(offsets, s, e)[0]})
    if not positions:
        return None
    window = _window_start(positions[0], len(ids), mlm.body)
    inside = [p - window + len(mlm.prefix) for p in positions if window <= p < window + mlm.body]
    return mlm.wrap(ids[window:window + mlm.body]), inside


def _prepare(mlm: MaskedLM, renamer: Renamer, ids: list[int], offsets, config: SubstituteConfig) -> list[_Variable]:
    spans = _char_spans(renamer)
    variables = []
    for name, occurrences in spans.items():
        tokens = [_occurrence_tokens(offsets, s, e) for s, e in occurrences]
        every = sorted({t for found, _ in tokens for t in found})
        if not every:
            continue
        window = _window_start(every[0], len(ids), mlm.body)
        stop = window + mlm.body
        masked = list(ids[window:stop])
        for t in every:
            if window <= t < stop:
                masked[t - window] = mlm.tokenizer.mask_token_id
        clean = [found for found, ok in tokens if ok and window <= found[0] and found[-1] < stop]
        if not clean:
            continue
        counts: dict[int, int] = {}
        for found in clean:
            counts[len(found)] = counts.get(len(found), 0) + 1
        m = max(counts, key=lambda k: (counts[k], -k))  # the commonest subword count, fewer on ties
        scored = [found for found in clean if len(found) == m]
        if m > config.max_subwords:  # long names: only their first max_subwords slots are predicted
            m = config.max_subwords
            scored = [found[:m] for found in scored]
        offset = len(mlm.prefix) - window
        variables.append(_Variable(
            name=name, window=window, masked=mlm.wrap(masked), unmasked=mlm.wrap(ids[window:stop]),
            slots=[t + offset for found in scored for t in found], subwords=m,
            positions=[t + offset for t in every if window <= t < stop]))
    return variables


def beam_sequences(logprobs: np.ndarray, width: int) -> list[tuple[tuple[int, ...], float]]:
    """The `width` best token sequences (one per row of `logprobs`, an `m × V` table) by summed log-prob."""
    beams: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    for row in logprobs:
        top = np.argsort(-row, kind="stable")[:width]
        expanded = [(seq + (int(t),), score + float(row[t])) for seq, score in beams for t in top]
        expanded.sort(key=lambda item: -item[1])  # stable: ties keep beam order, then token order
        beams = expanded[:width]
    return beams


# --------------------------------------------------------------------------- the stage


@dataclass
class ProgramJob:
    """One program to process: `key` is its line id (example id, plus the side for pairs)."""

    example_id: str
    side: str | None
    code: str
    language: str


def generate(mlm: MaskedLM, jobs: Sequence[ProgramJob], config: SubstituteConfig) -> list[dict[str, Any]]:
    """Substitutes for a batch of programs (every MLM pass batched across them): one record per job."""
    from engine.kernels import grouped_cosine_topk  # numba: imported on first use
    mlm.batch_size = config.batch_size
    records: list[dict[str, Any]] = []
    prepared: list[tuple[ProgramJob, Renamer | None, str, list[_Variable]]] = []
    for job in jobs:
        try:
            renamer = Renamer(extract(job.code, job.language))
        except CodeInputError as err:
            prepared.append((job, None, str(err), []))
            continue
        prepared.append((job, renamer, "", []))
    tokenized = mlm.tokenize([renamer.text for _, renamer, _, _ in prepared if renamer is not None])
    for p, (job, renamer, _, _) in enumerate(prepared):
        if renamer is not None:  # spans and offsets both index the renamer's text
            ids, offsets = tokenized.pop(0)
            prepared[p] = (job, renamer, "", _prepare(mlm, renamer, ids, offsets, config))

    # 1. proposals: one masked pass per variable
    masked_inputs, masked_jobs, owners = [], [], []
    for p, (_, _, _, variables) in enumerate(prepared):
        for v, var in enumerate(variables):
            masked_inputs.append(var.masked)
            masked_jobs.append((var.slots, True))
            owners.append((p, v))
    masked_out = mlm.run(masked_inputs, masked_jobs)
    proposals: dict[tuple[int, int], list[str]] = {}
    for (p, v), (_, logprobs) in zip(owners, masked_out):
        _, renamer, _, variables = prepared[p]
        var = variables[v]
        table = logprobs.reshape(-1, var.subwords, logprobs.shape[-1]).mean(axis=0)
        names: list[str] = []
        for sequence, _ in beam_sequences(table, config.top_k):
            name = mlm.decode(sequence)
            if name and name not in names and not validate(renamer.extraction, {var.name: name}):
                names.append(name)
        proposals[(p, v)] = names

    # 2. contextual embeddings: the original (unmasked) and one renamed program per proposal
    embed_inputs, embed_jobs, rows = [], [], []  # rows: (p, v, name or None)
    for p, (_, renamer, _, variables) in enumerate(prepared):
        if renamer is None:
            continue
        spans = _char_spans(renamer)
        for v, var in enumerate(variables):
            names = proposals.get((p, v)) or []
            if not names:
                continue
            embed_inputs.append(var.unmasked)
            embed_jobs.append((var.positions, False))
            rows.append((p, v, None))
            programs = renamer.candidates(var.name, names)
            for name, (ids, offsets) in zip(names, mlm.tokenize(programs)):
                made = _embedding_input(mlm, ids, offsets, _renamed_spans(spans[var.name], var.name, name))
                if made is None:
                    continue
                embed_inputs.append(made[0])
                embed_jobs.append((made[1], False))
                rows.append((p, v, name))
    embedded = mlm.run(embed_inputs, embed_jobs)

    # 3. keep the most similar: one kernel call for every variable of the batch
    groups: list[tuple[int, int]] = []
    references, candidates, candidate_names, offsets = [], [], [], [0]
    for (p, v, name), (vector, _) in zip(rows, embedded):
        if name is None:
            if groups:
                offsets.append(len(candidates))
            groups.append((p, v))
            references.append(vector)
        else:
            candidates.append(vector)
            candidate_names.append(name)
    if groups:
        offsets.append(len(candidates))
    kept: dict[tuple[int, int], list[str]] = {}
    if groups:
        chosen, _ = grouped_cosine_topk(np.stack(candidates) if candidates else np.zeros((0, len(references[0]))),
                                        np.array(offsets), np.stack(references), config.keep)
        for g, key in enumerate(groups):
            kept[key] = [candidate_names[i] for i in chosen[g] if i >= 0]

    for p, (job, renamer, error, variables) in enumerate(prepared):
        record: dict[str, Any] = {"id": job.example_id, "side": job.side}
        if renamer is None:
            record |= {"substitutes": {}, "variables": 0, "proposed": 0, "error": error}
        else:
            record |= {
                "substitutes": {var.name: kept.get((p, v), []) for v, var in enumerate(variables)},
                "variables": len(renamer.extraction.identifiers),
                "proposed": sum(len(proposals.get((p, v), [])) for v in range(len(variables))),
            }
        records.append(record)
    return records


def program_jobs(examples: Iterable, language: str) -> list[ProgramJob]:
    """One job per program: single programs keyed by id, pairs as two jobs (first, second)."""
    jobs = []
    for example in examples:
        if isinstance(example.code, tuple):
            jobs.append(ProgramJob(str(example.id), "first", example.code[0], language))
            jobs.append(ProgramJob(str(example.id), "second", example.code[1], language))
        else:
            jobs.append(ProgramJob(str(example.id), None, example.code, language))
    return jobs


def line_key(example_id: str, side: str | None) -> str:
    return str(example_id) if side is None else f"{example_id}\x00{side}"


# --------------------------------------------------------------------------- files


def cache_key(dataset_fingerprint: str, mlm_fingerprint: str, config: SubstituteConfig | None, source: str,
              max_length: int | None = None) -> dict[str, Any]:
    """What the stored names depend on (the MLM's window length included); batch size and device are not."""
    parameters = {} if config is None else config.algorithm() | {"max_length": max_length}
    return {"format_version": FORMAT_VERSION, "dataset_fingerprint": dataset_fingerprint,
            "mlm_fingerprint": mlm_fingerprint, "source": source, "parameters": parameters}


def key_hash(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def open_cache(out: Path, key: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Create `out` with its manifest, or check that the one there has the same key."""
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("key") != key:
            differs = [name for name in key if (manifest.get("key") or {}).get(name) != key[name]]
            raise UserError(f"{out} holds substitutes made with a different {', '.join(differs)}; "
                            "choose another --out (or leave --out out to use the cache)")
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"key": key, "key_hash": key_hash(key), **extra}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def read_lines(path: Path) -> dict[str, dict[str, Any]]:
    """Records of a split file by line key; a torn last line (killed writer) is cut off the file."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
    for number, line in enumerate(data[:end].decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            records[line_key(row["id"], row.get("side"))] = row
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{path}:{number}: not a substitutes record; delete the file to rebuild it") from None
    return records


def build_split(mlm: MaskedLM, examples: Sequence, language: str, path: Path, config: SubstituteConfig,
                progress: bool | None = None, chunk: int = 8) -> dict[str, Any]:
    """Append the records missing from `path` for `examples`; returns counts and throughput."""
    from tqdm.auto import tqdm

    done = read_lines(path)
    jobs = [job for job in program_jobs(examples, language) if line_key(job.example_id, job.side) not in done]
    started, passes_before = time.perf_counter(), mlm.forward_passes
    variables = kept = 0
    bar = tqdm(total=len(jobs), desc=f"substitutes {path.stem}", unit="program",
               disable=None if progress is None else not progress, leave=False, dynamic_ncols=True)
    with open(path, "a", encoding="utf-8") as handle:
        for begin in range(0, len(jobs), chunk):
            for record in generate(mlm, jobs[begin:begin + chunk], config):
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                variables += len(record["substitutes"])
                kept += sum(len(names) for names in record["substitutes"].values())
            handle.flush()
            bar.update(len(jobs[begin:begin + chunk]))
    bar.close()
    seconds = time.perf_counter() - started
    return {"programs": len(jobs), "already_done": len(done), "variables": variables, "names_kept": kept,
            "forward_passes": mlm.forward_passes - passes_before, "seconds": round(seconds, 3),
            "programs_per_second": round(len(jobs) / seconds, 2) if jobs and seconds else None}


def from_dataset_field(examples: Sequence, language: str, path: Path) -> dict[str, Any]:
    """Write a split's dataset-provided `substitutes` (Devign's) in the cache format, filtered by `validate`.

    ALERT's files were made with another renaming engine: names it proposed that our rules
    reject (in the program already, keywords, not a renameable variable here) are dropped and
    counted, so the loss is visible.
    """
    done = read_lines(path)
    offered = accepted = programs = 0
    with open(path, "a", encoding="utf-8") as handle:
        for example in examples:
            if str(example.id) in done or isinstance(example.code, tuple):
                continue
            table = example.meta.get("substitutes") or {}
            try:
                extraction = extract(example.code, language)
            except CodeInputError as err:
                record = {"id": str(example.id), "side": None, "substitutes": {}, "variables": 0, "proposed": 0,
                          "error": str(err)}
            else:
                substitutes = {}
                for variable, names in table.items():
                    if variable not in extraction.identifiers:
                        continue
                    names = list(dict.fromkeys(str(n).strip() for n in names))
                    offered += len(names)
                    good = [n for n in names if n and not validate(extraction, {variable: n})]
                    accepted += len(good)
                    substitutes[variable] = good
                record = {"id": str(example.id), "side": None, "substitutes": substitutes,
                          "variables": len(extraction.identifiers), "proposed": sum(map(len, table.values()))}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            programs += 1
    return {"programs": programs, "already_done": len(done), "names_offered": offered, "names_accepted": accepted}


# --------------------------------------------------------------------------- the source attacks read


class CachedSubstitutes(PrecomputedSubstitutes):
    """A `SubstituteSource` over `engine substitutes` output: `candidates(ctx, variable, n)`.

    Reads `<dir>/<split>.jsonl` (or one `.jsonl` file) once; names are served in stored order
    (most similar first), filtered again by `ctx.name_ok`, at most `n`.
    """

    name = "masked-lm"

    def __init__(self, path: str | os.PathLike, split: str = "test") -> None:
        path = Path(path).expanduser()
        file = path / f"{split}.jsonl" if path.is_dir() else path
        if not file.exists():
            raise UserError(f"no substitutes for the {split} split at {file}; run `engine substitutes … --split {split}`")
        rows = read_lines(file)
        manifest_path = file.parent / MANIFEST
        self.manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
        table = {key: row.get("substitutes") or {} for key, row in rows.items()}
        super().__init__(table, label=str(file))

    def lookup(self, ctx) -> Mapping[str, Sequence[str]]:
        return self.table.get(line_key(ctx.example.id, ctx.side)) or {}

    def describe(self) -> dict:
        key = self.manifest.get("key") or {}
        return {"source": self.name, "from": self.label, "mlm_fingerprint": key.get("mlm_fingerprint"),
                "dataset_fingerprint": key.get("dataset_fingerprint"), "parameters": key.get("parameters")}


def default_cache_dir(key: Mapping[str, Any]) -> Path:
    from engine.datasets.registry import cache_root

    return cache_root() / "substitutes" / key_hash(key)



# --------------------------------------------------------------------------- what `engine attack` calls


def load_substitutes(path: str | os.PathLike, split: str = "test") -> CachedSubstitutes:
    """The source for `engine attack --substitutes PATH` (a directory written by `engine substitutes`, or one file)."""
    return CachedSubstitutes(path, split)


class MaskedLMSubstitutes(CachedSubstitutes):
    """Substitutes made on demand: a program missing from the cache is generated when first asked for,
    appended to the cache (so a later run, or `engine substitutes`, reuses it) and served.

    Running `engine substitutes` first is faster (programs are batched together); this source
    lets `engine attack --mlm DIR` work without it, generating only the attacked programs. The
    MLM time then falls inside the attacked example's wall time (not its victim time).
    """

    def __init__(self, mlm: MaskedLM, dataset, split: str, config: SubstituteConfig, out: Path | None = None) -> None:
        key = cache_key(dataset.fingerprint, mlm.fingerprint, config, mlm.source, mlm.max_length)
        self.out = Path(out) if out else default_cache_dir(key)
        open_cache(self.out, key, {"dataset": dataset.name, "language": dataset.language, "mlm": mlm.source,
                                   "max_length": mlm.max_length, "batch_size": config.batch_size})
        self.file = self.out / f"{split}.jsonl"
        self.file.touch()
        super().__init__(self.file, split)
        self.mlm, self.config, self.language = mlm, config, dataset.language
        self.name = "masked-lm"

    def lookup(self, ctx) -> Mapping[str, Sequence[str]]:
        key = line_key(ctx.example.id, ctx.side)
        if key not in self.table:
            job = ProgramJob(str(ctx.example.id), ctx.side, ctx.code, self.language)
            (record,) = generate(self.mlm, [job], self.config)
            with open(self.file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.table[key] = record["substitutes"]
        return self.table[key]


@dataclass(frozen=True)
class OnDemandMLM:
    """`engine attack --mlm DIR`: the masked LM that proposes natural substitutes during the attack."""

    source: str  # a masked-LM directory or hub id
    config: SubstituteConfig


def add_substitute_options(parser) -> None:
    """`engine attack`'s flags for on-demand natural substitutes (ALERT, MHM-NS without --substitutes)."""
    group = parser.add_argument_group("natural substitutes (when --substitutes is not given)")
    group.add_argument("--mlm", metavar="DIR|HUB-ID",
                       help="masked LM proposing substitutes on demand, cached as `engine substitutes` would "
                       "(faster: run `engine substitutes` first and pass --substitutes DIR)")
    group.add_argument("--mlm-top-k", type=int, default=SubstituteConfig.top_k, help="proposals per variable (default 60)")
    group.add_argument("--mlm-keep", type=int, default=SubstituteConfig.keep, help="kept by contextual cosine (default 30)")


def on_demand_mlm(args) -> OnDemandMLM | None:
    """The `add_substitute_options` flags of a parsed `engine attack` command line (None without --mlm)."""
    if not args.mlm:
        return None
    config = SubstituteConfig(top_k=args.mlm_top_k, keep=args.mlm_keep, device=args.device)
    config.check()
    return OnDemandMLM(args.mlm, config)


def natural_source(dataset, split: str, mlm: OnDemandMLM | None) -> CachedSubstitutes:
    """The natural-substitute source when no `--substitutes` was given: the masked LM of `--mlm`."""
    if mlm is None:
        raise UserError("this attack needs natural substitutes: pass --mlm DIR (a masked LM, e.g. from "
                        "`engine pretrain-mlm`), --substitutes DIR (from `engine substitutes`) or --substitutes dataset")
    return MaskedLMSubstitutes(MaskedLM(mlm.source, device=mlm.config.device), dataset, split, mlm.config)
