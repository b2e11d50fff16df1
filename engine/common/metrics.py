"""Classification metrics: accuracy, precision, recall and F1 from gold labels and predictions.

`engine` writes them into model manifests (`engine eval`, `engine compress`); `analysis`
recomputes them from the records' predictions, so both compute them with this one function.
Computed with NumPy (no scikit-learn at run time):

- **2 labels** – precision, recall and F1 of the positive class (label 1), `average="binary"`;
- **more labels** – the unweighted mean over the classes that occur in the gold labels or the
  predictions (`average="macro"`, scikit-learn's default label set); a class never predicted has
  precision 0, a class never present has recall 0 (scikit-learn's `zero_division=0`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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
