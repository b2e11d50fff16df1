"""Integration: every real Devign function and GCJ program round-trips under a random valid
mapping of all its renameable identifiers (skipped when ../shared/data is absent)."""
from __future__ import annotations

import random
import statistics

import pytest

from bench import shared_data
from engine.code import Renamer, check_rename, extract, validate

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not shared_data.available(), reason="../shared/data is absent"),
]

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "be", "qu"]


def fresh_mapping(ext, rng: random.Random) -> dict[str, str]:
    """A random valid mapping of every renameable identifier (names never seen in the program)."""
    mapping: dict[str, str] = {}
    used = set(ext.names_in_program)
    for name in ext.identifiers:
        while True:
            new = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            if new not in used:
                break
        used.add(new)
        mapping[name] = new
    assert validate(ext, mapping) == []
    return mapping


def round_trip_all(programs, rng):
    clean, counts, failures = 0, [], []
    for example_id, language, code in programs:
        ext = extract(code, language)
        clean += ext.parse_errors == 0
        counts.append(len(ext.identifiers))
        mapping = fresh_mapping(ext, rng)
        renamed = Renamer(ext).apply(mapping)
        result = check_rename(ext, renamed, mapping)
        back = Renamer(extract(renamed, language)).apply({v: k for k, v in mapping.items()})
        if not (result.parses and result.alpha_equivalent and back.encode() == ext.source):
            failures.append((example_id, result.reasons[:1]))
    return clean, counts, failures


@pytest.mark.parametrize(
    "corpus, reader, expected_count, min_clean_share, min_mean_identifiers",
    [
        ("devign", shared_data.devign_functions, 400, 0.80, 4.0),
        ("gcj", shared_data.gcj_programs, 660, 0.95, 8.0),
    ],
)
def test_every_program_round_trips(corpus, reader, expected_count, min_clean_share, min_mean_identifiers):
    programs = list(reader())
    assert len(programs) == expected_count
    clean, counts, failures = round_trip_all(programs, random.Random(7))
    share = clean / len(programs)
    mean = statistics.mean(counts)
    print(f"\n{corpus}: {len(programs)} programs, {share:.1%} parse without errors, "
          f"{mean:.2f} renameable identifiers on average, {len(failures)} round-trip failures")
    assert failures == []
    assert share >= min_clean_share
    assert mean >= min_mean_identifiers
