"""Which model is which: originals, their compressed variants, and what the manifests say about them.

A *variant* is one (dataset, task, model, compression) seen in the records. The *original* of a
comparison is a variant whose compression is "none". A compressed variant is matched to its
original (the `base_model` of its row) by, in order: the manifest's `compression.parent`
fingerprint equal to an original's `model.fingerprint`; an original whose model name is a
prefix of the variant's; the only original with the same dataset and task. A variant that none
of these match keeps `base_model` null and is reported as unmatched, never guessed.
"""
from __future__ import annotations

from typing import Any

import polars as pl

from engine.evaluate import classification_metrics

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
_PROVENANCE_KEYS = frozenset({"method", "parent", "parent_path", "parent_compression", "report", "serialization"})


def compression_label(compression: str, manifest_compression: Any) -> str:
    """"prune sparsity=0.5" from the manifest's compression block, else the record's string."""
    if not isinstance(manifest_compression, dict):
        return compression
    method = str(manifest_compression.get("method") or compression)
    params = [f"{k}={v}" for k, v in sorted(manifest_compression.items())
              if k not in _PROVENANCE_KEYS and isinstance(v, (str, int, float, bool))]
    return " ".join([method, *params])


def variant_table(logs: Logs) -> pl.DataFrame:
    """One row per variant: label, base model, manifest facts and clean performance."""
    records = logs.records
    seen = records.group_by(VARIANT_KEY, maintain_order=True).agg(
        pl.col("language").first(), pl.col("run").unique().alias("runs"))
    rows = []
    for row in seen.iter_rows(named=True):
        manifest = next((logs.manifests[r] for r in sorted(row["runs"]) if r in logs.manifests
                         and _get(logs.manifests[r], "model", "name") in (None, row["model"])), None)
        model = _get(manifest, "model") or {}
        compression = _get(model, "compression")
        method = compression.get("method") if isinstance(compression, dict) else None
        entry = {k: row[k] for k in VARIANT_KEY} | {
            "language": row["language"],
            "is_original": (method or row["compression"]) == "none",
            "label": compression_label(row["compression"], compression),
            "fingerprint": _get(model, "fingerprint"),
            "parent": _get(compression, "parent") if isinstance(compression, dict) else None,
        }
        for name in MODEL_FIELDS:
            entry[name] = _number(_get(model, name))
        metrics = _get(model, "test_metrics")
        for name in CLEAN_METRICS:
            entry[name] = _number(_get(metrics, name))
        entry["clean_source"] = "manifest" if entry["accuracy"] is not None else None
        rows.append(entry)
    table = pl.DataFrame(rows, infer_schema_length=None)
    table = _fill_clean_from_records(table, records)
    return _match_originals(table)


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


def _match_originals(table: pl.DataFrame) -> pl.DataFrame:
    rows = table.to_dicts()
    originals = [r for r in rows if r["is_original"]]
    for row in rows:
        if row["is_original"]:
            row["base_model"], row["match"] = row["model"], "original"
            continue
        same = [o for o in originals if o["dataset"] == row["dataset"] and o["task"] == row["task"]]
        by_parent = [o for o in same if row["parent"] and o["fingerprint"] == row["parent"]]
        by_prefix = sorted((o for o in same if row["model"].startswith(o["model"])), key=lambda o: -len(o["model"]))
        if by_parent:
            row["base_model"], row["match"] = by_parent[0]["model"], "parent fingerprint"
        elif by_prefix:
            row["base_model"], row["match"] = by_prefix[0]["model"], "model-name prefix"
        elif len(same) == 1:
            row["base_model"], row["match"] = same[0]["model"], "only original of the dataset"
        else:
            row["base_model"], row["match"] = None, "unmatched"
    table = pl.DataFrame(rows, infer_schema_length=None)
    # Two variants of one original with the same label (no manifests) get the model name added.
    dup = pl.col("label").count().over(["dataset", "task", "base_model", "label"]) > 1
    table = table.with_columns(pl.when(dup).then(pl.format("{} ({})", "label", "model")).otherwise("label").alias("label"))
    order = pl.col("is_original").not_()
    return table.sort(["dataset", "task", "base_model", order, "label"], nulls_last=True)
