"""The per-example attack record: the one contract between `engine` and `analysis`.

`engine` writes these records, `analysis` reads them; nothing else crosses. The module is
pure Python (no torch) so that `analysis` can import it on a machine that only has logs.
Bump `SCHEMA_VERSION` on any change and describe it in `docs/log-schema.md`.

Changes are additive: a field added in version N says `since=N`, and a record written with an
older version (every version in `READABLE_VERSIONS`) is valid without it (analysis reads it as
null, i.e. unknown).

`validate_record` checks one record against everything the schema says: exactly these fields,
their types, value ranges (`Field.minimum`/`maximum`, `Field.pattern`, `Field.items`, and the
defaults of `limits`), and what each status implies about the predictions (`STATUS_RULES`).
`analysis` runs the same rules vectorised over every record it reads (`analysis/validation.py`),
so a field added here is checked on read without further work.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

STATUSES = ("success", "failed", "skipped_misclassified", "skipped_no_identifiers", "error")


INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # one of: str, int, float, bool, json (a JSON object or list, see `items`)
    nullable: bool
    description: str
    since: int = 1  # the schema version that added the field
    minimum: float | None = None  # int: default 0 (counts, labels); float: default none (finite only)
    maximum: float | None = None  # int: default 2**63 - 1; float: default none
    pattern: str | None = None  # str: a regular expression the whole value must match ...
    pattern_words: str | None = None  # ... and what it means, for the error message
    items: str | None = None  # json: "list[str]", or "dict[str,str]" (the object or its JSON text); None: any


FIELDS: tuple[Field, ...] = (
    Field("schema_version", "int", False, "version of this schema the record was written with"),
    Field("example_id", "str", False, "dataset example id (unique within a dataset split)"),
    Field("dataset", "str", False, "dataset name (builtin name or loader format), as in the run manifest"),
    Field("task", "str", False, "task name, e.g. authorship, defect, clone"),
    Field("language", "str", False, "c, java or python"),
    Field("model", "str", False, "victim model name (directory name or hub id)"),
    Field("compression", "str", False, "none, prune, quantize, distill (with parameters in the run manifest)"),
    Field("attack", "str", False, "attack recipe: mhm, mhm-ns, alert, wir-random, coda, random",
          pattern=r"[^/\x00]+", pattern_words="not empty, no '/' and no NUL: reports name files after the attack"),
    Field("seed", "int", False, "random seed of the run", minimum=INT64_MIN),
    Field("true_label", "int", False, "ground-truth label"),
    Field("original_prediction", "int", True, "victim's label on the original program (null on error before the first query)"),
    Field("original_probability", "float", True, "victim's probability of the true label on the original",
          minimum=0, maximum=1),
    Field("status", "str", False, "one of " + ", ".join(STATUSES)),
    Field("reason", "str", True, "why an example was skipped or errored (null otherwise)"),
    Field("adversarial_prediction", "int", True, "victim's label on the final adversarial program"),
    Field("adversarial_probability", "float", True, "victim's probability of the true label on it", minimum=0, maximum=1),
    Field("original_code", "str", False, "the attacked program as the victim saw it"),
    Field("adversarial_code", "str", True, "the final adversarial program (null when none was produced)"),
    Field("rename_map", "json", True, "{old: new} of the final adversarial program", items="dict[str,str]"),
    Field("identifiers", "int", True, "renameable identifiers available in the original (of a truncated program: those "
          "with an occurrence the model reads, the only ones the attack may rename)"),
    Field("identifiers_changed", "int", True, "identifiers renamed in the adversarial program"),
    Field("structure_edits", "int", True, "semantics-preserving structure rewrites applied (CODA); 0 for pure renames"),
    Field("tokens", "int", True, "language tokens in the original program"),
    Field("tokens_changed", "int", True, "tokens that differ between original and adversarial program"),
    Field("queries", "int", False, "candidate programs evaluated by the victim for this example, cache hits included"),
    Field("forward_passes", "int", False, "unique model inputs (truncated token sequences) actually run through the model for this example"),
    Field("wall_time_s", "float", False, "wall-clock seconds spent on the example", minimum=0),
    Field("victim_time_s", "float", False, "seconds of that spent inside the victim", minimum=0),
    Field("valid_parses", "bool", True, "adversarial program has no more parse errors than the original (null: none produced)"),
    Field("valid_alpha_equivalent", "bool", True, "adversarial program is alpha-equivalent to the original"),
    Field("valid_compiles", "bool", True, "compiles (python compile, gcc -fsyntax-only, javac), or, when the original does "
          "not compile on its own, has exactly the original's compiler errors (see compile_differential); null only "
          "without a compiler verdict (no compiler, timeout, --no-compile-check)"),
    Field("valid_tests_pass", "bool", True, "passes the example's tests; null when the dataset has none"),
    Field("validity_reasons", "json", True, "list of short reasons for each validity check that failed or could not run, e.g. 'compiles: gcc: …'",
          items="list[str]"),
    Field("compile_differential", "bool", True, "how valid_compiles was decided: true when the original does not compile on "
          "its own and the adversarial program's compiler errors were compared with the original's (equal after mapping "
          "renamed names = valid); false when the original compiles cleanly; null when there is no compile verdict", since=2),
    Field("truncated", "bool", True, "the model reads only the first input_tokens_read of the input's input_tokens tokens "
          "(the attack attacked that view); null when not measured (error before tokenizing, a victim without a tokenizer)", since=2),
    Field("input_tokens", "int", True, "model tokens of the whole input (special tokens included; both programs of a pair)", since=2),
    Field("input_tokens_read", "int", True, "model tokens the model reads: input_tokens cut to its maximum length", since=2),
    Field("attack_name", "str", True, "the run's name for this attack configuration when one recipe runs in several "
          "(`engine attack --attack-name`, a study's [[attacks]] name: alert-4x, alert-transfer); reports group by it "
          "instead of `attack`; null: the recipe names it", since=3,
          pattern=r"[^/\x00]+", pattern_words="not empty, no '/' and no NUL: reports name files after the attack"),
)

FIELD_NAMES = tuple(f.name for f in FIELDS)

# Fields that hold a class index: 0 ≤ value < the number of labels, where the run's manifest
# says how many there are (`dataset.label_names`).
LABEL_FIELDS = ("true_label", "original_prediction", "adversarial_prediction")

# What each status implies, as (field, relation, other field): "==" and "!=" need both values
# present, "present" needs the field not null, "null or ==" allows null. The runner writes
# success/failed only for examples the victim got right, and success means the prediction moved.
STATUS_RULES: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "success": (("original_prediction", "==", "true_label"), ("adversarial_prediction", "!=", "true_label"),
                ("adversarial_code", "present", None), ("adversarial_probability", "present", None)),
    "failed": (("original_prediction", "==", "true_label"), ("adversarial_prediction", "null or ==", "true_label")),
    "skipped_misclassified": (("original_prediction", "!=", "true_label"),),
    "skipped_no_identifiers": (("original_prediction", "==", "true_label"),),
    "error": (("reason", "present", None),),
}

_PY_TYPES = {"str": (str,), "int": (int,), "float": (float, int), "bool": (bool,), "json": (dict, list, str)}


class SchemaError(ValueError):
    """A record that does not follow the schema; the message names the field."""


def fields_of(version: int) -> tuple[Field, ...]:
    """The fields a record written with schema `version` has (those added later are absent)."""
    return tuple(f for f in FIELDS if f.since <= version)


def limits(field: Field) -> tuple[float, float]:
    """The closed range a numeric field's values must lie in (floats must also be finite)."""
    if field.type == "int":
        return (0 if field.minimum is None else field.minimum, INT64_MAX if field.maximum is None else field.maximum)
    return (-math.inf if field.minimum is None else field.minimum, math.inf if field.maximum is None else field.maximum)


def rule_holds(relation: str, value, other) -> bool:
    """One `STATUS_RULES` relation between a field's value and another field's (None: null)."""
    if relation == "present":
        return value is not None
    if relation == "null or ==":
        return value is None or value == other
    if value is None or other is None:
        return False
    return value == other if relation == "==" else value != other


def _value_problem(field: Field, value) -> str | None:
    if value is None:
        return None if field.nullable else "must not be null"
    if not isinstance(value, _PY_TYPES[field.type]) or field.type in ("int", "float") and isinstance(value, bool):
        return f"should be {field.items or field.type}, got {type(value).__name__}"
    if field.type in ("int", "float"):
        low, high = limits(field)
        if isinstance(value, float) and not math.isfinite(value):
            return f"is {value}, not a finite number"
        if not low <= value <= high:
            return f"is {value}, outside [{low:g}, {high:g}]"
    if field.pattern is not None and not re.fullmatch(field.pattern, value):
        return f"is {value!r}; it must be {field.pattern_words or 'a match of ' + repr(field.pattern)}"
    if field.items == "list[str]" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return "should be a list of strings"
    if field.items == "dict[str,str]" and not (isinstance(value, str) or isinstance(value, dict)
                                               and all(isinstance(v, str) for v in value.values())):
        return "should be an object of strings (or its JSON text)"
    return None


def _few(names: list[str], shown: int = 8) -> str:
    return str(names) if len(names) <= shown else f"{names[:shown]} and {len(names) - shown} more"


def validate_record(record: dict, num_labels: int | None = None) -> None:
    """Raise `SchemaError` unless `record` has exactly the fields of the schema version it was written
    with (`schema_version`, one of `READABLE_VERSIONS`), each of the right type and range, and
    predictions consistent with its status; with `num_labels`, labels and predictions must also be
    below it."""
    if not isinstance(record, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
        raise SchemaError(f"not a record: {kind.get(type(record), 'null')}, where a JSON object is expected")
    name = record.get("example_id")
    version = record.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise SchemaError(f"record {name!r}: written with log schema version {version!r}, this toolkit reads "
                          f"versions {', '.join(map(str, READABLE_VERSIONS))}")
    fields = fields_of(version)
    names = {f.name for f in fields}
    missing = [f.name for f in fields if f.name not in record]
    extra = [key for key in record if key not in names]
    if missing or extra:
        raise SchemaError(f"record {name!r}: missing fields {_few(missing)}, unknown fields {_few(extra)}")
    for field in fields:
        problem = _value_problem(field, record[field.name])
        if problem:
            raise SchemaError(f"record {name!r}: field {field.name!r} {problem}")
    if num_labels is not None:
        for field in LABEL_FIELDS:
            if record[field] is not None and record[field] >= num_labels:
                raise SchemaError(f"record {name!r}: field {field!r} is {record[field]}, but the run has "
                                  f"{num_labels} labels")
    status = record["status"]
    if status not in STATUSES:
        raise SchemaError(f"record {name!r}: unknown status {status!r}")
    for field, relation, other in STATUS_RULES[status]:
        if not rule_holds(relation, record.get(field), record.get(other) if other else None):
            shown = f"{field} = {record.get(field)!r}" + (f", {other} = {record.get(other)!r}" if other else "")
            raise SchemaError(f"record {name!r}: status {status!r} needs {field} {relation}"
                              f"{' ' + other if other else ''} ({shown})")


def markdown_table() -> str:
    rows = ["| field | type | nullable | meaning |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.type} | {'yes' if f.nullable else 'no'} | {f.description}"
             f"{f' (since version {f.since})' if f.since > 1 else ''} |" for f in FIELDS]
    return "\n".join(rows)
