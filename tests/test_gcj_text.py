"""The GCJ one-line program decoder: backslash-n is a line break in code and an escape in strings.

Every input below is written the way the data files encode a program: line breaks as the two
characters backslash-n, and two spaces in front of every line after the first. The inputs are
raw strings, so ``\\n`` in them is exactly those two characters.
"""
from __future__ import annotations

import warnings

from engine.code import extract
from engine.datasets.gcj_text import decode_gcj_code


def compiles(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<test>", "exec")
        except SyntaxError:
            return False
    return True


def test_line_breaks_in_code_become_newlines_and_the_added_indent_is_removed():
    encoded = r"T = int(input())\n  for t in range(T):\n      n = t * 2\n      print(n)\n"
    assert decode_gcj_code(encoded) == "T = int(input())\nfor t in range(T):\n    n = t * 2\n    print(n)\n"


def test_escape_in_a_one_line_string_stays_two_characters():
    encoded = r"def out(t, r):\n      return 'Case #%d: %s\n' % (t, r)\n  print(out(1, 2))"
    decoded = decode_gcj_code(encoded)
    assert decoded == "def out(t, r):\n    return 'Case #%d: %s\\n' % (t, r)\nprint(out(1, 2))"
    assert compiles(decoded)
    naive = encoded.replace("\\n", "\n")
    assert not compiles(naive)  # the literal is cut in two
    assert extract(decoded, "python").parse_errors == 0
    assert extract(naive, "python").parse_errors > 0


def test_double_quotes_escaped_quotes_and_backslash_pairs():
    encoded = (
        r'a = "say \"hi\"\n"\n'
        r"  b = 'it\'s\n'\n"
        r"  c = '\\'\n"  # a string holding one backslash, then a line break
        r"  d = c"
    )
    assert decode_gcj_code(encoded) == (
        'a = "say \\"hi\\"\\n"\n' "b = 'it\\'s\\n'\n" "c = '\\\\'\n" "d = c"
    )


def test_string_prefixes_do_not_change_the_rule():
    encoded = r"r = r'x\n'\n  b = b'y\n'\n  u = u'z\n'\n  f = f'{r}\n'\n  rb = Rb'w\n'"
    decoded = decode_gcj_code(encoded)
    assert decoded.split("\n") == ["r = r'x\\n'", "b = b'y\\n'", "u = u'z\\n'", "f = f'{r}\\n'", "rb = Rb'w\\n'"]
    assert compiles(decoded)


def test_triple_quoted_strings_keep_their_line_breaks():
    encoded = r'"""Usage:\n      solve.py < in > out\n  """\n  x = """a\nb"""\n  y = 1'
    decoded = decode_gcj_code(encoded)
    # Inside the docstring the breaks (followed by the added indent) are newlines; the `\n`
    # followed by `b` is an escape sequence and stays (both denote the same string value).
    assert decoded == '"""Usage:\n    solve.py < in > out\n"""\nx = """a\\nb"""\ny = 1'
    assert compiles(decoded)


def test_quotes_in_comments_do_not_start_strings():
    encoded = r"# don't panic\n  x = 'a\n'  # it's fine\n  y = x"
    assert decode_gcj_code(encoded) == "# don't panic\nx = 'a\\n'  # it's fine\ny = x"


def test_an_escape_written_in_a_comment_stays_when_no_line_break_follows():
    encoded = r"# prints '\n' at the end\n  x = 1"
    assert decode_gcj_code(encoded) == "# prints '\\n' at the end\nx = 1"


def test_backslash_continuation_outside_strings():
    encoded = r"total = 1 + \\n      2\n  print(total)"
    decoded = decode_gcj_code(encoded)
    assert decoded == "total = 1 + \\\n    2\nprint(total)"
    assert compiles(decoded)


def test_tabs_and_blank_lines_are_kept():
    encoded = " \\n  def f(x):\\n  \treturn x\\n  \\n  print(f(1))\\n"
    decoded = decode_gcj_code(encoded)
    assert decoded == " \ndef f(x):\n\treturn x\n\nprint(f(1))\n"
    assert compiles(decoded)


def test_no_dedent_when_a_line_lacks_the_added_indent():
    assert decode_gcj_code(r"x = 1\ny = 2") == "x = 1\ny = 2"


def test_unterminated_quote_does_not_swallow_the_rest():
    decoded = decode_gcj_code(r"x = 'abc\n  y = 2")
    assert decoded == "x = 'abc\ny = 2"


def test_python2_program_decodes_to_a_clean_parse():
    encoded = (
        r"T = int(raw_input())\n"
        r"  for case in xrange(1, T + 1):\n"
        r"      words = raw_input().split(' ')\n"
        r"      print 'Case #%d: %s\n' % (case, ' '.join(reversed(words))),\n"
    )
    decoded = decode_gcj_code(encoded)
    ext = extract(decoded, "python")
    assert ext.parse_errors == 0
    assert sorted(ext.identifiers) == ["T", "case", "words"]


def test_empty_input():
    assert decode_gcj_code("") == ""
