"""Every record `analysis` reads is checked against the log schema, fast enough for millions.

`engine.common.logschema.validate_record` is the definition (exactly the schema's fields, types,
ranges, patterns, the schema version, what each status implies); calling it on a million
parsed lines would take half a minute, so `analysis` runs the same rules in two vectorised
passes, both derived from `FIELDS` (a field added there is covered here without edits):

1. Shape, on the raw lines: one regular expression (compiled and run by polars, in Rust) that a
   line matches when it is one JSON object with exactly the schema's fields in the schema's order
   (the order every writer in this project uses), each holding a JSON value of its type, and
   null only where the field is nullable. Polars' JSON reader cannot tell a missing key from a
   null, ignores unknown keys and turns numbers and lists into text where the schema says
   string, so this pass is what catches those. A line that does not match (another writer's key
   order or spacing, or a real problem) goes to `validate_record`: slower, same verdict.
2. Values, on the parsed columns: finite numbers inside `limits`, string patterns, the schema
   version, the status and `STATUS_RULES`, labels below the run's label count (when its
   manifest lists the labels). A failing row's file is then read in Python to name the line.
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from engine.common.logschema import (FIELDS, LABEL_FIELDS, READABLE_VERSIONS, STATUS_RULES, STATUSES, SchemaError,
                              fields_of, limits, validate_record)

_SPACE = r"[ \t\r]*"
_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_INTEGER = r"-?(?:0|[1-9][0-9]{0,18})"  # polars refuses what does not fit in 64 bits
_LIST = rf"\[{_SPACE}(?:{_STRING}{_SPACE}(?:,{_SPACE}{_STRING}{_SPACE})*)?\]"
_PAIR = rf"{_STRING}{_SPACE}:{_SPACE}{_STRING}{_SPACE}"
_OBJECT = rf"\{{{_SPACE}(?:{_PAIR}(?:,{_SPACE}{_PAIR})*)?\}}"
_VALUES = {"str": _STRING, "int": _INTEGER, "float": _NUMBER, "bool": "true|false"}
_ITEMS = {"list[str]": _LIST, "dict[str,str]": f"{_OBJECT}|{_STRING}"}


def record_pattern() -> str:
    """The regular expression of a well-formed record line (see the module docstring): one
    alternative per readable schema version, each with that version number and exactly its fields."""
    versions = []
    for version in sorted(READABLE_VERSIONS, reverse=True):
        parts = []
        for field in fields_of(version):
            value = (_ITEMS.get(field.items or "", f"{_LIST}|{_OBJECT}|{_STRING}") if field.type == "json"
                     else str(version) if field.name == "schema_version" else _VALUES[field.type])
            if field.nullable:
                value += "|null"
            parts.append(f'"{field.name}"{_SPACE}:{_SPACE}(?:{value}){_SPACE}')
        versions.append(f",{_SPACE}".join(parts))
    return rf"^{_SPACE}\{{{_SPACE}(?:" + "|".join(versions) + rf")\}}{_SPACE}$"


RECORD_PATTERN = record_pattern()


def _lines(name: str, data: bytes | None) -> pl.LazyFrame:
    """One row per line of a log (blank lines null), with its 1-based line number."""
    options = dict(has_header=False, separator="\x1f", quote_char=None, schema={"line": pl.String},
                   truncate_ragged_lines=True, raise_if_empty=False)  # \x1f cannot occur in valid JSON
    if data is None:
        frame = pl.scan_csv(name, **options)
    else:
        frame = pl.read_csv(data, **options).lazy() if data else pl.DataFrame(schema={"line": pl.String}).lazy()
    return frame.with_row_index("line_number", offset=1).with_columns(pl.lit(name).alias("path"))


def _mismatches(frame: pl.LazyFrame) -> pl.DataFrame:
    """Lines not matching the pattern (empty lines are null and drop out; blank ones come back and
    pass `check_line`)."""
    return (frame.filter(~pl.col("line").str.contains(RECORD_PATTERN))
            .select("path", "line_number").collect(engine="streaming"))


def shape_mismatches(sources: list[tuple[str, bytes | None]]) -> tuple[list[tuple[str, int]], list[str]]:
    """(path, line) of every non-blank line that does not match `RECORD_PATTERN`, in file order, and
    the files polars could not split into lines (not UTF-8, say): those go to Python whole."""
    if not sources:
        return [], []
    try:
        found = _mismatches(pl.concat([_lines(name, data) for name, data in sources]))
        return list(found.iter_rows()), []
    except (pl.exceptions.PolarsError, OSError):  # find the file(s) polars cannot read
        rows, unreadable = [], []
        for name, data in sources:
            try:
                rows += list(_mismatches(_lines(name, data)).iter_rows())
            except (pl.exceptions.PolarsError, OSError):
                unreadable.append(name)
        return rows, unreadable


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise SchemaError(f"field {duplicate!r} appears twice in one object")
    return dict(pairs)


def check_line(raw: bytes, num_labels: int | None = None, offset: int | None = None) -> str | None:
    """What is wrong with one raw log line (None: a valid record, or blank); `offset`: where the
    line starts in its file, for the byte position of a byte that is not UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        where = f", byte {offset + err.start:,} of the file" if offset is not None else ""
        return f"not valid UTF-8 ({err.reason} at byte {err.start:,} of the line{where})"
    if not text.strip():
        return None
    try:
        validate_record(json.loads(text, object_pairs_hook=_no_duplicate_keys), num_labels)
    except SchemaError as err:
        return str(err)
    except ValueError as err:
        return f"not valid JSON ({err})"
    return None


def first_bad_line(path: str, data: bytes | None = None, num_labels: int | None = None,
                   only: set[int] | None = None) -> str | None:
    """`file:line: problem` for the first invalid line of a log (of the lines in `only`, if given)."""
    raw = data if data is not None else Path(path).read_bytes()
    offset = 0
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if only is None or number in only:
            problem = check_line(line, num_labels, offset)
            if problem:
                return f"{path}:{number}: {problem}"
        offset += len(line) + 1
    return None


PRESENT = "__present_"  # prefix of a boolean column standing in for a field that is not loaded


def rule_columns(loaded: list[str]) -> list[pl.Expr]:
    """Columns `value_violations` needs beyond `loaded`: whether a field a "present" rule reads is
    null, for fields too big to load (the programs)."""
    wanted = {field for rules in STATUS_RULES.values() for field, relation, _ in rules if relation == "present"}
    return [pl.col(name).is_not_null().alias(PRESENT + name) for name in sorted(wanted - set(loaded))]


def value_violations(loaded: list[str], num_labels: str | None = None) -> pl.Expr:
    """True for a parsed record that breaks a value rule. `loaded`: the field columns in the frame
    (plus the `rule_columns`); `num_labels`: a column with the run's label count, null when unknown."""
    bad = [~pl.col("schema_version").is_in(READABLE_VERSIONS), ~pl.col("status").is_in(list(STATUSES))]
    for field in FIELDS:
        if field.name not in loaded:
            continue
        column = pl.col(field.name)
        if field.type in ("int", "float"):
            low, high = limits(field)
            outside = (column < low) | (column > high)
            bad.append(outside | ~column.is_finite() if field.type == "float" else outside)
        if field.pattern is not None:
            bad.append(~column.str.contains(f"^(?:{field.pattern})$"))
    for status, rules in STATUS_RULES.items():
        for field, relation, other in rules:
            column = pl.col(field) if field in loaded else None
            if relation == "present":
                holds = column.is_not_null() if column is not None else pl.col(PRESENT + field)
            else:
                right = pl.col(other or field)
                holds = {"null or ==": column.is_null() | (column == right), "==": column == right,
                         "!=": column != right}[relation]
            bad.append((pl.col("status") == status) & ~holds.fill_null(False))
    if num_labels is not None:
        bad += [pl.col(field) >= pl.col(num_labels) for field in LABEL_FIELDS]
    return pl.any_horizontal(*(expr.fill_null(False) for expr in bad))
