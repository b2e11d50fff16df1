"""Fake stages for the study tests: the orchestration tested without training or attacking anything.

`FakeRunner` plays every stage command from its argument list, writing the files the real one
would (a manifest, `records.jsonl` one flushed line per example, report files) and checking that
the inputs it is given exist, so a wrong path or a missing dependency fails the way it would for
real. `fake_options` describes the fake commands' options, for config validation. Run as a script
(`python -m tests.study_fakes --config … --out …`) it is `engine study` with these fakes, which
the SIGKILL test needs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

from engine.attacks import registry
from engine.study.config import actions_by_key
from engine.study.stages import StageFailed


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parsers = {}
    for command in ("train", "compress", "pretrain-mlm", "substitutes", "augment", "attack"):
        p = argparse.ArgumentParser(prog=f"engine {command}", add_help=False)
        p.add_argument("--out")
        p.add_argument("--device")
        p.add_argument("--threads", type=int)
        p.add_argument("--no-progress", action="store_true")
        for flag in ("--dataset", "--data-format", "--data", "--columns", "--language", "--task"):
            p.add_argument(flag)
        p.add_argument("--data-seed", type=int)
        p.add_argument("--dataset-size", type=int)
        p.add_argument("--skip-bad", action="store_true")
        parsers[command] = p
    parsers["train"].add_argument("--base")
    parsers["train"].add_argument("--epochs", type=int)
    parsers["train"].add_argument("--lr", type=float)
    parsers["train"].add_argument("--max-length", type=int)
    parsers["train"].add_argument("--head", choices=("softmax", "sigmoid"))
    parsers["compress"].add_argument("--method")
    parsers["compress"].add_argument("--model")
    parsers["compress"].add_argument("--ratio", type=float)
    parsers["compress"].add_argument("--target-mb", type=float)
    parsers["compress"].add_argument("--robust", action="store_true")
    parsers["compress"].add_argument("--renamings", type=int)
    parsers["compress"].add_argument("--adversarial")
    g = parsers["augment"]
    g.add_argument("--attack", choices=("random", "alert", "mhm", "mhm-ns", "wir-random"))
    g.add_argument("--model")
    g.add_argument("--split", choices=("train", "valid", "test"))
    g.add_argument("--n", type=int)
    g.add_argument("--budget", type=int)
    g.add_argument("--per-example", type=int)
    g.add_argument("--substitutes")
    g.add_argument("--resume", action="store_true")
    parsers["pretrain-mlm"].add_argument("--base")
    parsers["pretrain-mlm"].add_argument("--epochs", type=int)
    parsers["substitutes"].add_argument("--mlm")
    parsers["substitutes"].add_argument("--top-k", type=int)
    parsers["substitutes"].add_argument("--split")
    parsers["substitutes"].add_argument("--n", type=int)
    parsers["substitutes"].add_argument("--sample", type=int)
    a = parsers["attack"]
    a.add_argument("--attack", choices=tuple(registry.RECIPES))
    a.add_argument("--model")
    a.add_argument("--n", type=int)
    a.add_argument("--budget", type=int)
    a.add_argument("--seed", type=int)
    a.add_argument("--batch-size", type=int)
    a.add_argument("--substitutes")
    a.add_argument("--sample", type=int)
    a.add_argument("--resume", action="store_true")
    a.add_argument("--split", choices=("train", "valid", "test"))
    a.add_argument("--mhm-iterations", type=int)
    a.add_argument("--attack-name")
    a.add_argument("--transfer-from")
    a.add_argument("--fail", action="store_true", help="fake: fail after two records")
    a.add_argument("--delay", type=float, default=0.0, help="fake: seconds per example")
    return parsers


PARSERS = _parsers()


def fake_options(command: str):
    parser = PARSERS.get(command)
    return None if parser is None else actions_by_key(parser)


class FakeRunner:
    """Stands in for `CliRunner`; `calls` lists the argument lists it ran (local executor only)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, call, argv, log) -> None:
        self.calls.append(list(argv))
        if call.program == "analysis":
            return self._report(argv)
        args, _ = PARSERS[argv[0]].parse_known_args(argv[1:])
        out = Path(args.out)
        if argv[0] in ("train", "pretrain-mlm", "compress"):
            if argv[0] == "compress":
                _need(Path(args.model) / "manifest.json")
                if args.adversarial:  # an engine augment directory
                    _need(Path(args.adversarial) / "train.jsonl")
            if argv[0] == "train" and args.base == "scratch:broken":
                raise StageFailed("fake training diverged")
            out.mkdir(parents=True, exist_ok=True)
            (out / "manifest.json").write_text(json.dumps({"kind": argv[0], "metrics": {"accuracy": 0.75},
                                                           "size_mb": 1.5}))
        elif argv[0] == "substitutes":
            _need(Path(args.mlm) / "manifest.json")
            out.mkdir(parents=True, exist_ok=True)
            (out / "substitutes.jsonl").write_text("{}\n")
        elif argv[0] == "augment":
            _need(Path(args.model) / "manifest.json")
            if args.substitutes and args.substitutes != "dataset":
                _need(Path(args.substitutes) / "substitutes.jsonl")
            if out.exists() and any(out.iterdir()) and not args.resume:
                raise StageFailed(f"{out} already holds programs; pass --resume")
            out.mkdir(parents=True, exist_ok=True)
            (out / "train.jsonl").write_text("".join(json.dumps({"id": f"t{i}~{args.attack}-0", "original_id": f"t{i}"})
                                                     + "\n" for i in range(args.n or 5)))
        elif argv[0] == "attack":
            self._attack(args, out)

    def _attack(self, args, out: Path) -> None:
        _need(Path(args.model) / "manifest.json")
        if args.substitutes:
            _need(Path(args.substitutes) / "substitutes.jsonl")
        if args.transfer_from:  # a replay reads the source run's records
            _need(Path(args.transfer_from) / "records.jsonl")
        records = out / "records.jsonl"
        if records.exists() and not args.resume:
            raise StageFailed(f"{out} already holds records; pass --resume")
        out.mkdir(parents=True, exist_ok=True)
        seen = set()
        if records.exists():
            seen = {json.loads(line)["example_id"] for line in records.read_text().splitlines() if line.strip()}
        with open(records, "a", encoding="utf-8") as handle:
            for i in range(min(args.n, args.sample or args.n)):  # a fake sample: the first ones
                example = f"ex{i:03d}"
                if example in seen:
                    continue
                if args.fail and i == 2:
                    raise StageFailed("fake attack crashed on ex002")
                time.sleep(args.delay)
                draw = zlib.crc32(f"{args.attack}{args.seed}{example}".encode())
                success = draw % 3 == 0
                queries = 1 + draw % (args.budget or 10)  # fake costs, for the pilot's figures
                handle.write(json.dumps({"example_id": example, "status": "success" if success else "failed",
                                         "attack": args.attack, "attack_name": args.attack_name,
                                         "seed": args.seed, "queries": queries,
                                         "forward_passes": (queries + 1) // 2, "victim_time_s": 0.01 * queries,
                                         "wall_time_s": 0.011 * queries}) + "\n")
                handle.flush()
        (out / "manifest.json").write_text(json.dumps({"attack": args.attack, "n": args.n}))

    def _report(self, argv: list[str]) -> None:
        logs = argv[argv.index("--logs") + 1:argv.index("--format")]
        for folder in logs:
            _need(Path(folder) / "records.jsonl")
        formats = argv[argv.index("--format") + 1].split(",")
        out = Path(argv[argv.index("--out") + 1])
        (out / "latex").mkdir(parents=True, exist_ok=True)
        if "latex" in formats:
            (out / "latex" / "report.tex").write_text(f"{len(logs)} logs\n")
        if "html" in formats:
            (out / "report.html").write_text(f"{len(logs)} logs\n")


def _need(path: Path) -> None:
    if not path.exists():
        raise StageFailed(f"missing input {path}")


def main(argv: list[str]) -> int:
    """`engine study` as the CLI runs it (one-line errors and interruptions), with fake stages."""
    from engine.cli import build_parser
    from engine.cli_base import run_guarded
    from engine.commands.study import run_study

    args = build_parser().parse_args(["study", *argv])
    return run_guarded("engine", "study", lambda: run_study(args, runner=FakeRunner(), options=fake_options))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
