"""The per-example attack record: the one contract between `engine` and `analysis`.

`engine` writes these records, `analysis` reads them; nothing else crosses. The module is
pure Python (no torch) so that `analysis` can import it on a machine that only has logs.
Bump `SCHEMA_VERSION` on any change and describe it in `docs/log-schema.md`.

Changes are additive: a field added in version N says `since=N`, and a record written with an
older version (every version in `READABLE_VERSIONS`) is valid without it (analysis reads it as
null, i.e. unknown).
"""
from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)

STATUSES = ("success", "failed", "skipped_misclassified", "skipped_no_identifiers", "error")


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # one of: str, int, float, bool, json (a JSON-encoded object or list)
    nullable: bool
    description: str
    since: int = 1  # the schema version that added the field


FIELDS: tuple[Field, ...] = (
    Field("schema_version", "int", False, "version of this schema the record was written with"),
    Field("example_id", "str", False, "dataset example id (unique within a dataset split)"),
    Field("dataset", "str", False, "dataset name (builtin name or loader format), as in the run manifest"),
    Field("task", "str", False, "task name, e.g. authorship, defect, clone"),
    Field("language", "str", False, "c, java or python"),
    Field("model", "str", False, "victim model name (directory name or hub id)"),
    Field("compression", "str", False, "none, prune, quantize, distill (with parameters in the run manifest)"),
    Field("attack", "str", False, "attack recipe: mhm, mhm-ns, alert, wir-random, coda, random"),
    Field("seed", "int", False, "random seed of the run"),
    Field("true_label", "int", False, "ground-truth label"),
    Field("original_prediction", "int", True, "victim's label on the original program (null on error before the first query)"),
    Field("original_probability", "float", True, "victim's probability of the true label on the original"),
    Field("status", "str", False, "one of " + ", ".join(STATUSES)),
    Field("reason", "str", True, "why an example was skipped or errored (null otherwise)"),
    Field("adversarial_prediction", "int", True, "victim's label on the final adversarial program"),
    Field("adversarial_probability", "float", True, "victim's probability of the true label on it"),
    Field("original_code", "str", False, "the attacked program as the victim saw it"),
    Field("adversarial_code", "str", True, "the final adversarial program (null when none was produced)"),
    Field("rename_map", "json", True, "{old: new} of the final adversarial program"),
    Field("identifiers", "int", True, "renameable identifiers available in the original (of a truncated program: those "
          "with an occurrence the model reads, the only ones the attack may rename)"),
    Field("identifiers_changed", "int", True, "identifiers renamed in the adversarial program"),
    Field("structure_edits", "int", True, "semantics-preserving structure rewrites applied (CODA); 0 for pure renames"),
    Field("tokens", "int", True, "language tokens in the original program"),
    Field("tokens_changed", "int", True, "tokens that differ between original and adversarial program"),
    Field("queries", "int", False, "candidate programs evaluated by the victim for this example, cache hits included"),
    Field("forward_passes", "int", False, "unique model inputs (truncated token sequences) actually run through the model for this example"),
    Field("wall_time_s", "float", False, "wall-clock seconds spent on the example"),
    Field("victim_time_s", "float", False, "seconds of that spent inside the victim"),
    Field("valid_parses", "bool", True, "adversarial program has no more parse errors than the original (null: none produced)"),
    Field("valid_alpha_equivalent", "bool", True, "adversarial program is alpha-equivalent to the original"),
    Field("valid_compiles", "bool", True, "compiles (python compile, gcc -fsyntax-only, javac), or, when the original does "
          "not compile on its own, has exactly the original's compiler errors (see compile_differential); null only "
          "without a compiler verdict (no compiler, timeout, --no-compile-check)"),
    Field("valid_tests_pass", "bool", True, "passes the example's tests; null when the dataset has none"),
    Field("validity_reasons", "json", True, "list of short reasons for each validity check that failed or could not run, e.g. 'compiles: gcc: …'"),
    Field("compile_differential", "bool", True, "how valid_compiles was decided: true when the original does not compile on "
          "its own and the adversarial program's compiler errors were compared with the original's (equal after mapping "
          "renamed names = valid); false when the original compiles cleanly; null when there is no compile verdict", since=2),
    Field("truncated", "bool", True, "the model reads only the first input_tokens_read of the input's input_tokens tokens "
          "(the attack attacked that view); null when not measured (error before tokenizing, a victim without a tokenizer)", since=2),
    Field("input_tokens", "int", True, "model tokens of the whole input (special tokens included; both programs of a pair)", since=2),
    Field("input_tokens_read", "int", True, "model tokens the model reads: input_tokens cut to its maximum length", since=2),
)

FIELD_NAMES = tuple(f.name for f in FIELDS)

_PY_TYPES = {"str": (str,), "int": (int,), "float": (float, int), "bool": (bool,), "json": (dict, list, str)}


class SchemaError(ValueError):
    """A record that does not follow the schema; the message names the field."""


def validate_record(record: dict) -> None:
    """Raise `SchemaError` unless `record` has exactly the fields of the schema version it was written
    with (`schema_version`, one of `READABLE_VERSIONS`) with the right types."""
    version = record.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise SchemaError(f"record {record.get('example_id')!r}: written with log schema version {version!r}, "
                          f"this toolkit reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    fields = [f for f in FIELDS if f.since <= version]
    names = {f.name for f in fields}
    missing = [f.name for f in fields if f.name not in record]
    extra = [name for name in record if name not in names]
    if missing or extra:
        raise SchemaError(f"record {record.get('example_id')!r}: missing fields {missing}, unknown fields {extra}")
    for field in fields:
        value = record[field.name]
        if value is None:
            if not field.nullable:
                raise SchemaError(f"record {record['example_id']!r}: field {field.name!r} must not be null")
            continue
        ok = isinstance(value, _PY_TYPES[field.type])
        if field.type in ("int", "float") and isinstance(value, bool):
            ok = False
        if not ok:
            raise SchemaError(
                f"record {record['example_id']!r}: field {field.name!r} should be {field.type}, got {type(value).__name__}"
            )
    if record["status"] not in STATUSES:
        raise SchemaError(f"record {record['example_id']!r}: unknown status {record['status']!r}")


def markdown_table() -> str:
    rows = ["| field | type | nullable | meaning |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.type} | {'yes' if f.nullable else 'no'} | {f.description}"
             f"{f' (since version {f.since})' if f.since > 1 else ''} |" for f in FIELDS]
    return "\n".join(rows)
