"""Synthetic attack logs with the real schema, for tests and `bench/analysis.py`.

Vectorised with NumPy and written with polars, so a million records take seconds. Every record
passes `engine.common.logschema.validate_record`. Compressed variants are made more vulnerable than
their original by `vulnerability` (added to the success probability) so that the statistics
have something to find; outcomes are correlated across variants through a per-example latent
difficulty, as real paired data is.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from engine.common.logschema import FIELDS, SCHEMA_VERSION

PROGRAM = "def {name}(values):\n    total = 0\n    for item in values:\n        total += item\n    return total\n"


@dataclass
class Variant:
    model: str
    method: str = "none"  # none, prune, quantize, distill, harden
    params: dict = field(default_factory=dict)
    accuracy: float = 0.85
    vulnerability: float = 0.0  # added to the attack's success probability
    size_mb: float = 500.0
    parent: str | None = None  # the model it was made from (default: the study's original), e.g. a hardened variant's


@dataclass
class Study:
    dataset: str = "toy-defect"
    task: str = "defect"
    language: str = "python"
    labels: int = 2
    examples: int = 200
    attacks: tuple[str, ...] = ("mhm", "alert")
    seeds: tuple[int, ...] = (0,)
    variants: list[Variant] = field(default_factory=lambda: [
        Variant("tiny-model"),
        Variant("tiny-model-prune50", "prune", {"sparsity": 0.5}, 0.82, 0.12, 250.0),
        Variant("tiny-model-int8", "quantize", {"bits": 8}, 0.84, 0.04, 125.0),
    ])
    base_success: float = 0.35
    budget: int = 500
    code_chars: int = 0  # pad programs to about this many characters (benchmarks)
    program: str = PROGRAM  # "{name}" is replaced by the function name


def fingerprint(name: str) -> str:
    return "fp-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def study_records(study: Study, variant: Variant, attack: str, seed: int, rng: np.random.Generator,
                  latent: np.ndarray, labels: np.ndarray) -> pl.DataFrame:
    n = study.examples
    u = rng.random((8, n))
    # latent[0]: difficulty; latent[1]: how easily the example's prediction flips. Mostly shared by
    # all variants (as in real paired data), partly fresh noise.
    correct = u[0] < np.clip(variant.accuracy + 0.3 * (latent[0] - 0.5), 0.0, 1.0)
    identifiers = np.where(u[1] < 0.04, 0, 1 + (u[2] * 9).astype(np.int64))
    error = u[7] > 0.995
    success_p = np.clip(study.base_success + variant.vulnerability, 0.0, 1.0)
    success = np.where(u[3] < 0.8, latent[1], u[4]) < success_p
    status = np.where(error, "error", np.where(~correct, "skipped_misclassified",
                      np.where(identifiers == 0, "skipped_no_identifiers", np.where(success, "success", "failed"))))
    attacked = (status == "success") | (status == "failed")
    is_success = status == "success"
    prediction = np.where(correct, labels, (labels + 1) % study.labels)
    queries = np.where(is_success, np.minimum(study.budget, np.exp(2 + 3 * u[5]).astype(np.int64) + 1),
                       np.where(attacked, study.budget, 0))
    changed = np.where(is_success, np.maximum(1, (identifiers * u[6]).astype(np.int64)), np.where(attacked, identifiers, 0))
    tokens = 40 + (u[7] * 200).astype(np.int64)
    pad = "#" * max(0, study.code_chars - len(study.program))
    probability = 0.5 + 0.5 * u[5]
    base = pl.DataFrame({
        "true_label": labels, "prediction": prediction, "status": status, "error": error,
        "attacked": attacked, "success": is_success, "identifiers": identifiers, "changed": changed,
        "tokens": tokens, "queries": queries, "probability": probability, "parses": u[1] > 0.01, "compiles": u[2] > 0.03,
        "index": np.arange(n),
    })
    when = lambda condition, value: pl.when(condition).then(value)  # noqa: E731 - null otherwise
    ok, att, succ = ~pl.col("error"), pl.col("attacked"), pl.col("success")
    name = pl.col("index").cast(pl.String)
    head, tail = study.program.split("{name}", 1)
    program = lambda prefix: pl.concat_str(pl.lit(head + prefix), name, pl.lit(tail + pad))  # noqa: E731
    frame = base.select(
        pl.lit(SCHEMA_VERSION).alias("schema_version"), pl.concat_str(pl.lit(f"{study.dataset}-"), name).alias("example_id"), pl.lit(study.dataset).alias("dataset"),
        pl.lit(study.task).alias("task"), pl.lit(study.language).alias("language"), pl.lit(variant.model).alias("model"),
        pl.lit(variant.method).alias("compression"), pl.lit(attack).alias("attack"), pl.lit(seed).alias("seed"),
        "true_label", when(ok, pl.col("prediction")).alias("original_prediction"),
        when(ok, pl.col("probability")).alias("original_probability"), "status",
        when(~ok, pl.lit("synthetic error")).when(pl.col("status") == "skipped_misclassified")
        .then(pl.lit("misclassified")).alias("reason"),
        when(att, pl.when(succ).then((pl.col("true_label") + 1) % study.labels).otherwise(pl.col("true_label"))).alias("adversarial_prediction"),
        when(att, pl.col("probability") * pl.when(succ).then(0.3).otherwise(0.8)).alias("adversarial_probability"),
        program("f").alias("original_code"), when(succ, program("g")).alias("adversarial_code"),
        when(succ, pl.concat_str(pl.lit('{"f'), name, pl.lit('": "g'), name, pl.lit('"}'))).alias("rename_map"),
        "identifiers", when(att, pl.col("changed")).alias("identifiers_changed"),
        when(att, pl.lit(0)).alias("structure_edits"), "tokens", when(att, pl.col("changed") * 3).alias("tokens_changed"),
        "queries", (pl.col("queries") * 0.8).cast(pl.Int64).alias("forward_passes"),
        (pl.col("queries") * 0.002 + 0.01).alias("wall_time_s"), (pl.col("queries") * 0.0015).alias("victim_time_s"),
        when(succ, pl.col("parses")).alias("valid_parses"), when(succ, pl.lit(True)).alias("valid_alpha_equivalent"),
        when(succ, pl.col("compiles")).alias("valid_compiles"), pl.lit(None, pl.Boolean).alias("valid_tests_pass"),
        when(succ, pl.when(pl.col("compiles")).then(pl.lit([], pl.List(pl.String)))
             .otherwise(pl.lit(["compiles: synthetic compiler error"], pl.List(pl.String)))).alias("validity_reasons"),
    )
    unset = [f.name for f in FIELDS if f.name not in frame.columns]  # optional fields nothing above simulates: null
    return frame.with_columns(pl.lit(None).alias(name) for name in unset)


def manifest(study: Study, variant: Variant, attack: str, seed: int, original: Variant) -> dict:
    parent = None if variant.method == "none" else fingerprint(variant.parent or original.model)
    return {
        "schema_version": SCHEMA_VERSION,
        "attack": {"name": attack, "params": {"budget": study.budget}},
        "model": {
            "name": variant.model, "path": f"runs/{variant.model}", "fingerprint": fingerprint(variant.model),
            "compression": {"method": variant.method, **variant.params, "parent": parent},
            "size_mb": variant.size_mb, "parameters": int(variant.size_mb * 250_000),
            "nonzero_parameters": int(variant.size_mb * 250_000 * (0.5 if variant.method == "prune" else 1.0)),
            "latency_ms_batch1": round(variant.size_mb / 20, 2), "throughput_per_s": round(20_000 / variant.size_mb, 1),
            "test_metrics": {"accuracy": variant.accuracy, "precision": variant.accuracy - 0.02,
                             "recall": variant.accuracy + 0.01, "f1": variant.accuracy - 0.005},
        },
        "dataset": {"name": study.dataset, "split": "test", "fingerprint": "fp-data", "task": study.task,
                    "language": study.language},
        "seed": seed, "versions": {"engine": "synthetic"}, "machine": {"cpu": "synthetic"},
    }


def write_study(root: str | Path, study: Study, random_seed: int = 0) -> list[Path]:
    """Write one run directory (manifest.json + records.jsonl) per variant x attack x seed."""
    root = Path(root)
    rng = np.random.default_rng(random_seed)
    latent = rng.random((2, study.examples))
    labels = rng.integers(0, study.labels, study.examples)
    written = []
    for v, variant in enumerate(study.variants):
        for attack in study.attacks:
            for seed in study.seeds:
                run = root / f"run-{study.task}-{v}-{attack}-s{seed}"
                run.mkdir(parents=True, exist_ok=True)
                frame = study_records(study, variant, attack, seed, rng, latent, labels)
                frame.write_ndjson(run / "records.jsonl")
                (run / "manifest.json").write_text(json.dumps(manifest(study, variant, attack, seed, study.variants[0]), indent=1))
                written.append(run)
    return written


# --------------------------------------------------------------------------- a paper-sized grid

GRID_TASKS = (("devign", "defect", "c", 2), ("bigclonebench", "clone", "java", 2), ("gcj", "authorship", "python", 10))
GRID_MODELS = (("codebert", 476.0), ("graphcodebert", 476.5), ("unixcoder", 481.2))
GRID_ATTACKS = ("mhm", "alert", "wir-random", "coda")


def grid_variants(base: str, size: float, k: int) -> list[Variant]:
    """An original and its pruned, int8 and distilled variants, configured as `engine compress`
    records them; how much more vulnerable each is varies with the model (index k) so that some
    comparisons are significant and some are not."""
    return [
        Variant(base, size_mb=size),
        Variant(f"{base}-prune", "prune", {"ratio": 0.5, "scope": "linear", "criterion": "global L1 magnitude",
                                           "structured": None}, 0.80, 0.04 * k, size * 0.62),
        Variant(f"{base}-int8", "quantize", {"dtype": "int8", "scheme": "dynamic"}, 0.84, 0.01, size / 3.2),
        Variant(f"{base}-distill", "distill", {"target_mb": 3.0, "temperature": 2.0, "hard_weight": 0.0},
                0.74, 0.06 + 0.04 * k, 3.1),
    ]


def write_grid(root: str | Path, examples: int = 150, random_seed: int = 0) -> list[Path]:
    """A 3 tasks x 3 models x 4 variants x 4 attacks study (144 runs): where a real study's
    report layout is tested."""
    written = []
    for i, (dataset, task, language, labels) in enumerate(GRID_TASKS):
        for k, (base, size) in enumerate(GRID_MODELS):
            study = Study(dataset=dataset, task=task, language=language, labels=labels, examples=examples,
                          attacks=GRID_ATTACKS, variants=grid_variants(base, size, k), base_success=0.3 + 0.1 * i)
            written += write_study(Path(root) / f"{task}-{base}", study, random_seed=random_seed + 10 * i + k)
    return written


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write synthetic attack logs: the 3 x 3 x 4 x 4 grid study.")
    parser.add_argument("out", help="directory to write the run folders into")
    parser.add_argument("--examples", type=int, default=150, help="examples per run (default 150)")
    args = parser.parse_args()
    print(f"{len(write_grid(args.out, args.examples))} runs written under {args.out}")
