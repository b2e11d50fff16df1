"""`analysis schema`: print the log schema, or check JSONL logs against it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.common.logschema import FIELDS, SCHEMA_VERSION, markdown_table


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
    from analysis.loading import MANIFEST_NAME, label_count, read_manifest
    from analysis.validation import check_line

    problems = 0
    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as err:
            print(f"{name}: cannot read: {err.strerror}", file=sys.stderr)
            problems += 1
            continue
        manifest = Path(name).parent / MANIFEST_NAME
        labels = label_count(read_manifest(manifest)) if manifest.is_file() else None
        checked, offset = 0, 0
        for number, line in enumerate(data.split(b"\n"), start=1):
            problem = check_line(line, labels, offset)
            offset += len(line) + 1
            if problem:
                problems += 1
                print(f"{name}:{number}: {problem}", file=sys.stderr)
            elif line.strip():
                checked += 1
        print(f"{name}: {checked} valid records")
    return 1 if problems else 0
