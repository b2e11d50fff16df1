"""Study planning: stratified samples, model shapes without a network, cached throughput, expected and
bound costs, wall time on K workers, pilots, and a dry run that provably opens no connection."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.cli import build_parser
from engine.commands.study import run_study
from engine.datasets.sampling import allocate, stratified_sample
from engine.study.config import load_config
from engine.study.estimate import Estimator, wall_time
from engine.study.pilot import PILOT_FILE, PilotBook, pilot_plan
from engine.study.plan import Cell, Plan, expand, is_done
from engine.study.shapes import BUNDLED, ROBERTA_BASE, base_shape, scratch_shape
from engine.study.throughput import SpeedBook, prior_seconds
from tests.study_fakes import FakeRunner, fake_options
from tests.test_study import BASE, SMALL, write

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "engine" / "study" / "presets"


@dataclass(frozen=True)
class Ex:
    id: str
    label: int


def study(tmp_path: Path, config: Path, *extra: str, runner=None) -> int:
    args = build_parser().parse_args(["study", "--config", str(config), "--out", str(tmp_path / "out"),
                                      "--no-progress", *extra])
    return run_study(args, runner=runner or FakeRunner(), options=fake_options)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own cache (throughput, datasets) and never writes the user's."""
    monkeypatch.setenv("CRT_CACHE_DIR", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- samples


def test_stratified_sample_keeps_label_shares_order_and_is_the_same_in_every_run():
    population = [Ex(f"e{i}", 0 if i % 4 else 1) for i in range(200)]  # 150 of label 0, 50 of label 1
    sample = stratified_sample(population, 20)
    assert len(sample) == 20 and sum(e.label == 1 for e in sample) == 5
    assert [population.index(e) for e in sample] == sorted(population.index(e) for e in sample)  # population order
    shuffled = population[:]
    random.Random(1).shuffle(shuffled)
    assert {e.id for e in stratified_sample(shuffled, 20)} == {e.id for e in sample}  # ids decide, not order
    assert stratified_sample(population, 500) == population
    seats = allocate({0: 7, 1: 2, 2: 1}, 5)  # quotas 3.5, 1.0, 0.5: the larger remainder first, ties to the smaller label
    assert seats == {0: 4, 1: 1, 2: 0} and sum(seats.values()) == 5
    with pytest.raises(ValueError):
        stratified_sample(population, 0)


def test_attack_selection_samples_the_first_n():
    from engine.attacks.runner import select_examples

    population = [Ex(f"e{i}", i % 3) for i in range(90)]
    chosen = select_examples(population, 30, None, sample=9)
    assert len(chosen) == 9 and {e.label for e in chosen} == {0, 1, 2}
    assert all(population.index(e) < 30 for e in chosen)
    assert select_examples(population, 30, None) == population[:30]


# --------------------------------------------------------------------------- shapes


def test_every_model_a_preset_names_has_a_shape_without_a_network(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    paper = (PRESETS / "paper.toml").read_text(encoding="utf-8")
    named = [line.split('"')[1] for line in paper.splitlines() if line.startswith(("base =", "source ="))]
    assert named and all(name in BUNDLED for name in named), named
    for name in named:
        found = base_shape(name)
        assert found.source == "bundled table" and not found.available and found.hub_id == name
        assert (found.shape.layers, found.shape.hidden) == (12, 768)
    assert base_shape("scratch:tiny").shape == scratch_shape("tiny")
    assert base_shape("someone/unknown-model").source.startswith("assumed")


def test_a_cached_hub_config_wins_over_the_bundled_table(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    snapshot = tmp_path / "hub" / "models--microsoft--codebert-base" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    (snapshot / "config.json").write_text(json.dumps({
        "model_type": "roberta", "num_hidden_layers": 6, "hidden_size": 768, "num_attention_heads": 12,
        "intermediate_size": 3072, "vocab_size": 50265, "max_position_embeddings": 514, "pad_token_id": 1}))
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    found = base_shape("microsoft/codebert-base")
    assert found.source == "HF cache" and found.shape.layers == 6 and found.shape.max_positions == 512
    assert not found.available  # its config, but not its weights
    (snapshot / "pytorch_model.bin").write_bytes(b"weights")
    assert base_shape("microsoft/codebert-base").available


# --------------------------------------------------------------------------- throughput


def test_throughput_is_measured_once_per_machine_and_shape(tmp_path, monkeypatch):
    cache = tmp_path / "speeds.json"
    tiny = scratch_shape("tiny")
    first = SpeedBook(device="cpu", threads=1, cache_path=cache, log=open(os.devnull, "w"))
    measured = first.seconds_per_pass(tiny, 64)
    first.save()
    assert measured.source == "measured now" and 0 < measured.seconds < 1
    again = SpeedBook(device="cpu", threads=1, cache_path=cache, measure=False)
    cached = again.seconds_per_pass(tiny, 64)
    assert cached.source == "cache" and cached.seconds == measured.seconds
    assert again.seconds_per_pass(tiny, 128).source == "prior"  # another length bucket: not measured here
    monkeypatch.setattr("engine.study.throughput.machine_fingerprint", lambda: {"host": "another machine"})
    elsewhere = SpeedBook(device="cpu", threads=1, cache_path=cache, measure=False)
    assert elsewhere.seconds_per_pass(tiny, 64).source == "prior"


def test_priors_scale_with_length_threads_and_int8():
    base = prior_seconds(ROBERTA_BASE, 256)
    assert base == pytest.approx(1 / 5.0)
    assert prior_seconds(ROBERTA_BASE, 512) == pytest.approx(2 * base)
    assert prior_seconds(ROBERTA_BASE, 256, threads=2) == pytest.approx(base / 2)
    assert prior_seconds(ROBERTA_BASE, 256, int8=True) < base
    assert prior_seconds(scratch_shape("tiny"), 256) < prior_seconds(scratch_shape("small"), 256) < base


# --------------------------------------------------------------------------- costs


def _estimator(plan: Plan, root: Path, pilots=None) -> Estimator:
    speeds = SpeedBook(device="cpu", threads=1, measure=False, cache_path=root / "speeds.json")
    return Estimator(plan, root, speeds, pilots=pilots, count_builtins=False)


def test_expected_cost_is_the_prior_capped_by_the_budget_and_the_bound_the_whole_budget(tmp_path):
    plan = expand(load_config(write(tmp_path, BASE.replace("budget = 50", "budget = 5000")), fake_options))
    estimator = _estimator(plan, tmp_path)
    alert = estimator.cell(plan.cells["attack:stdlib:tiny:prune:alert:s0"])
    mhm = estimator.cell(plan.cells["attack:stdlib:tiny:prune:mhm:s0"])
    assert alert.queries == mhm.queries == 6 * 5000  # bound: n × budget
    assert alert.per_example["queries"].value == 4009 and alert.per_example["queries"].origin == "prior"
    assert mhm.per_example["queries"].value == 713
    assert alert.expected_queries == 6 * 4009 and alert.seconds < alert.bound_seconds
    small = _estimator(plan := expand(load_config(write(tmp_path, BASE), fake_options)), tmp_path)
    capped = small.cell(plan.cells["attack:stdlib:tiny:prune:alert:s0"])
    assert capped.per_example["queries"].value == 50 and capped.seconds == pytest.approx(capped.bound_seconds)


def test_wall_time_respects_dependencies_and_workers():
    cells = {name: Cell("train", name, name, {}, deps) for name, deps in
             (("a", ()), ("b", ("a",)), ("c", ()), ("d", ()))}
    plan = Plan("x", cells)
    seconds = {"a": 10.0, "b": 5.0, "c": 8.0, "d": 4.0}
    assert wall_time(plan, seconds, set(cells), 1) == 27.0
    assert wall_time(plan, seconds, set(cells), 2) == 15.0  # a→b on one worker (15), c then d on the other (12)
    assert wall_time(plan, seconds, set(cells), 8) == 15.0  # the critical path
    assert wall_time(plan, seconds, {"b", "c"}, 2) == 8.0  # a is done already


def test_examples_per_cell_samples_attacks_and_substitutes_only(tmp_path):
    text = BASE + '\n[[attacks]]\nrecipe = "wir-random"\n'
    full = expand(load_config(write(tmp_path, text), fake_options))
    sampled_config = load_config(write(tmp_path, text.replace('seeds = [0, 1]', 'seeds = [0, 1]\nexamples_per_cell = 3'),
                                       "sampled.toml"), fake_options)
    sampled = expand(sampled_config)
    for name, cell in full.cells.items():
        changed = cell.key != sampled.cells[name].key
        assert changed == (cell.kind in ("attack", "substitutes", "report")), name
    from engine.study.stages import build_calls

    attack = sampled.cells["attack:stdlib:tiny:prune:alert:s0"]
    (call,) = build_calls(attack, sampled, progress=False, options=fake_options)
    assert call.argv[call.argv.index("--sample") + 1] == "3"
    (call,) = build_calls(sampled.cells["substitutes:stdlib"], sampled, progress=False, options=fake_options)
    assert call.argv[call.argv.index("--sample") + 1] == "3" and call.argv[call.argv.index("--n") + 1] == "6"
    (call,) = build_calls(full.cells["attack:stdlib:tiny:prune:alert:s0"], full, progress=False, options=fake_options)
    assert "--sample" not in call.argv


# --------------------------------------------------------------------------- pilots (fake stages)


def test_pilot_measures_then_prices_the_study(tmp_path, capsys):
    config = write(tmp_path, SMALL)
    out = tmp_path / "out"
    assert study(tmp_path, config, "--only", "train") == 0  # the real victim exists: the pilot must attack it
    runner = FakeRunner()
    assert study(tmp_path, config, "--pilot", "3", "--no-measure", runner=runner) == 0
    text = capsys.readouterr().out
    trains = [call for call in runner.calls if call[0] == "train"]
    assert trains == []  # the done real train cell was reused, not retrained short
    compress = [call for call in runner.calls if call[0] == "compress"]
    assert compress and all(call[call.index("--model") + 1].endswith("/tiny") for call in compress)
    attacks = [call for call in runner.calls if call[0] == "attack"]
    assert attacks and all(call[call.index("--sample") + 1] == "3" for call in attacks)
    summary = json.loads((out / PILOT_FILE).read_text())
    assert len(summary["attacks"]) == len(attacks) and all(a["examples"] == 3 for a in summary["attacks"])
    one = summary["attacks"][0]
    assert one["queries"]["mean"] == pytest.approx(one["queries_total"] / 3)
    # The closing plan prices every attack cell of the real study by its pilot.
    assert "pilot: 4 attack cells measured" in text
    real = expand(load_config(config, fake_options))
    book = PilotBook(out, "machine", "cpu")
    estimator = _estimator(real, out, pilots=book)
    for cell in (c for c in real.cells.values() if c.kind == "attack"):
        estimate = estimator.cell(cell)
        assert estimate.per_example["queries"].origin == "pilot", cell.name
        entry = book.by_name[cell.name]
        assert estimate.per_example["queries"].value == pytest.approx(entry["queries_total"] / entry["examples"])
        assert estimate.per_example["seconds_per_pass"].origin != "pilot"  # measured on "another machine"
    assert "4 of 4 attack cells from pilots" in text
    assert not any(is_done(out, c) for c in real.cells.values() if c.kind == "attack")  # the study itself did not run
    # a second pilot finds its cells done
    again = FakeRunner()
    assert study(tmp_path, config, "--pilot", "3", "--no-measure", runner=again) == 0
    assert again.calls == []


def test_pilot_model_cells_are_the_study_s_own_unless_pilot_epochs_shortens_them(tmp_path):
    config = load_config(write(tmp_path, SMALL), fake_options)
    full = expand(config)
    pilot = pilot_plan(config, full, tmp_path / "out", 2)
    for name, cell in pilot.cells.items():
        if cell.kind in ("train", "compress", "mlm"):
            assert cell.key == full.cells[name].key, name  # trained once, for the pilot and the study
        if cell.kind == "attack":
            assert cell.config["sample"] == 2 and not cell.meta["short_victim"]
    assert not any(c.kind == "report" for c in pilot.cells.values())
    short = pilot_plan(config, full, tmp_path / "out", 2, epochs=1)
    train = short.cells["train:stdlib:tiny"]
    assert train.config["options"]["epochs"] == 1 and train.key != full.cells["train:stdlib:tiny"].key
    assert short.cells["compress:stdlib:tiny:prune"].meta["short"]  # a variant of a short victim
    assert all(c.meta["short_victim"] for c in short.cells.values() if c.kind == "attack")


def test_short_victims_count_queries_per_attacked_example(tmp_path):
    from engine.study.pilot import PilotBook, attack_figures

    records = [{"status": "skipped_misclassified", "queries": 1, "forward_passes": 1, "wall_time_s": 2.0}] + \
              [{"status": "failed", "queries": 40, "forward_passes": 30, "wall_time_s": 0.3}] * 2
    figures = attack_figures(records)
    assert figures["seconds_per_pass"] == pytest.approx(0.6 / 60)  # without the first example
    assert figures["startup_seconds"] == pytest.approx(2.0 - 1 * 0.01)
    entry = {"name": "attack:x", "recipe": "mhm", "task": "t", "shape": "s", "int8": False, "budget": 40, **figures}
    for short, expected in ((False, 81 / 3), (True, 40.0)):
        (tmp_path / PILOT_FILE).write_text(json.dumps({"format": 1, "machine": "m", "device": "cpu",
                                                       "attacks": [{**entry, "short_victim": short}], "stages": []}))
        book = PilotBook(tmp_path, "m", "cpu")
        cell = Cell("attack", "attack:x", "k", {"recipe": "mhm"}, ())
        assert book.attack(cell, "t", None, 40).queries == pytest.approx(expected)


# --------------------------------------------------------------------------- no network, no hang


AUDIT = textwrap.dedent('''
    import os, socket, sys
    LOG = os.environ["NETWORK_ATTEMPTS"]
    def hook(event, args):
        if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
            target = repr(args[:2])
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock = args[0]
            if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
                return
            target = repr(args[1])
        else:
            return
        with open(LOG, "a") as handle:
            handle.write(f"{event} {target}\\n")
        raise OSError(f"network blocked by the test: {event} {target}")
    sys.addaudithook(hook)
''')


def _offline(tmp_path: Path, args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, str]:
    """Run `python ARGS` with every Python-level connection recorded and refused, and without a network
    namespace where `unshare -rn` works; HF_HUB_OFFLINE is deliberately not set."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(AUDIT)
    attempts = tmp_path / "attempts.log"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), NETWORK_ATTEMPTS=str(attempts),
               HF_HOME=str(tmp_path / "hf-home"), HF_HUB_CACHE=str(tmp_path / "hf-home" / "hub"))
    command = [sys.executable, *args]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-rn", *command]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return done, attempts.read_text() if attempts.exists() else ""


def test_the_harness_sees_a_connection_attempt(tmp_path):
    script = tmp_path / "fetch.py"
    script.write_text("import urllib.request\ntry:\n    urllib.request.urlopen('http://example.org/', timeout=5)\n"
                      "except OSError as err:\n    print('refused:', err)\n")
    done, attempts = _offline(tmp_path, [str(script)], timeout=60)
    assert "socket.getaddrinfo ('example.org', 80)" in attempts and "refused:" in done.stdout


def test_paper_dry_run_opens_no_connection_and_answers_in_seconds(tmp_path):
    cache = Path(os.environ["CRT_CACHE_DIR"])
    speeds = SpeedBook(device="cpu", measure=False, cache_path=cache / "throughput.json")
    entries = speeds._mine()["entries"]  # seed this machine's cache: the measuring itself is tested above
    plan = expand(load_config(PRESETS / "paper.toml"))
    estimator = Estimator(plan, tmp_path, speeds, count_builtins=False)
    for cell in plan.cells.values():
        if cell.kind in ("train", "compress"):
            shape, length = estimator.victim_shape(cell)
            entries[speeds.entry_key(shape.shape, length, shape.int8)] = {"seconds": 0.5, "date": "seeded"}
    speeds._dirty = True
    speeds.save()
    done, attempts = _offline(tmp_path, ["-m", "engine", "study", "--preset", "paper", "--out", str(tmp_path / "paper"),
                                         "--dry-run"], timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert attempts == ""
    text = done.stdout
    assert "184 cells (9 train, 27 compress, 3 substitutes, 144 attack, 1 report)" in text
    for hub_id in ("microsoft/codebert-base", "microsoft/graphcodebert-base", "microsoft/unixcoder-base",
                   "microsoft/codebert-base-mlm"):
        assert f"{hub_id} is not available locally" in text
    assert "attack queries:" in text and "expected" in text and "at most" in text
    assert "measured earlier on this machine (cache)" in text and "measuring" not in done.stderr
    seconds = float(text.rsplit("planned in ", 1)[1].split()[0])
    assert seconds < 30  # generous for a loaded CI machine; docs/study.md has the benchmark


def test_a_dry_run_that_measures_opens_no_connection(tmp_path):
    text = SMALL.replace('device = "cpu"', 'device = "cpu"\nthreads = 1').replace(
        'builtin = "stdlib-attribution"\nsize = 20', 'loader = "gcj"\npath = "/nowhere/gcj"')  # planning reads no file
    config = write(tmp_path, text)
    done, attempts = _offline(tmp_path, ["-m", "engine", "study", "--config", str(config), "--out", str(tmp_path / "o"),
                                         "--dry-run"], timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert attempts == ""
    assert "measuring 2×64 fp32 at 256 tokens on cpu" in done.stderr
    assert "measured now" in done.stdout


def test_report_notes_say_the_runs_are_a_sample_and_of_what():
    from analysis.samples import sample_notes

    sampled = {"dataset": {"name": "devign", "split": "test", "sample": {"size": 100, "of": 2732, "stratified_by": "label"}}}
    full = {"dataset": {"name": "gcj", "split": "test", "sample": None}}
    notes = sample_notes({"a/manifest.json": sampled, "b/manifest.json": sampled, "c/manifest.json": full})
    assert notes == ["A sample, not the full design: 2 attack run(s) on devign attacked a label-stratified sample of "
                     "100 of the 2,732 test examples the design attacks; rates and tests describe that sample."]
    assert sample_notes({"c/manifest.json": full, "d/manifest.json": {}}) == []


def test_a_builtin_that_cannot_be_built_is_assumed_and_said_so_while_a_bug_still_raises(monkeypatch, capsys):
    from engine.common.errors import UserError
    from engine.datasets import registry
    from engine.study.estimate import _dataset_size

    def refuse(*args, **kwargs):
        raise UserError("the corpus is not installed")

    monkeypatch.setattr(registry, "build_builtin", refuse)
    train, test, labels = _dataset_size({"builtin": "stdlib-attribution", "size": 20}, build=True)
    assert (train, test, labels) == (160, 20, 10)
    assert "could not build stdlib-attribution to count it (the corpus is not installed); assuming 200" in capsys.readouterr().err

    def crash(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(registry, "build_builtin", crash)
    with pytest.raises(KeyError):
        _dataset_size({"builtin": "stdlib-attribution", "size": 20}, build=True)
