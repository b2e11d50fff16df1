"""Which model is which: originals, their compressed variants, and what the manifests say about them.

A *variant* is one (dataset, task, model, compression) seen in the records. The *original* of a
comparison is a variant whose compression is "none". A compressed variant is matched to its
original (the `base_model` of its row) by, in order: the manifest's `compression.parent`
fingerprint equal to an original's `model.fingerprint`; an original whose model name is a
prefix of the variant's; the only original with the same dataset and task. A variant that none
of these match keeps `base_model` null and is reported as unmatched, never guessed.

Labels are what a paper prints: "Original", "Pruned 50 %", "Int8 (dynamic)", "Distilled 0.5 MB",
derived from the manifest's compression block (`human_label`); the full configuration string
stays beside it (`configuration`) for the variants table. `--label KEY=TEXT` (or a study's
`[labels]`) overrides a label. Every table and figure shows the variants in one fixed order
(`order`: original, pruned, quantized, distilled, others; by label within a method).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl

from engine.common.errors import UserError
from engine.common.metrics import classification_metrics

from analysis.loading import Logs

VARIANT_KEY = ["dataset", "task", "model", "compression"]
CLEAN_METRICS = ("accuracy", "precision", "recall", "f1")
MODEL_FIELDS = ("size_mb", "parameters", "nonzero_parameters", "latency_ms_batch1", "throughput_per_s")


def _get(mapping: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# Compression-block keys that say where a variant came from or how it is stored, not what was
# done to it.
_PROVENANCE_KEYS = frozenset({"method", "parent", "parent_path", "parent_compression", "report", "serialization",
                              # what hardening found or did (fingerprints, counts), not what was asked of it
                              "float_parent", "zero_weights_kept",
                              # the folder of the adversarial programs (a long path, unbreakable in a
                              # table cell): the configuration names how many instead
                              "adversarial"})
_SHOWN_IF_NONZERO = frozenset({"adversarial_programs"})
# (A robust variant's `parent` is the standard variant it hardens; analysis/gap.py pairs them by it.)
# Fixed order of compression methods in every table and figure (then by label within a method).
METHOD_ORDER = ("none", "prune", "quantize", "distill", "harden")
ORIGINAL_LABEL = "Original"


def configuration(compression: str, manifest_compression: Any) -> str:
    """The full configuration, "prune criterion=global L1 magnitude ratio=0.5 scope=linear", from the
    manifest's compression block (method and scalar parameters), else the record's string. A flag
    that is off (`robust=False` on a plain student) describes nothing that was done, so it is left out."""
    if not isinstance(manifest_compression, dict):
        return compression
    method = str(manifest_compression.get("method") or compression)
    params = [f"{k}={v}" for k, v in sorted(manifest_compression.items())
              if k not in _PROVENANCE_KEYS and isinstance(v, (str, int, float, bool)) and v is not None
              and v is not False and not (k in _SHOWN_IF_NONZERO and v == 0)]
    return " ".join([method, *params])


def _number_text(value: float) -> str:
    return f"{value:g}"


def human_label(method: str, block: Any) -> str:
    """What a paper calls the variant: "Original", "Pruned 50 %", "Int8 (dynamic)", "Distilled 0.5 MB".

    Only the parameter that defines the variant is named; the full configuration stays in the
    variants table. Unknown methods keep their name, capitalised.
    """
    params = block if isinstance(block, dict) else {}
    number = lambda *keys: next((_number(params.get(k)) for k in keys if _number(params.get(k)) is not None), None)  # noqa: E731
    if method == "none":
        return ORIGINAL_LABEL
    if method == "prune":
        ratio = number("ratio", "sparsity", "amount")
        label = "Pruned" if ratio is None else f"Pruned {_number_text(100 * ratio)} %"
        structured = params.get("structured")
        return f"{label} ({structured})" if isinstance(structured, str) and structured else label
    if method == "quantize":
        dtype = params.get("dtype")
        bits = number("bits")
        if not (isinstance(dtype, str) and dtype) and bits is None:
            return "Quantized"
        name = str(dtype) if isinstance(dtype, str) and dtype else f"int{bits:g}"
        name = name.capitalize() if name.startswith("int") else name.upper()
        scheme = params.get("scheme")
        return f"{name} ({scheme})" if isinstance(scheme, str) and scheme else name
    if method == "distill":
        target = number("target_mb")
        layers = number("layers")
        robust = " (robust)" if params.get("robust") is True else ""
        if target is not None:
            return f"Distilled {_number_text(target)} MB{robust}"
        return (f"Distilled ({layers:g} layers)" if layers is not None else "Distilled") + robust
    if method == "harden":  # robust fine-tuning of a variant: named after the variant it hardens
        suffix = harden_suffix(is_control(method, params))
        parent = params.get("parent_compression")
        if isinstance(parent, dict) and parent.get("method"):
            return f"{human_label(str(parent['method']), parent)} {suffix}"
        if isinstance(parent, str) and parent:
            return f"{human_label(parent, {})} {suffix}"
        return f"Hardened {suffix}" if suffix == "(robust)" else f"Fine-tuned {suffix}"
    return method.replace("_", " ").capitalize()


def is_control(method: str, block: Any) -> bool:
    """Harden's control: the same fine-tuning without renamed programs, written `robust: false`."""
    return method == "harden" and isinstance(block, dict) and block.get("robust") is False


def harden_suffix(control: bool) -> str:
    """A hardened variant is "(robust)", harden's control "(fine-tuned)"."""
    return "(fine-tuned)" if control else "(robust)"


def phrase(method: str, label: str, derived_label: str, model: str) -> str:
    """The variant as the subject of a findings sentence: "Distilling tiny to 0.5 MB"."""
    if label != derived_label or method not in ("prune", "quantize", "distill"):
        return f"Replacing {model} by {label}"
    detail = label.split(" ", 1)[1] if " " in label else ""
    if method == "prune":
        return f"Pruning {detail} of {model}'s weights" if detail.endswith("%") else f"Pruning {model} ({label})"
    if method == "quantize":
        return f"Quantizing {model} to {label[0].lower() + label[1:] if label.startswith('Int') else label}"
    return f"Distilling {model} to {detail}" if detail.endswith("MB") else f"Distilling {model} ({label})"


def parse_label_overrides(items: list[str] | None) -> dict[str, str]:
    """`KEY=TEXT` options (from `--label` or a study's `[labels]`) as a dict; bad items are user errors."""
    overrides: dict[str, str] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise UserError(f"--label {item!r}: write KEY=TEXT, e.g. --label prune='Pruned (50 %)'")
        overrides[key.strip()] = text.strip()
    return overrides


def _natural(text: str) -> tuple:
    """Sort key that orders "Pruned 5 %" before "Pruned 50 %" (numbers compared as numbers)."""
    return tuple((0, float(part), "") if re.fullmatch(r"\d+(?:\.\d+)?", part) else (1, 0.0, part)
                 for part in re.split(r"(\d+(?:\.\d+)?)", text) if part)


def variant_table(logs: Logs, labels: dict[str, str] | None = None) -> pl.DataFrame:
    """One row per variant: label, base model, manifest facts and clean performance.

    `labels` overrides the derived label: a key matches a variant's model name, its short name
    (the model name after its original's name, "original" for originals: the names a study
    config gives its compressions), its compression method, or its derived label, most specific
    first. A key that matches no variant becomes a note of the report (it is added to `logs.warnings`).
    """
    records = logs.records
    seen = records.group_by(VARIANT_KEY, maintain_order=True).agg(
        pl.col("language").first(), pl.col("run").unique().alias("runs"))
    rows, parent_timing = [], []
    for row in seen.iter_rows(named=True):
        manifest = next((logs.manifests[r] for r in sorted(row["runs"]) if r in logs.manifests
                         and _get(logs.manifests[r], "model", "name") in (None, row["model"])), None)
        model = _get(manifest, "model") or {}
        compression = _get(model, "compression")
        method = str((compression.get("method") if isinstance(compression, dict) else None) or row["compression"])
        entry = {k: row[k] for k in VARIANT_KEY} | {
            "language": row["language"],
            "is_original": method == "none",
            "method": method,
            "label": human_label(method, compression),
            "derived_label": human_label(method, compression),
            "configuration": configuration(row["compression"], compression),
            "fingerprint": _get(model, "fingerprint"),
            "parent": _get(compression, "parent") if isinstance(compression, dict) else None,
            # robust fine-tuning (harden) or robust distillation: analysis/gap.py pairs it with its standard variant
            "robust": (method == "harden" and not is_control(method, compression))
            or (isinstance(compression, dict) and compression.get("robust") is True),
            # harden's control: the same fine-tuning without renamed programs (analysis/gap.py shows it beside)
            "control": is_control(method, compression),
            "target_mb": _number(_get(compression, "target_mb")),
        }
        for name in MODEL_FIELDS:
            entry[name] = _number(_get(model, name))
        metrics = _get(model, "test_metrics")
        for name in CLEAN_METRICS:
            entry[name] = _number(_get(metrics, name))
        entry["clean_source"] = "manifest" if entry["accuracy"] is not None else None
        rows.append(entry)
        parent_timing.append(_get(model, "measurement", "parent"))
    _fill_original_timing(rows, parent_timing)
    _name_after_parents(rows)
    table = pl.DataFrame(rows, infer_schema_length=None)
    table = _fill_clean_from_records(table, records)
    return _match_originals(table, labels or {}, logs.warnings)


def _fill_original_timing(rows: list[dict[str, Any]], parent_timing: list[Any]) -> None:
    """An original's latency and throughput, when its own manifest has none (training does not time
    the model), from its compressed variants' manifests: each measured its parent side by side with
    itself (`measurement.parent`, with the parent's fingerprint). Several variants: the median."""
    timed: dict[str, dict[str, list[float]]] = {}
    for measured in parent_timing:
        fingerprint = _get(measured, "fingerprint")
        for name in ("latency_ms_batch1", "throughput_per_s"):
            value = _number(_get(measured, name))
            if fingerprint and value is not None:
                timed.setdefault(fingerprint, {}).setdefault(name, []).append(value)
    for row in rows:
        for name, values in timed.get(row["fingerprint"], {}).items() if row["is_original"] else ():
            if row[name] is None:
                row[name] = float(np.median(values))


def _name_after_parents(rows: list[dict[str, Any]]) -> None:
    """A hardened variant is named after the variant it fine-tuned (its `parent` fingerprint), whose
    label says more than the manifest's `parent_compression`: "Pruned 50 % (robust)", and harden's
    control "Pruned 50 % (fine-tuned)"."""
    by_fingerprint = {r["fingerprint"]: r for r in rows if r["fingerprint"]}
    for row in rows:
        parent = by_fingerprint.get(row["parent"]) if row["method"] == "harden" else None
        if parent is not None and parent is not row and not parent["robust"] and not parent["control"]:
            row["label"] = row["derived_label"] = f"{parent['derived_label']} {harden_suffix(row['control'])}"


def _fill_clean_from_records(table: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Clean metrics from the records' original predictions (every record, each example once)."""
    missing = table.filter(pl.col("accuracy").is_null())
    if missing.height == 0:
        return table
    predictions = (records.join(missing.select(VARIANT_KEY), on=VARIANT_KEY, how="semi")
                   .filter(pl.col("original_prediction").is_not_null())
                   .unique(subset=[*VARIANT_KEY, "example_id"], keep="first", maintain_order=True)
                   .partition_by(VARIANT_KEY, as_dict=True))
    updates = []
    for key, frame in predictions.items():
        gold = frame["true_label"].to_numpy()
        pred = frame["original_prediction"].to_numpy()
        labels = int(max(gold.max(), pred.max())) + 1
        result = classification_metrics(gold, pred, 2 if labels <= 2 else labels)
        updates.append(dict(zip(VARIANT_KEY, key)) | {m: result[m] for m in CLEAN_METRICS}
                       | {"clean_source": f"records (all {frame.height} examples)"})
    if not updates:
        return table
    update = pl.DataFrame(updates)
    return table.update(update, on=VARIANT_KEY, how="left")


def _match_originals(table: pl.DataFrame, overrides: dict[str, str], notes: list[str]) -> pl.DataFrame:
    rows = table.to_dicts()
    originals = [r for r in rows if r["is_original"]]
    for row in rows:
        if row["is_original"]:
            row["base_model"], row["match"] = row["model"], "original"
            continue
        same = [o for o in originals if o["dataset"] == row["dataset"] and o["task"] == row["task"]]
        by_parent = [o for o in same if row["parent"] and o["fingerprint"] == row["parent"]]
        # a variant of a variant (a robust one hardens a compressed variant): its parent's parent
        parents = [r for r in rows if row["parent"] and not r["is_original"] and r["fingerprint"] == row["parent"]]
        by_parent = by_parent or [o for o in same for p in parents if p["parent"] and o["fingerprint"] == p["parent"]]
        by_prefix = sorted((o for o in same if row["model"].startswith(o["model"])), key=lambda o: -len(o["model"]))
        if by_parent:
            row["base_model"], row["match"] = by_parent[0]["model"], "parent fingerprint"
        elif by_prefix:
            row["base_model"], row["match"] = by_prefix[0]["model"], "model-name prefix"
        elif len(same) == 1:
            row["base_model"], row["match"] = same[0]["model"], "only original of the dataset"
        else:
            row["base_model"], row["match"] = None, "unmatched"
    for row in rows:
        base = row["base_model"]
        row["short_name"] = ("original" if row["is_original"] else
                             row["model"][len(base) + 1:] if base and row["model"].startswith(f"{base}-") else row["model"])
    notes.extend(_apply_overrides(rows, overrides))
    table = pl.DataFrame(rows, infer_schema_length=None)
    # Two variants of one original with the same label get the model name added.
    dup = pl.col("label").count().over(["dataset", "task", "base_model", "label"]) > 1
    table = table.with_columns(pl.when(dup).then(pl.format("{} ({})", "label", "model")).otherwise("label").alias("label"))
    return _with_order(table)


def _apply_overrides(rows: list[dict[str, Any]], overrides: dict[str, str]) -> list[str]:
    """Relabel the variants a key matches (most specific key first); notes on keys matching none."""
    used = set()
    for row in rows:
        for key in (row["model"], row["short_name"], row["method"], row["label"]):
            if key in overrides:
                row["label"] = overrides[key]
                used.add(key)
                break
    names = sorted({n for r in rows for n in (r["model"], r["short_name"], r["method"], r["derived_label"])})
    return [f"--label {key}=…: no variant is called {key!r} (a key is a model name, a study's compression name, a "
            f"method or a derived label: {', '.join(names)})" for key in sorted(set(overrides) - used)]


def _with_order(table: pl.DataFrame) -> pl.DataFrame:
    """Sort the variants and number their labels in the study's one fixed order (`order`): the
    original first, then pruned, quantized, distilled and other variants, each by label."""
    labels = table.select("label", "method").unique().to_dicts()
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    ordered = sorted(labels, key=lambda r: (rank.get(r["method"], len(METHOD_ORDER)), _natural(r["label"])))
    order = {}
    for r in ordered:
        order.setdefault(r["label"], len(order))
    table = table.with_columns(pl.col("label").replace_strict(order, return_dtype=pl.Int64).alias("order"))
    return table.sort(["dataset", "task", "base_model", "order", "model"], nulls_last=True)


def label_order(variants: pl.DataFrame) -> list[str]:
    """Every variant label of the study in its fixed order (tables, figure colours and legends)."""
    return variants.sort("order").select("label").unique(maintain_order=True)["label"].to_list()
