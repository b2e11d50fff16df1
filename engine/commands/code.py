"""`engine identifiers | rename | check`: the language layer from the command line.

One program (FILE) per call, or a corpus with `--jsonl IN` (`code_corpus.py`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.code import LANGUAGES, Renamer, check_rename, detect_language, extract, validate
from engine.commands.code_corpus import add_corpus_options, parse_mapping, run_corpus
from engine.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "identifiers",
        help="list the identifiers an attack may rename in a program (JSON)",
        description="List the renameable identifiers of a program with their kind and every "
        "occurrence as a byte span, plus the declared variables left out and why.",
    )
    _add_source_options(p)
    add_corpus_options(p)
    p.set_defaults(run=run_identifiers)

    p = subparsers.add_parser(
        "rename",
        help="rename identifiers by their spans and print the program",
        description="Validate a mapping, rename by spans (comments, strings, fields and calls "
        "that share a spelling are left alone), check the result and print it. Exits 1 with "
        "one line per rejected pair when the mapping is invalid.",
    )
    _add_source_options(p)
    p.add_argument("--map", metavar="OLD=NEW,...", help="e.g. --map n=count,i=k (with --jsonl: for lines without a map)")
    add_corpus_options(p)
    p.set_defaults(run=run_rename)

    p = subparsers.add_parser(
        "check",
        help="check that a renamed program is alpha-equivalent to its original (JSON)",
        description="Compare a renamed program with its original: new parse errors, "
        "alpha-equivalence under the mapping, and (Python) compile(). Exits 1 when not valid.",
    )
    p.add_argument("original", nargs="?", help="original program file, or - for stdin")
    p.add_argument("renamed", nargs="?", help="renamed program file")
    p.add_argument("--lang", choices=LANGUAGES, help="language (default: from the original's extension)")
    p.add_argument("--encoding", default="utf-8", help="encoding of the input files (default utf-8)")
    p.add_argument("--map", metavar="OLD=NEW,...", help="the mapping (with --jsonl: for lines without a map)")
    add_corpus_options(p)
    p.set_defaults(run=run_check)


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="program file, or - for stdin (or --jsonl IN for a corpus)")
    p.add_argument("--lang", choices=LANGUAGES, help="language (default: from the file extension)")
    p.add_argument("--encoding", default="utf-8", help="encoding of the input (default utf-8)")


def read_program(path: str, encoding: str) -> bytes:
    """Program bytes as UTF-8; other encodings are converted, undecodable input is an error."""
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise UserError(f"cannot read {path}: {err.strerror}") from None
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        return data  # validated by the language layer with the offending offset
    try:
        return data.decode(encoding).encode("utf-8")
    except (LookupError, UnicodeDecodeError) as err:
        raise UserError(f"cannot decode {path} as {encoding}: {err}") from None


def _language(args: argparse.Namespace, path: str) -> str:
    if args.lang:
        return args.lang
    if path == "-":
        raise UserError("reading from stdin: pass --lang (" + "|".join(LANGUAGES) + ")")
    return detect_language(path)


def _single(args: argparse.Namespace, *names: str) -> None:
    """One program per call: the positional files are needed, and corpus-only options are refused."""
    missing = [name for name in names if getattr(args, name) is None]
    if missing:
        raise UserError(f"give {' and '.join(n.upper() for n in missing)}, or --jsonl IN for a corpus")
    if args.out or args.columns:
        raise UserError("--out and --columns belong to --jsonl (corpus mode)")


def _corpus(args: argparse.Namespace, *names: str) -> bool:
    if args.jsonl is None:
        return False
    given = [name.upper() for name in names if getattr(args, name) is not None]
    if given:
        raise UserError(f"--jsonl reads the programs from IN; drop {' and '.join(given)}")
    return True


def run_identifiers(args: argparse.Namespace) -> int:
    if _corpus(args, "file"):
        return run_corpus(args, "identifiers")
    _single(args, "file")
    language = _language(args, args.file)
    extraction = extract(read_program(args.file, args.encoding), language)
    report = {"file": args.file, **extraction.to_json()}
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    if _corpus(args, "file"):
        return run_corpus(args, "rename", parse_mapping(args.map) if args.map else None)
    _single(args, "file", "map")
    language = _language(args, args.file)
    mapping = parse_mapping(args.map)
    extraction = extract(read_program(args.file, args.encoding), language)
    rejections = validate(extraction, mapping)
    if rejections:
        for rejection in rejections:
            print(f"rejected {rejection}", file=sys.stderr)
        return 1
    renamed = Renamer(extraction).apply(mapping)
    result = check_rename(extraction, renamed, mapping)
    if not result.ok:  # a bug in the language layer, never the user's: say so loudly
        for reason in result.reasons:
            print(f"internal check failed: {reason}", file=sys.stderr)
        return 3
    sys.stdout.write(renamed)
    return 0


def run_check(args: argparse.Namespace) -> int:
    if _corpus(args, "original", "renamed"):
        return run_corpus(args, "check", parse_mapping(args.map) if args.map else None)
    _single(args, "original", "renamed", "map")
    language = _language(args, args.original)
    mapping = parse_mapping(args.map)
    original = read_program(args.original, args.encoding)
    renamed = read_program(args.renamed, args.encoding)
    result = check_rename(extract(original, language), renamed, mapping)
    json.dump(result.to_json(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if result.ok else 1
