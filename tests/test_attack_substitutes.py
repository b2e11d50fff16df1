"""The substitutes stage with a tiny masked LM: valid names only, resumable, keyed, read by attacks."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from attack_support import KeyVictim, key_dataset
from engine.attacks.recipes.alert import ALERT, ALERTParams
from engine.attacks.base import AttackContext, example_rng
from engine.attacks.substitutes import (CachedSubstitutes, MaskedLM, SubstituteConfig, beam_sequences, build_split,
                                        cache_key, from_dataset_field, load_substitutes, open_cache, read_lines)
from engine.code import extract, validate
from engine.datasets.base import Example
from engine.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = SubstituteConfig(top_k=20, keep=8, batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory, one_torch_thread):
    import torch

    from engine.models import build_masked_lm, save_model

    torch.manual_seed(0)
    texts = [e.code for split in key_dataset(6).splits.values() for e in split] * 4
    model, tokenizer, _ = build_masked_lm("tiny", texts=texts, max_length=64, vocab_size=320)
    directory = tmp_path_factory.mktemp("mlm")
    save_model(model, tokenizer, directory)
    return directory


@pytest.fixture(scope="module")
def mlm(mlm_dir):
    return MaskedLM(mlm_dir, device="cpu", max_length=64)


def test_beam_finds_the_best_sequences():
    rng = np.random.default_rng(0)
    table = np.log(rng.dirichlet(np.ones(6), size=3))
    brute = sorted(((seq, sum(table[i, t] for i, t in enumerate(seq))) for seq in itertools.product(range(6), repeat=3)),
                   key=lambda item: -item[1])[:4]
    got = beam_sequences(table, 6)[:4]  # width = vocabulary: exact
    assert [s for s, _ in got] == [s for s, _ in brute]


def test_generated_names_are_valid_ranked_and_resumable(tmp_path, mlm):
    dataset = key_dataset(4)
    path = tmp_path / "test.jsonl"
    first = build_split(mlm, dataset.split("test"), "python", path, CONFIG, progress=False)
    assert first["programs"] == 4 and first["forward_passes"] > 0
    rows = read_lines(path)
    assert set(rows) == {e.id for e in dataset.split("test")}
    codes = {e.id: e.code for e in dataset.split("test")}
    kept = 0
    for key, row in rows.items():
        extraction = extract(codes[key], "python")
        assert set(row["substitutes"]) <= set(extraction.identifiers)
        for variable, names in row["substitutes"].items():
            assert len(names) <= CONFIG.keep and len(set(names)) == len(names)
            assert all(validate(extraction, {variable: name}) == [] for name in names)
            kept += len(names)
    assert kept > 0
    # a rerun does nothing; a torn last line is cut and that program made again
    assert build_split(mlm, dataset.split("test"), "python", path, CONFIG, progress=False)["programs"] == 0
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind("\n") + 1] + '{"id": "ex0')
    again = build_split(mlm, dataset.split("test"), "python", path, CONFIG, progress=False)
    assert again["programs"] == 1 and again["already_done"] == 3
    assert read_lines(path) == rows  # deterministic: the same names as before


def test_cache_key_mismatch_is_a_user_error(tmp_path, mlm):
    key = cache_key("data1", mlm.fingerprint, CONFIG, "m", 64)
    open_cache(tmp_path, key, {})
    open_cache(tmp_path, key, {})  # the same key: reused
    with pytest.raises(UserError, match="dataset_fingerprint"):
        open_cache(tmp_path, cache_key("data2", mlm.fingerprint, CONFIG, "m", 64), {})


def test_alert_reads_the_cache_and_defeats_the_key_victim(tmp_path, mlm):
    dataset = key_dataset(3)
    build_split(mlm, dataset.split("test"), "python", tmp_path / "test.jsonl", CONFIG, progress=False)
    source = load_substitutes(tmp_path, "test")
    assert isinstance(source, CachedSubstitutes)
    victim = KeyVictim()
    for example in dataset.split("test"):
        extraction = extract(example.code, "python")
        ctx = AttackContext(example=example, code=example.code, language="python", extraction=extraction,
                            true_label=0, victim=victim, rng=example_rng(0, example.id), budget=None, queries_used=1,
                            original_probs=victim.predict_proba([example.code])[0])
        names = source.candidates(ctx, "secret", 30)
        if not names:
            continue  # the tiny random MLM proposed nothing valid for it
        outcome = ALERT(ALERTParams(), source).attack(ctx)
        assert outcome.success and outcome.mapping["secret"] in names


def test_dataset_substitutes_are_filtered_by_the_language_layer(tmp_path):
    code = "int f(int a, int b) { int len = a + b; return len; }"
    example = Example("d1", code, 0, "c", {"substitutes": {"a": [" x", "b", "while", "x", "y2"], "b": ["a", "z"],
                                                            "f": ["g"]}})
    facts = from_dataset_field([example], "c", tmp_path / "test.jsonl")
    (row,) = read_lines(tmp_path / "test.jsonl").values()
    assert row["substitutes"] == {"a": ["x", "y2"], "b": ["z"]}  # `f` is a function: not renameable here
    assert facts["names_offered"] == 6 and facts["names_accepted"] == 3


def test_missing_split_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="engine substitutes"):
        load_substitutes(tmp_path, "valid")


def test_command_writes_a_keyed_cache(tmp_path, mlm_dir, capsys):
    from engine.cli import main

    data = tmp_path / "data.jsonl"
    with open(data, "w") as handle:
        for example in key_dataset(4).split("test") + key_dataset(4).split("train"):
            handle.write(json.dumps({"code": example.code, "label": example.label}) + "\n")
    out = tmp_path / "subs"
    arguments = ["substitutes", "--mlm", str(mlm_dir), "--data-format", "jsonl", "--data", str(data),
                 "--columns", "code=code,label=label", "--language", "python", "--out", str(out), "--top-k", "10",
                 "--keep", "5", "--device", "cpu", "--no-progress", "--split", "test"]
    assert main(arguments) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["splits"]["test"]["programs"] >= 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["key"]["parameters"] == {"top_k": 10, "keep": 5, "max_subwords": 4, "max_length": 64}
    assert main(arguments[:2] + [str(tmp_path / "nowhere")] + arguments[3:]) == 2
    assert "cannot load" in capsys.readouterr().err
    assert main(arguments[:-1] + ["nosuch"]) == 2
