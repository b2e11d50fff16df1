"""Clean performance: accuracy, precision, recall and F1 of a victim on a dataset split.

Metrics are computed with NumPy here (no scikit-learn at run time):

- **2 labels** – precision, recall and F1 of the positive class (label 1), `average="binary"`;
- **more labels** – the unweighted mean over the classes that occur in the gold labels or the
  predictions (`average="macro"`, scikit-learn's default label set); a class never predicted has
  precision 0, a class never present has recall 0 (scikit-learn's `zero_division=0`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UserError


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 and the confusion matrix (rows: gold, columns: predicted)."""
    gold = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if gold.shape != pred.shape:
        raise ValueError(f"{gold.shape[0]} gold labels but {pred.shape[0]} predictions")
    size = max(num_labels, int(gold.max(initial=-1)) + 1, int(pred.max(initial=-1)) + 1)
    confusion = np.zeros((size, size), dtype=np.int64)
    np.add.at(confusion, (gold, pred), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    actual = confusion.sum(axis=1).astype(np.float64)
    precision = np.divide(true_positive, predicted, out=np.zeros(size), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros(size), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(size), where=denominator > 0)
    n = int(gold.size)
    result: dict[str, Any] = {"n": n, "accuracy": float(true_positive.sum() / n) if n else 0.0}
    if num_labels == 2:
        result |= {"average": "binary", "positive_label": 1,
                   "precision": float(precision[1]), "recall": float(recall[1]), "f1": float(f1[1])}
    else:
        present = (predicted + actual) > 0
        result |= {"average": "macro", "positive_label": None,
                   "precision": float(precision[present].mean()) if present.any() else 0.0,
                   "recall": float(recall[present].mean()) if present.any() else 0.0,
                   "f1": float(f1[present].mean()) if present.any() else 0.0,
                   "classes_averaged": int(present.sum())}
    result["confusion"] = confusion[:num_labels, :num_labels].tolist() if size == num_labels else confusion.tolist()
    return result


@dataclass
class Evaluation:
    split: str
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"split": self.split, "metrics": self.metrics, "predictions": self.predictions}


def evaluate(victim, examples: Sequence, *, num_labels: int | None = None, split: str = "test",
             chunk: int = 512, progress: bool | None = None) -> Evaluation:
    """Run `victim` over `examples` (objects with `id`, `code`, `label`) and score the predictions."""
    from tqdm.auto import tqdm

    num_labels = num_labels or victim.num_labels
    if victim.num_labels != num_labels:
        raise UserError(f"the model has {victim.num_labels} output classes but the dataset has {num_labels} labels; "
                        "for a third-party checkpoint with another class order pass --label-map")
    if not examples:
        raise UserError(f"split {split!r} is empty: nothing to evaluate")
    bad = [ex.id for ex in examples if not 0 <= int(ex.label) < num_labels]
    if bad:
        raise UserError(f"examples {bad[:5]} have labels outside 0..{num_labels - 1}")
    rows: list[np.ndarray] = []
    bar = tqdm(total=len(examples), desc=f"eval {split}", unit="ex", disable=_disabled(progress), leave=False)
    for start in range(0, len(examples), chunk):
        batch = examples[start:start + chunk]
        rows.append(victim.predict_proba([ex.code for ex in batch]))
        bar.update(len(batch))
    bar.close()
    probs = np.concatenate(rows)
    predicted = probs.argmax(axis=1)
    gold = [int(ex.label) for ex in examples]
    predictions = [
        {"id": ex.id, "label": int(ex.label), "prediction": int(p), "probabilities": [float(x) for x in row]}
        for ex, p, row in zip(examples, predicted, probs)
    ]
    return Evaluation(split, classification_metrics(gold, predicted, num_labels), predictions)


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror}") from None


def _disabled(progress: bool | None) -> bool | None:
    """tqdm's `disable`: None = only when stderr is not a terminal."""
    return None if progress is None else not progress
