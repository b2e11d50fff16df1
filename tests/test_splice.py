"""Incremental tokenization (engine.splice): spliced ids are exactly a full tokenization's."""
from __future__ import annotations

import functools
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from bench import shared_data
from engine.code import Renamer, extract
from engine.models import train_bpe_tokenizer
from engine.splice import EditedCode, Splicer
from engine.victim import Victim, encode_codes, model_input_names

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [(p.read_text(encoding="utf-8"), {".c": "c", ".java": "java", ".py": "python"}[p.suffix])
           for p in sorted((ROOT / "data" / "samples").iterdir())]
# Names that stress the pre-tokenizer's classes: underscores (punctuation to it), digits, case
# changes, non-ASCII letters, and one-character names.
NAME_PARTS = ["x", "a", "Z", "_", "__", "1", "42", "tmp", "Value", "ü", "名", "ß", "i"]


def random_name(rng: random.Random, language: str) -> str:
    parts = [rng.choice(NAME_PARTS) for _ in range(rng.randint(1, 4))]
    name = "".join(parts)
    if name[0].isdigit():
        name = "v" + name
    if language != "python":  # C and Java sources stay ASCII here
        name = "".join(c if c.isascii() else "q" for c in name)
    return name


@functools.lru_cache(maxsize=None)
def python_programs(n: int) -> list[tuple[str, str]]:
    from engine.datasets.registry import load_dataset

    dataset = load_dataset("stdlib-attribution", progress=False)
    return [(example.code, "python") for example in dataset.split("test")[:n]]


def check_corpus(programs, tokenizer, max_length: int, trials: int, seed: int = 0) -> tuple[int, int]:
    """Random renames of every program; returns (spliced, fell back). Fails on any difference."""
    rng = random.Random(seed)
    names = model_input_names(tokenizer)
    splicer = Splicer(tokenizer, max_length, names)
    for code, language in programs:
        extraction = extract(code, language)
        renamer = Renamer(extraction)
        variables = list(extraction.identifiers)
        if not variables:
            continue
        for _ in range(trials):
            chosen = rng.sample(variables, rng.randint(1, min(3, len(variables))))
            mapping = {old: random_name(rng, language) for old in chosen}
            candidate = EditedCode(renamer.text, renamer.edits(mapping))
            assert candidate == renamer.apply(mapping)
            (spliced,) = splicer.encode([candidate])
            (full,) = encode_codes(tokenizer, [str(candidate)], max_length, names)
            if spliced is not None:
                assert spliced == full, (language, mapping)
    return splicer.spliced, splicer.fallbacks


@pytest.fixture(scope="module")
def tokenizer():
    corpus = [code for code, _ in SAMPLES + python_programs(150)]
    return train_bpe_tokenizer(corpus, vocab_size=800, max_length=128)


def test_the_scratch_tokenizer_family_is_covered_and_others_are_not(tokenizer):
    assert Splicer.supports(tokenizer)
    from engine.models import load_tokenizer, minilm_path

    assert not Splicer.supports(load_tokenizer(minilm_path()))  # WordPiece with a normalizer: tokenized in full


@pytest.mark.parametrize("max_length", [512, 48])  # whole programs, and truncated ones
def test_spliced_ids_equal_full_tokenization_on_random_renames(tokenizer, max_length):
    spliced, fallbacks = check_corpus(SAMPLES + python_programs(150), tokenizer, max_length, trials=12)
    assert fallbacks <= 0.01 * (spliced + fallbacks)  # the splice is the rule, the full path the exception


def test_any_word_replaced_anywhere_splices_exactly(tokenizer):
    """Fuzz beyond renames: random word-like spans anywhere (first and last word, keywords,
    inside strings and comments, neighbours merged into one region) get random replacements."""
    import re

    rng = random.Random(7)
    names = model_input_names(tokenizer)
    splicer = Splicer(tokenizer, 512, names)
    texts = ["x", "x y", "a_b(c1)", "  _q = r__\n\n\n"] + [code for code, _ in SAMPLES + python_programs(60)]
    checked = 0
    for text in texts:
        words = [m.span() for m in re.finditer(r"[^\W\d]\w*", text)]
        for _ in range(10):
            chosen = sorted(rng.sample(words, min(len(words), rng.randint(1, 6))))
            if rng.random() < 0.3:
                chosen = sorted(set(chosen) | {words[0], words[-1]})
            candidate = EditedCode(text, [(a, b, random_name(rng, "python")) for a, b in chosen])
            (spliced,) = splicer.encode([candidate])
            if spliced is not None:
                assert spliced == encode_codes(tokenizer, [str(candidate)], 512, names)[0], (text[:60], chosen)
                checked += 1
    assert checked >= 0.95 * 10 * len(texts)


@pytest.mark.shared_data
@pytest.mark.skipif(not shared_data.available(), reason="../shared/data is absent")
def test_spliced_ids_equal_full_tokenization_on_real_c_and_python():
    programs = [(code, language) for _, language, code in list(shared_data.devign_functions())[:150]]
    programs += [(code, language) for _, language, code in list(shared_data.gcj_programs())[:150]]
    tokenizer = train_bpe_tokenizer([code for code, _ in programs], vocab_size=1500, max_length=256)
    spliced, fallbacks = check_corpus(programs, tokenizer, 256, trials=6, seed=1)
    assert fallbacks <= 0.01 * (spliced + fallbacks)


def test_added_tokens_and_plain_strings_are_tokenized_in_full(tokenizer):
    code, language = SAMPLES[-1]
    renamer = Renamer(extract(code, language))
    variable = next(iter(renamer.extraction.identifiers))
    splicer = Splicer(tokenizer, 128, model_input_names(tokenizer))
    probe = EditedCode(renamer.text, renamer.edits({variable: tokenizer.unk_token}))
    assert splicer.encode([probe, str(probe), code]) == [None, None, None]
    assert splicer.fallbacks == 3 and splicer.spliced == 0
    unchanged = EditedCode(renamer.text, [])
    assert splicer.encode([unchanged]) == encode_codes(tokenizer, [code], 128, model_input_names(tokenizer))


def test_edited_code_is_its_text_everywhere():
    edited = EditedCode("int a = b;", [(4, 5, "x"), (8, 9, "yy")])
    assert edited == "int x = yy;" and hash(edited) == hash("int x = yy;")
    assert {edited: 1}["int x = yy;"] == 1
    again = pickle.loads(pickle.dumps(edited))
    assert again == edited and again.base == "int a = b;" and again.edits == edited.edits
    with pytest.raises(ValueError, match="sorted"):
        EditedCode("abc", [(2, 3, "x"), (0, 1, "y")])


def test_victim_gives_the_same_probabilities_spliced_or_not(tokenizer):
    import torch
    from transformers import RobertaForSequenceClassification

    from engine.models import scratch_config

    torch.manual_seed(0)
    config = scratch_config("tiny", vocab_size=len(tokenizer), max_length=128, tokenizer=tokenizer, num_labels=3)
    model = RobertaForSequenceClassification(config).eval()
    code, language = SAMPLES[-1]
    renamer = Renamer(extract(code, language))
    rng = random.Random(3)
    candidates = [EditedCode(renamer.text, renamer.edits({v: random_name(rng, language) for v in renamer.extraction.identifiers}))
                  for _ in range(8)]
    spliced = Victim(model, tokenizer, max_length=128, batch_size=4)
    full = Victim(model, tokenizer, max_length=128, batch_size=4, splice=False)
    np.testing.assert_array_equal(spliced.predict_proba(candidates), full.predict_proba([str(c) for c in candidates]))
    assert spliced.splicer.spliced == 8 and full.splicer is None
    assert all(type(key) is str for key in spliced._cache)  # the cache keeps text, not edit histories
    assert spliced.describe()["splice"] is True and full.describe()["splice"] is False
