"""`analysis schema`: print the log schema, or check JSONL logs against it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.logschema import FIELDS, SCHEMA_VERSION, SchemaError, markdown_table, validate_record


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "schema",
        help="print the per-example log schema, or validate JSONL logs against it",
        description="Print the attack-record schema (the contract between engine and analysis), "
        "or, given files, check every line of them and report the first problems with file and line.",
    )
    p.add_argument("files", nargs="*", help="JSONL log files to validate")
    p.add_argument("--format", choices=("md", "json"), default="md", help="how to print the schema")
    p.set_defaults(run=run_schema)


def run_schema(args: argparse.Namespace) -> int:
    if not args.files:
        if args.format == "json":
            fields = [vars(f) for f in FIELDS]
            json.dump({"schema_version": SCHEMA_VERSION, "fields": fields}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(f"Log schema version {SCHEMA_VERSION}\n\n{markdown_table()}")
        return 0
    problems = 0
    for name in args.files:
        checked = 0
        try:
            lines = Path(name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            print(f"{name}: cannot read: {err}", file=sys.stderr)
            problems += 1
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                validate_record(json.loads(line))
                checked += 1
            except (json.JSONDecodeError, SchemaError) as err:
                problems += 1
                print(f"{name}:{number}: {err}", file=sys.stderr)
        print(f"{name}: {checked} valid records")
    return 1 if problems else 0
