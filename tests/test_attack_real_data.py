"""Attacks on real third-party code (../shared/data Devign functions with ALERT's substitutes):
every adversarial example is alpha-equivalent and re-parses, and a lone function that does not
compile on its own still gets a definite (differential) compile verdict."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from attack_support import StubVictim
from bench import shared_data
from engine.attacks import registry
from engine.attacks.environment import make_environment
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions
from engine.code import check_rename, extract
from engine.common.logschema import validate_record

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not shared_data.available(), reason="../shared/data is absent"),
]


WORD = re.compile(r"[A-Za-z_]\w*")


def mean_word_length(code: str) -> float:
    words = WORD.findall(code)
    return sum(map(len, words)) / max(1, len(words))


class NameLengthVictim(StubVictim):
    """Predicts `label` while the program's words are shorter than `threshold` on average, else the other label."""

    def __init__(self, label: int, threshold: float) -> None:
        super().__init__()
        self.label, self.threshold = label, threshold

    def row(self, code: str) -> np.ndarray:
        p = 0.9 if mean_word_length(code) < self.threshold else 0.1
        return np.array([p, 1 - p]) if self.label == 0 else np.array([1 - p, p])


def test_mhm_ns_with_devign_substitutes_gives_valid_c_renames(tmp_path):
    from engine.datasets.registry import load_dataset

    dataset = load_dataset("devign", shared_data.DEVIGN)
    split = next(s for s in ("test", "train") if dataset.splits.get(s))
    label = dataset.split(split)[0].label
    examples = [e for e in dataset.split(split) if e.meta.get("substitutes") and e.label == label][:4]
    dataset.splits = {split: examples}
    victim = NameLengthVictim(label, max(mean_word_length(e.code) for e in examples) + 0.2)
    params = registry.params_from_args("mhm-ns", iterations=20, candidates=10)
    env = make_environment(dataset, victim, substitutes="dataset", split=split)
    search = registry.build_search("mhm-ns", params, env)
    runner = AttackRunner(victim=victim, dataset=dataset, search=search, out=tmp_path,
                          options=RunOptions(attack="mhm-ns", params=params, split=split, progress=False,
                                             substitutes="dataset", tests_check=False))
    runner.run()
    records = read_records(runner.records_path)
    assert len(records) == len(examples)
    produced = [r for r in records if r["adversarial_code"] is not None]
    assert produced, [r["status"] for r in records]
    for record in records:
        validate_record(record)
    for record in produced:
        check = check_rename(extract(record["original_code"], "c"), record["adversarial_code"], record["rename_map"])
        assert check.alpha_equivalent and check.parses
        assert record["valid_alpha_equivalent"] is True and record["valid_parses"] is True
        if shutil.which("gcc"):
            assert record["valid_compiles"] is True and record["compile_differential"] is not None
        else:
            assert record["valid_compiles"] is None and "compiles: gcc not found" in record["validity_reasons"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_renamed_devign_functions_get_a_definite_compile_verdict():
    """Issue 13's target: a definite verdict for at least 95 % (every variable renamed to a fresh name)."""
    from engine.attacks.validity import ValidityChecker
    from engine.code import Renamer, validate

    checker = ValidityChecker(tests=False)
    verdicts = []
    for _, language, code in list(shared_data.devign_functions())[:40]:
        extraction = extract(code, language)
        mapping = {name: f"zq{i}_{name}" for i, name in enumerate(extraction.identifiers)}
        if not mapping or validate(extraction, mapping):
            continue
        result = checker.check(extraction, Renamer(extraction).apply(mapping), mapping, 0)
        verdicts.append((result.compiles, result.compile_differential))
    definite = [ok for ok, _ in verdicts if ok is not None]
    assert len(verdicts) >= 35 and len(definite) >= 0.95 * len(verdicts)
    assert sum(differential is True for _, differential in verdicts) >= 0.8 * len(verdicts)  # most need the harness
    assert sum(definite) >= 0.9 * len(definite)
