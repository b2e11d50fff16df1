"""`engine attack` against the audit's bad situations (issue 14): a second writer into the same
records, mixed shard counts, a resumed partial line, a full disk and a read-only output, and the
dataset inputs that used to crash it (lone surrogates, invalid UTF-8, an empty split file)."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attack_support import KeyVictim, key_dataset
from engine.attacks import records as records_module
from engine.attacks import registry
from engine.attacks.environment import make_environment
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions
from engine.cli import main as engine_main
from engine.errors import UserError
from engine.locks import exclusive
from test_attack_runner import RESUME_SCRIPT

ROOT = Path(__file__).resolve().parents[1]


def runner(out, dataset=None, attack="wir-random", **options):
    dataset = dataset or key_dataset(4)
    victim = KeyVictim(delay_s=options.pop("delay_s", 0.0))
    params = registry.params_from_args(attack)
    search = registry.build_search(attack, params, make_environment(dataset, victim))
    return AttackRunner(victim=victim, dataset=dataset, out=out, search=search,
                        options=RunOptions(attack=attack, params=params, progress=False, **options))


# --------------------------------------------------------------------------- one writer at a time


def test_a_second_resume_into_a_running_attack_is_refused_naming_the_holder(tmp_path):
    script = tmp_path / "attack.py"  # a slow mhm run over key_dataset(10), resumable
    script.write_text(RESUME_SCRIPT.format(tests=str(Path(__file__).parent)))
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, str(script), str(out), "0.05"], env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out / "records.jsonl").exists():
            time.sleep(0.02)
        with pytest.raises(UserError, match=rf"in use by pid {first.pid} on host .*records\.jsonl\.lock"):
            runner(out, key_dataset(10), "mhm", resume=True).run()
    finally:
        first.kill()
        first.wait()
    # the holder was SIGKILLed: its lock is stale, the next run takes it over and finishes the run once
    done = runner(out, key_dataset(10), "mhm", resume=True)
    done.run()
    ids = [r["example_id"] for r in read_records(done.records_path)]
    assert sorted(ids) == [f"ex{i:02d}" for i in range(10)] and len(ids) == len(set(ids))
    assert not (out / "records.jsonl.lock").exists()


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path, capsys):
    lock = tmp_path / "records.jsonl.lock"
    lock.write_text(json.dumps({"pid": 999_999_999, "host": "elsewhere", "started": "yesterday"}) + "\n")
    with exclusive(lock, "the records"):
        holder = json.loads(lock.read_text())
        assert holder["pid"] == os.getpid()
    assert "took over the stale lock of pid 999999999 on host elsewhere" in capsys.readouterr().err
    assert not lock.exists()


def test_shards_of_different_counts_are_refused_and_the_refusal_names_the_file(tmp_path):
    dataset = key_dataset(6)
    for k in (1, 2):
        runner(tmp_path, dataset, shard=(k, 2)).run()
    with pytest.raises(UserError, match=r"holds records-1-of-2\.jsonl, from a run in 2 shards; this run is in 3 shards"):
        runner(tmp_path, dataset, shard=(1, 3)).run()
    with pytest.raises(UserError, match=r"holds records-1-of-2\.jsonl, from a run in 2 shards; this run is unsharded"):
        runner(tmp_path, dataset, resume=True).run()
    assert not (tmp_path / "records-1-of-3.jsonl").exists() and not (tmp_path / "records.jsonl").exists()
    other = tmp_path / "plain"
    runner(other, dataset).run()
    with pytest.raises(UserError, match=r"holds records\.jsonl, from an unsharded run; this run is in 2 shards"):
        runner(other, dataset, shard=(2, 2)).run()


def test_an_unsharded_run_beside_only_a_manifest_names_the_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text("{}\n")
    with pytest.raises(UserError, match=r"already holds manifest\.json; pass --resume"):
        runner(tmp_path).run()


# --------------------------------------------------------------------------- resume says what it cuts


def test_resume_says_how_many_bytes_it_cuts_and_which_example(tmp_path, capsys):
    first = runner(tmp_path, n=2)
    first.run()
    whole = read_records(first.records_path)
    partial = json.dumps(dict(whole[0], example_id="ex02"))[:80]
    with open(first.records_path, "a", encoding="utf-8") as handle:
        handle.write(partial)
    capsys.readouterr()
    runner(tmp_path, resume=True).run()
    err = capsys.readouterr().err
    assert f"cut a partly written last line (line 3, {len(partial)} bytes; example 'ex02', attacked again)" in err
    assert [r["example_id"] for r in read_records(first.records_path)] == ["ex00", "ex01", "ex02", "ex03"]


# --------------------------------------------------------------------------- full disk, read-only output


class FillingHandle:
    """A records file on a disk that fills up during the third record: part of it gets through."""

    def __init__(self, handle, room: int = 2) -> None:
        self.handle, self.room = handle, room

    def write(self, text: str) -> None:
        if self.room == 0:
            self.handle.write(text[:30])
            self.handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= 1
        self.handle.write(text)

    def flush(self) -> None:
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def test_a_full_disk_mid_run_names_the_file_and_the_records_stay_intact(tmp_path, monkeypatch):
    """ENOSPC injected at the third record's write (the real thing, on a tiny tmpfs, is below)."""
    real_init = records_module.RecordWriter.__init__

    def init(self, path, default=None):
        real_init(self, path, default)
        if self.path.name == "records.jsonl":
            self.handle = FillingHandle(self.handle)

    monkeypatch.setattr(records_module.RecordWriter, "__init__", init)
    with pytest.raises(OSError) as caught:
        runner(tmp_path).run()
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "records.jsonl")
    monkeypatch.setattr(records_module.RecordWriter, "__init__", real_init)
    assert [r["example_id"] for r in read_records(tmp_path / "records.jsonl")] == ["ex00", "ex01"]
    assert not (tmp_path / "records.jsonl.lock").exists()
    runner(tmp_path, resume=True).run()
    assert [r["example_id"] for r in read_records(tmp_path / "records.jsonl")] == ["ex00", "ex01", "ex02", "ex03"]


def _namespaces_with_mounts() -> str | None:
    """Why a user+mount namespace cannot be made here (None when it can)."""
    if shutil.which("unshare") is None:
        return "no namespaces here (unshare is not installed)"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"no namespaces here ({probe.stderr.strip() or 'unshare failed'})"


CLI = "import sys; from {module}.cli import main; sys.exit(main(sys.argv[1:]))"


def _in_namespace(mount: str, argv: list[str], module: str = "engine") -> subprocess.CompletedProcess:
    """Run `python -m <module> argv` in a user+mount namespace where /mnt is `mount` (a tmpfs spec)."""
    script = f'mount -t tmpfs -o {mount} tmpfs /mnt && exec "$0" -c "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, sys.executable, CLI.format(module=module), *argv],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture(scope="module")
def mounts():
    reason = _namespaces_with_mounts()
    if reason:
        print(reason)
        pytest.skip(reason)


def test_analysis_report_into_a_read_only_file_system_is_one_line(mounts, tmp_path):
    from analysis.synthetic import Study, write_study

    write_study(tmp_path / "logs", Study(examples=30, attacks=("mhm",)))
    done = _in_namespace("ro,size=64k", ["report", "--logs", str(tmp_path / "logs"), "--out", "/mnt/report",
                                         "--no-figures", "--bootstrap", "0"], module="analysis")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("analysis report: error: cannot write /mnt/report") and "read-only" in line


def test_engine_attack_on_a_full_disk_is_one_line_and_keeps_the_records_written(mounts, tmp_path):
    """A real full disk: a 64 KiB tmpfs with four free pages, filled by `engine attack` itself (a
    stand-in victim, so no model is loaded); the records file is copied out of the namespace."""
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"{split}.jsonl").write_text("".join(
            json.dumps({"id": f"{split}{i}", "code": f"def f{i}(a, b):\n    return a + b * {i}\n", "label": i % 2}) + "\n"
            for i in range(40)))
    script = ("import sys; sys.path.insert(0, {tests!r}); import attack_support, engine.victim as v;"
              "v.Victim.load = staticmethod(lambda *a, **k: attack_support.ConstantVictim());"
              "open('/mnt/filler', 'wb').write(b'x' * 49152);"
              "from engine.cli import main; sys.exit(main(sys.argv[1:]))").format(tests=str(Path(__file__).parent))
    argv = ["attack", "--attack", "wir-random", "--model", "stub", "--data-format", "jsonl", "--data", str(data),
            "--language", "python", "--columns", "code=code,label=label,id=id", "--out", "/mnt/run", "--no-progress"]
    shell = ('mount -t tmpfs -o size=64k tmpfs /mnt && "$0" -c "$@"; code=$?; '
             f'cp /mnt/run/records.jsonl {tmp_path}/; exit $code')
    done = subprocess.run(["unshare", "-rm", "sh", "-c", shell, sys.executable, script, *argv], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("engine attack: error: cannot write /mnt/run/records.jsonl: the disk is full"), done.stderr
    assert "the records written so far are intact" in last
    kept = read_records(tmp_path / "records.jsonl", repair=True)
    assert 1 <= len(kept) < 40 and [r["example_id"] for r in kept] == [f"test{i}" for i in range(len(kept))]


# --------------------------------------------------------------------------- bad dataset files


def _write(path: Path, lines: list[str | bytes]) -> None:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))


def _rows(split: str, n: int) -> list[str]:
    return [json.dumps({"id": f"{split}{i}", "code": f"def f{i}(a):\n    return a + {i}\n", "label": i % 2})
            for i in range(n)]


DATA_ARGS = ["--data-format", "jsonl", "--language", "python", "--columns", "code=code,label=label,id=id"]


@pytest.mark.parametrize("command", ["eval", "attack"])
def test_a_lone_surrogate_is_refused_at_load_with_file_and_line_and_skippable(tmp_path, capsys, command):
    _write(tmp_path / "train.jsonl", _rows("train", 8))
    _write(tmp_path / "valid.jsonl", _rows("valid", 4))
    bad = '{"id": "bad", "code": "def g(a):\\n    return \'\\ud800\'\\n", "label": 1}'
    _write(tmp_path / "test.jsonl", [*_rows("test", 2), bad, *_rows("test", 4)[2:]])
    argv = [command, "--model", str(tmp_path / "no-model"), "--data", str(tmp_path), *DATA_ARGS]
    if command == "attack":
        argv += ["--attack", "mhm", "--out", str(tmp_path / "out")]
    assert engine_main(argv) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'test.jsonl'}:3: not valid Unicode (a lone UTF-16 surrogate escape in 'code'" in err
    assert "--skip-bad" in err and "Traceback" not in err
    from engine.datasets.registry import load_dataset

    dataset = load_dataset("jsonl", tmp_path, language="python", columns="code=code,label=label,id=id", skip_bad=True)
    assert [e.id for e in dataset.split("test")] == ["test0", "test1", "test2", "test3"]
    assert dataset.manifest["skipped"]["by_reason"] == {"not valid Unicode": 1}


def test_invalid_utf8_names_the_line_and_the_file_offset_and_skip_bad_skips_only_it(tmp_path):
    from engine.datasets.registry import load_dataset

    lines = _rows("all", 12)
    lines[8] = lines[8].replace('"label"', '"note": "caf\xe9", "label"').encode("latin-1")  # \xe9 alone: not UTF-8
    _write(tmp_path / "data.jsonl", lines)
    in_line = lines[8].index(b"\xe9")
    offset = sum(len(line) + 1 for line in lines[:8]) + in_line
    with pytest.raises(UserError, match=rf"data\.jsonl:9: not valid UTF-8 \(invalid continuation byte at byte "
                                        rf"{offset:,} of the file, byte {in_line} of the line\)"):
        load_dataset("jsonl", tmp_path / "data.jsonl", language="python", columns="code=code,label=label,id=id")
    dataset = load_dataset("jsonl", tmp_path / "data.jsonl", language="python", columns="code=code,label=label,id=id",
                           skip_bad=True)
    assert sum(len(dataset.split(s)) for s in dataset.splits) == 11
    assert dataset.manifest["skipped"]["by_reason"] == {"not valid UTF-8": 1}


def test_an_empty_split_file_is_an_error_not_a_missing_split(tmp_path, capsys):
    _write(tmp_path / "train.jsonl", _rows("train", 10))
    _write(tmp_path / "valid.jsonl", _rows("valid", 4))
    (tmp_path / "test.jsonl").write_text("")
    argv = ["attack", "--attack", "mhm", "--model", "none", "--out", str(tmp_path / "out"),
            "--data", str(tmp_path), *DATA_ARGS]
    assert engine_main(argv) == 2
    err = capsys.readouterr().err
    assert f"{(tmp_path / 'test.jsonl').resolve()}: the test split holds no examples" in err
    assert not (tmp_path / "out").exists()


def test_float_options_refuse_nan_and_infinity_at_parse_time(capsys):
    for value in ("nan", "inf", "-Infinity", "1e999"):
        with pytest.raises(SystemExit) as caught:
            engine_main(["attack", "--attack", "mhm", "--model", "m", "--out", "o", "--dataset", "stdlib-attribution",
                         f"--mhm-threshold={value}"])
        assert caught.value.code == 2
        assert f"argument --mhm-threshold: {value!r} is not a finite number" in capsys.readouterr().err


def test_every_float_option_of_every_command_refuses_nan_and_infinity():
    import argparse

    from analysis.cli import build_parser as analysis_parser
    from engine.cli import build_parser as engine_parser

    def float_options(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in set(action.choices.values()):
                    yield from float_options(sub)
            elif action.type is float:
                yield parser, action

    found = [(p, a) for build in (engine_parser, analysis_parser) for p, a in float_options(build())]
    assert len(found) >= 12  # train, compress, pretrain-mlm, attack recipes, analysis --alpha, ...
    for parser, action in found:
        assert parser._get_value(action, "0.5") == 0.5
        for text in ("nan", "inf", "-inf", "1e400"):
            with pytest.raises(argparse.ArgumentError, match="not a finite number"):
                parser._get_value(action, text)
