"""Loaders on the real files in ../shared/data (skipped when absent)."""
from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from engine.datasets.base import SPLITS
from engine.datasets.registry import load_dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEVIGN = SHARED_DATA / "devign" / "test_subs_0_400.jsonl"
GCJ = SHARED_DATA / "gcjpy"

pytestmark = pytest.mark.shared_data


@pytest.mark.skipif(not DEVIGN.is_file(), reason="../shared/data/devign is absent")
def test_devign_real_file():
    ds = load_dataset("devign", DEVIGN)
    examples = [ex for split in SPLITS for ex in ds.splits[split]]
    assert len(examples) == 400 and len({ex.id for ex in examples}) == 400
    assert ds.manifest["with_substitutes"] == 400 and ds.manifest["skipped"]["count"] == 0
    assert [len(ds.splits[s]) for s in SPLITS] == [320, 40, 40]  # one file: split 80/10/10
    for ex in examples:
        subs = ex.meta["substitutes"]
        assert isinstance(subs, dict)
        assert all(isinstance(name, str) and isinstance(c, list) for name, c in subs.items())
        assert ex.language == "c" and ex.label in (0, 1) and ex.code.strip()
    assert Counter(ex.label for ex in examples)[1] > 0
    assert sum(bool(ex.meta["substitutes"]) for ex in examples) > 300
    # stratified: the vulnerable share of each split is within one example of the whole's
    share = sum(ex.label for ex in examples) / 400
    for split in SPLITS:
        labels = [ex.label for ex in ds.split(split)]
        assert abs(sum(labels) - share * len(labels)) < 1


@pytest.mark.skipif(not (GCJ / "train.txt").is_file(), reason="../shared/data/gcjpy is absent")
def test_gcj_real_files():
    ds = load_dataset("gcj", GCJ)
    examples = [ex for split in SPLITS for ex in ds.splits[split]]
    assert len(examples) == 660 and ds.num_labels == 66
    assert ds.label_names[:2] == ["alexamici", "nwin"]
    assert [len(ds.splits[s]) for s in SPLITS] == [396, 132, 132]  # test held out of train
    assert ds.manifest["source_splits"] == {"train": 528, "valid": 132}
    assert "held out of train" in ds.manifest["splits_made"]["test"]
    for split in SPLITS:  # every author in every split
        assert len({ex.label for ex in ds.split(split)}) == 66
    # decoded programs: real newlines, no line that starts with the encoder's two extra spaces
    # everywhere, and the escapes inside one-line string literals kept
    assert all("\n" in ex.code and "\\n <CODESPLIT>" not in ex.code for ex in examples)
    assert any("\\n'" in ex.code or '\\n"' in ex.code for ex in examples)
    parsed = 0
    for ex in examples:  # mostly Python 2: count what Python 3 accepts, for the record
        try:
            ast.parse(ex.code)
            parsed += 1
        except SyntaxError:
            pass
    assert parsed > 100
    assert load_dataset("gcj", GCJ).fingerprint == ds.fingerprint
    assert load_dataset("gcj", GCJ, seed=1).fingerprint != ds.fingerprint
