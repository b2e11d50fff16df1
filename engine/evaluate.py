"""Clean performance of a victim on a dataset split (metrics: `engine.common.metrics`)."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.common.metrics import classification_metrics
from engine.errors import UserError


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
