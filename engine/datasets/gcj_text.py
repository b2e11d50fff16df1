"""Decode the one-line-per-program text of the Google Code Jam Python authorship data.

Each line of ``gcjpy/train.txt`` and ``valid.txt`` is ``CODE <CODESPLIT> LABEL``. CODE is a whole
program on one line: every line break was written as the two characters backslash-n and every
line after the first was given two extra spaces of indentation. Backslashes were *not* escaped,
so a ``\\n`` escape sequence inside a string literal (``'Case #%d: %s\\n'``) looks exactly like a
line break. Replacing every backslash-n by a newline, as the reference attack scripts do, splits
such literals over two lines and breaks the program.

`decode_gcj_code` walks the text with the lexical state of Python source (code, comment,
single-quoted string, triple-quoted string) and decides each backslash-n by where it stands:

- in code, it is a line break (code has no other use for a backslash followed by ``n``; a line
  continuation ``\\`` before a break shows up as ``\\\\n`` and decodes to backslash + newline);
- inside a one-line string literal it is an escape sequence and stays as the two characters
  (a real newline cannot occur in such a literal);
- inside a comment or a triple-quoted string it can be either; it is a line break when what
  follows is the indentation every encoded line starts with (a space or tab), another
  backslash-n, or the end of the text, and an escape sequence otherwise. In a triple-quoted
  string the two readings denote the same string value, so the choice only matters for layout.

Backslash escapes inside strings are skipped as pairs (``'\\\\'`` or ``'\\''`` do not end the
literal); string prefixes (``r``, ``u``, ``b``, ``f`` and their combinations) need no special
handling because a quote preceded by a backslash never ends a literal, raw or not.

Then the two spaces added to every line after the first are removed (the first line has none,
so `textwrap.dedent` alone would find no common indentation and remove nothing). Without this
step the second line of every program is an unexpected indent and no program parses.
"""
from __future__ import annotations

import re

# What the encoding adds in front of every line after the first.
INDENT = "  "

_CODE_STOP = re.compile(r"""[\\#'"]""")
_STRING_STOP = {
    "'": re.compile(r"[\\']"),
    '"': re.compile(r'[\\"]'),
}


def decode_gcj_code(escaped: str) -> str:
    """The program text of one CODE field (see the module docstring for the rules)."""
    return _dedent_continuation_lines(_decode_breaks(escaped))


def _decode_breaks(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        m = _CODE_STOP.search(text, i)
        if m is None:
            out.append(text[i:])
            break
        j = m.start()
        out.append(text[i:j])
        char = text[j]
        if char == "\\":
            if text.startswith("n", j + 1):
                out.append("\n")
                i = j + 2
            else:
                out.append("\\")
                i = j + 1
        elif char == "#":
            i = _comment(text, j, out)
        elif text.startswith(char * 3, j):
            i = _triple_quoted(text, j, char * 3, out)
        else:
            i = _one_line_string(text, j, char, out)
    return "".join(out)


def _is_break(text: str, j: int) -> bool:
    """Whether the backslash-n at `j` (in a comment or triple-quoted string) is a line break."""
    after = j + 2
    if after >= len(text):
        return True
    return text[after] in " \t" or text.startswith("\\n", after)


def _comment(text: str, start: int, out: list[str]) -> int:
    i = start
    while True:
        j = text.find("\\n", i)
        if j < 0:
            out.append(text[i:])
            return len(text)
        if _is_break(text, j):
            out.append(text[i:j])
            out.append("\n")
            return j + 2
        out.append(text[i : j + 2])
        i = j + 2


def _one_line_string(text: str, start: int, quote: str, out: list[str]) -> int:
    stop = _STRING_STOP[quote]
    i = start + 1
    while True:
        m = stop.search(text, i)
        if m is None:  # unterminated: read the quote as code and go on
            out.append(quote)
            return start + 1
        j = m.start()
        if text[j] == "\\":
            i = j + 2  # an escape pair, `\n` included, stays as written
            continue
        out.append(text[start : j + 1])
        return j + 1


def _triple_quoted(text: str, start: int, quotes: str, out: list[str]) -> int:
    out.append(quotes)
    i = start + 3
    n = len(text)
    while i < n:
        j_quote = text.find(quotes, i)
        j_escape = text.find("\\", i)
        if j_escape < 0 or (0 <= j_quote < j_escape):
            if j_quote < 0:
                out.append(text[i:])
                return n
            out.append(text[i : j_quote + 3])
            return j_quote + 3
        out.append(text[i:j_escape])
        if text.startswith("n", j_escape + 1) and _is_break(text, j_escape):
            out.append("\n")
        else:
            out.append(text[j_escape : j_escape + 2])
        i = j_escape + 2
    return n


def _dedent_continuation_lines(text: str) -> str:
    lines = text.split("\n")
    body = [line for line in lines[1:] if line.strip()]
    if not body or not all(line.startswith(INDENT) for line in body):
        return text
    cut = len(INDENT)
    return "\n".join(
        [lines[0]] + [line[cut:] if line.startswith(INDENT) else line.lstrip(" ") for line in lines[1:]]
    )
