"""Property tests: any valid mapping round-trips byte for byte, and the check is neither lax nor strict."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.code import Renamer, check_rename, extract, validate

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"

EXTRA = {
    "c": """\
static int find(const char *s, char c, int from)
{
    int i = from, found = -1;
    while (s[i] != '\\0') {
        if (s[i] == c) { found = i; break; }
        i++;
    }
    return found; /* i is not used after the loop */
}
""",
    "java": """\
class Stack {
    private int[] items = new int[8];
    private int size;
    void push(int item) {
        if (size == items.length) {
            int[] bigger = new int[items.length * 2];
            System.arraycopy(items, 0, bigger, 0, size);
            items = bigger;
        }
        items[size++] = item;
    }
    int sum() {
        int total = 0;
        for (int i = 0; i < size; i++) total += items[i];
        try { return Math.addExact(total, 0); } catch (ArithmeticException e) { return -1; }
    }
}
""",
    "python": """\
def histogram(words, width=40):
    counts = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    top = max(counts.values()) if counts else 1
    lines = [f"{w:>10} {'#' * (c * width // top)}" for w, c in sorted(counts.items())]
    with open("/dev/null", "w") as sink:
        sink.write("\\n".join(lines))
    return lines
""",
}

PROGRAMS = [
    (language, (SAMPLES / sample).read_text())
    for language, sample in (("c", "checksum.c"), ("java", "WordCount.java"), ("python", "median.py"))
] + list(EXTRA.items())

new_names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@st.composite
def program_and_mapping(draw):
    language, program = draw(st.sampled_from(PROGRAMS))
    ext = extract(program, language)
    names = sorted(ext.identifiers)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    targets = draw(st.lists(new_names, min_size=len(chosen), max_size=len(chosen), unique=True))
    mapping = dict(zip(chosen, targets))
    assume(not validate(ext, mapping))
    return ext, mapping


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def test_every_program_has_identifiers_and_parses():
    for language, program in PROGRAMS:
        ext = extract(program, language)
        assert ext.parse_errors == 0 and len(ext.identifiers) >= 3, (language, program[:40])


@SETTINGS
@given(program_and_mapping())
def test_rename_then_rename_back_is_the_identity(case):
    ext, mapping = case
    # Renaming back is by name: a new name that another variable already has in a region of its
    # own (admitted: the two never meet) would take that variable back with it. Only fresh names
    # have an inverse (hypothesis found `bigger` -> `e` in a Java program with a `catch (e)`).
    assume(not set(mapping.values()) & set(ext.identifiers))
    renamed = Renamer(ext).apply(mapping)
    back = Renamer(extract(renamed, ext.language)).apply({new: old for old, new in mapping.items()})
    assert back.encode() == ext.source


@SETTINGS
@given(program_and_mapping())
def test_check_accepts_every_valid_rename(case):
    ext, mapping = case
    result = check_rename(ext, Renamer(ext).apply(mapping), mapping)
    assert result.ok, result.reasons


@SETTINGS
@given(program_and_mapping(), st.data())
def test_check_rejects_a_rename_that_misses_one_occurrence(case, data):
    ext, mapping = case
    name = data.draw(st.sampled_from(sorted(mapping)))
    spans = ext.identifiers[name].spans
    assume(len(spans) >= 2)
    skipped = data.draw(st.sampled_from(spans))
    text = ext.source
    # Apply the mapping everywhere except at one occurrence: the classic partial rename.
    edits = sorted(
        (s, e, mapping[n]) for n in mapping for (s, e) in ext.identifiers[n].spans if (s, e) != skipped
    )
    pieces, position = [], 0
    for start, end, new in edits:
        pieces += [text[position:start], new.encode()]
        position = end
    broken = b"".join(pieces) + text[position:]
    result = check_rename(ext, broken, mapping)
    assert not result.alpha_equivalent and not result.ok


@pytest.mark.parametrize("language, program", PROGRAMS)
def test_check_rejects_a_rename_that_swaps_two_variables(language, program):
    ext = extract(program, language)
    first, second = sorted(ext.identifiers)[:2]
    renamer = Renamer(ext)
    # Renaming both to each other's names is text-consistent but changes which variable is which.
    swapped = renamer.apply({first: second, second: first})
    assert not check_rename(ext, swapped, {}).alpha_equivalent
