"""The full humaneval-defects build: 164 problems, every test run in the sandbox (~30 s on 2 cores).

Kept in its own file so the other dataset test files stay under 30 s each; not marked slow
because it takes well under a minute.
"""
from __future__ import annotations

import time

from engine.datasets.base import SPLITS
from engine.datasets.registry import build_builtin, load_dataset


def test_full_humaneval_defects_build(tmp_path, monkeypatch):
    monkeypatch.setenv("CRT_CACHE_DIR", str(tmp_path))
    started = time.perf_counter()
    pool = build_builtin("humaneval-defects", progress=False)
    seconds = time.perf_counter() - started
    manifest = pool.manifest
    assert manifest["problems"] == 164 and manifest["problems_dropped"] == []
    counts = manifest["label_counts"]
    assert counts["correct"] >= 164 and counts["buggy"] > 164
    assert manifest["equivalent_mutants"] == counts["correct"] - 164
    assert manifest["mutants"] + 164 == len(pool.records) == manifest["test_runs"]
    assert set(manifest["mutants_by_operator"]) == {"comparison", "off_by_one", "arithmetic", "negate_condition", "swap_args"}
    print(f"humaneval-defects: {len(pool.records)} examples, {counts}, "
          f"{manifest['equivalent_mutants']} equivalent mutants, {manifest['timeouts']} timeouts, built in {seconds:.1f} s")

    ds = load_dataset("humaneval-defects", seed=0, progress=False)  # from the cache
    assert ds.manifest["pool_fingerprint"] == manifest["pool_fingerprint"]
    owner = {}
    for split in SPLITS:
        assert ds.split(split)
        for ex in ds.split(split):
            assert owner.setdefault(ex.meta["task_id"], split) == split
    assert len(owner) == 164
