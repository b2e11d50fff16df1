"""Study configs for robust compression (issue 17), with fake stages: compressions of another
compression's output (`of`), attack entries of one recipe at another budget (`name`, written to
the records as `attack_name`), transfer attacks from the original (`transfer`), their cells,
dependencies, command lines, keys and costs, and the errors of bad entries."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import build_parser
from engine.commands.study import run_study
from engine.compress.methods import METHODS
from engine.study.config import StudyConfigError, load_config
from engine.study.estimate import DEFAULT_EPOCHS, HARDEN_RENAMINGS, REPLAY_PASSES, TRAIN_PASSES, Estimator
from engine.study.plan import expand
from engine.study.stages import build_calls
from engine.study.throughput import Speed
from tests.study_fakes import FakeRunner, fake_options

ROOT = Path(__file__).resolve().parents[1]
# `harden` comes with the robust fine-tuning method; `of` itself works with any method.
ROBUST_METHOD = "harden" if "harden" in METHODS else "prune"

BASE = f"""
[study]
name = "robust-mini"
seeds = [0]
device = "cpu"
report = []

[[datasets]]
name = "stdlib"
builtin = "stdlib-attribution"
size = 20

[[models]]
name = "tiny"
base = "scratch:tiny"
epochs = 2

[[compressions]]
name = "prune"
method = "prune"
ratio = 0.5

[[compressions]]
name = "prune-robust"
method = "{ROBUST_METHOD}"
of = "prune"

[attack_defaults]
n = 4
budget = 10

[[attacks]]
recipe = "mhm"

[[attacks]]
recipe = "mhm"
name = "mhm-4x"
budget = 40

[[attacks]]
transfer = "mhm"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str = BASE):
    return load_config(write(tmp_path, text), fake_options)


def test_entries_resolve_transfer_and_budget_labels(tmp_path):
    config = load(tmp_path)
    names = [a.name for a in config.attacks]
    assert names == ["mhm", "mhm-4x", "mhm-transfer"]
    transfer = config.attacks[2]
    assert transfer.values["recipe"] == "mhm" and transfer.values["budget"] == 10 and transfer.values["n"] == 4
    assert transfer.values["substitutes"] is False
    assert config.compressions[1].values["of"] == "prune" and config.compressions[0].values["of"] is None


def test_cells_dependencies_and_command_lines(tmp_path):
    config = load(tmp_path)
    plan = expand(config)
    cells = plan.cells
    robust = cells["compress:stdlib:tiny:prune-robust"]
    assert robust.deps == ("compress:stdlib:tiny:prune",)  # the robust variant is made from the pruned one
    argv = build_calls(robust, plan, progress=False, options=fake_options)[0].argv
    assert argv[argv.index("--model") + 1] == "{root}/" + cells["compress:stdlib:tiny:prune"].output
    assert argv[argv.index("--method") + 1] == ROBUST_METHOD

    attacks = [c for c in cells.values() if c.kind == "attack"]
    assert len(attacks) == 3 * 3  # original, prune, prune-robust x mhm, mhm-4x, mhm-transfer
    four = cells["attack:stdlib:tiny:prune:mhm-4x:s0"]
    argv = build_calls(four, plan, progress=False, options=fake_options)[0].argv
    assert argv[argv.index("--budget") + 1] == "40" and argv[argv.index("--attack-name") + 1] == "mhm-4x"
    plain = build_calls(cells["attack:stdlib:tiny:prune:mhm:s0"], plan, progress=False, options=fake_options)[0].argv
    assert "--attack-name" not in plain  # a recipe's own entry keeps the records it always wrote

    source = cells["attack:stdlib:tiny:original:mhm:s0"]
    for variant in ("original", "prune", "prune-robust"):
        cell = cells[f"attack:stdlib:tiny:{variant}:mhm-transfer:s0"]
        assert source.name in cell.deps  # every transfer replays what MHM found on the original
        argv = build_calls(cell, plan, progress=False, options=fake_options)[0].argv
        assert argv[argv.index("--transfer-from") + 1] == "{root}/" + source.output
        assert argv[argv.index("--attack-name") + 1] == "mhm-transfer"
    names = list(cells)
    assert all(names.index(source.name) < names.index(c.name) for c in attacks if "transfer" in c.name)


def test_new_keys_leave_other_cells_keys_alone(tmp_path):
    """Adding a robust variant, a 4x entry and a transfer changes no key of the cells that were there."""
    plain = BASE.split('[[compressions]]\nname = "prune-robust"')[0] + "[attack_defaults]\nn = 4\nbudget = 10\n\n" \
        "[[attacks]]\nrecipe = \"mhm\"\n"
    before = {n: c.key for n, c in expand(load(tmp_path, plain)).cells.items()}
    after = {n: c.key for n, c in expand(load(tmp_path, BASE)).cells.items()}
    assert before and all(after[name] == key for name, key in before.items() if not name.startswith("report"))


def test_a_study_runs_transfers_after_their_source_and_records_the_names(tmp_path):
    args = build_parser().parse_args(["study", "--config", str(write(tmp_path, BASE)), "--out", str(tmp_path / "out"),
                                      "--no-progress"])
    runner = FakeRunner()
    assert run_study(args, runner=runner, options=fake_options) == 0
    order = [" ".join(call) for call in runner.calls]
    first_transfer = next(i for i, call in enumerate(order) if "--transfer-from" in call)
    source = next(i for i, call in enumerate(order) if call.startswith("attack") and "--transfer-from" not in call
                  and "--attack-name" not in call and "/tiny " in call + " ")
    assert source < first_transfer
    records = [json.loads(line) for path in (tmp_path / "out" / "cells" / "attack").glob("*mhm-4x*/logs/records.jsonl")
               for line in path.read_text().splitlines()]
    assert records and {r["attack_name"] for r in records} == {"mhm-4x"}


@pytest.mark.parametrize("change, message", [
    ('of = "prune"', "names no [[compressions]] entry listed before"),
    ('transfer = "mhm"', "transfer = 'nothing'"),
])
def test_bad_references_are_one_line_errors(tmp_path, change, message):
    if change.startswith("of"):
        text = BASE.replace('name = "prune"\nmethod = "prune"\nratio = 0.5', 'name = "prune"\nmethod = "prune"\n'
                            'ratio = 0.5\nof = "prune-robust"')
        message = "of = 'prune-robust' names no [[compressions]] entry listed before"
    else:
        text = BASE.replace('transfer = "mhm"', 'transfer = "nothing"')
    with pytest.raises(StudyConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        load(tmp_path, text)
    assert "study.toml" in str(err.value) and "\n" not in str(err.value)


def test_transfer_errors(tmp_path):
    with pytest.raises(StudyConfigError, match="set include_original = true"):
        load(tmp_path, BASE.replace('report = []', 'report = []\ninclude_original = false'))
    with pytest.raises(StudyConfigError, match="differs from the recipe of 'mhm'"):
        load(tmp_path, BASE.replace('transfer = "mhm"', 'transfer = "mhm"\nrecipe = "alert"'))
    with pytest.raises(StudyConfigError, match="is itself a transfer entry"):
        load(tmp_path, BASE + '\n[[attacks]]\nname = "again"\ntransfer = "mhm-transfer"\n')
    with pytest.raises(StudyConfigError, match="the key 'recipe' is required"):
        load(tmp_path, BASE + '\n[[attacks]]\nname = "nothing"\n')
    with pytest.raises(StudyConfigError, match="'attack_name' is set by the study itself"):
        load(tmp_path, BASE.replace('name = "mhm-4x"', 'name = "mhm-4x"\nattack_name = "x"'))


class _Speeds:
    """A fixed price per forward pass, whatever the shape."""

    def seconds_per_pass(self, shape, length, int8=False):
        return Speed(0.001, "prior", "")

    def memo(self, kind, key, make):
        return make()


def test_costs_harden_like_training_and_transfer_as_replay(tmp_path):
    config = load(tmp_path)
    plan = expand(config)
    estimator = Estimator(plan, tmp_path, _Speeds(), count_builtins=False)
    n_train, n_test, _ = estimator.dataset_size(plan.cells["train:stdlib:tiny"].config["dataset"])
    robust = estimator.cell(plan.cells["compress:stdlib:tiny:prune-robust"])
    if ROBUST_METHOD == "harden":
        copies = 1 + HARDEN_RENAMINGS
        assert robust.seconds == pytest.approx(DEFAULT_EPOCHS["harden"] * copies * n_train * TRAIN_PASSES * 0.001)
    transfer = estimator.cell(plan.cells["attack:stdlib:tiny:prune-robust:mhm-transfer:s0"])
    examples = min(4, n_test)
    assert transfer.seconds == transfer.bound_seconds == pytest.approx(examples * REPLAY_PASSES * 0.001)
    four = estimator.cell(plan.cells["attack:stdlib:tiny:prune:mhm-4x:s0"])
    plain = estimator.cell(plan.cells["attack:stdlib:tiny:prune:mhm:s0"])
    assert four.bound_seconds == pytest.approx(4 * plain.bound_seconds)


def test_the_robust_preset_validates():
    pytest.importorskip("engine.compress.robust", reason="the harden method is not installed here")
    config = load_config(ROOT / "engine" / "study" / "presets" / "robust.toml")
    names = {c.name for c in config.compressions}
    assert {c.values["of"] for c in config.compressions if c.values["method"] == "harden"} <= names
    assert any(a.values["transfer"] for a in config.attacks)


def test_the_pretrained_robust_preset_plans_a_robust_variant_of_every_standard_one():
    """robust-minilm: the MiniLM victim, its pruned and int8 variants, a hardened one of each, and
    the same attacks as the robust preset (the study expands without a model or dataset read)."""
    pytest.importorskip("engine.compress.robust", reason="the harden method is not installed here")
    presets = ROOT / "engine" / "study" / "presets"
    config = load_config(presets / "robust-minilm.toml")
    assert [m.values["base"] for m in config.models] == ["minilm"]
    hardened = {c.values["of"] for c in config.compressions if c.values["method"] == "harden"}
    assert hardened == {c.name for c in config.compressions if c.values["method"] in ("prune", "quantize")}
    robust = load_config(presets / "robust.toml")
    assert [a.name for a in config.attacks] == [a.name for a in robust.attacks]
    cells = expand(config).cells
    assert "attack:gcjpy:minilm:int8-robust:alert-4x:s0" in cells


def test_models_restricted_to_datasets(tmp_path):
    text = BASE.replace('[[models]]\nname = "tiny"\nbase = "scratch:tiny"\nepochs = 2\n',
                        '[[models]]\nname = "tiny"\nbase = "scratch:tiny"\nepochs = 2\ndatasets = ["stdlib"]\n\n'
                        '[[models]]\nname = "long"\nbase = "scratch:tiny"\nepochs = 9\ndatasets = ["other"]\n')
    text = text.replace('[[models]]', '[[datasets]]\nname = "other"\nbuiltin = "stdlib-attribution"\nsize = 30\n\n[[models]]', 1)
    cells = expand(load(tmp_path, text)).cells
    assert {c.name for c in cells.values() if c.kind == "train"} == {"train:stdlib:tiny", "train:other:long"}
    with pytest.raises(StudyConfigError, match=r"datasets = \['nowhere'\] names no \[\[datasets\]\] entry"):
        load(tmp_path, text.replace('datasets = ["other"]', 'datasets = ["nowhere"]'))


def test_compressions_restricted_to_models(tmp_path):
    two_models = BASE.replace('[[models]]\nname = "tiny"\nbase = "scratch:tiny"\nepochs = 2\n',
                              '[[models]]\nname = "tiny"\nbase = "scratch:tiny"\nepochs = 2\n\n'
                              '[[models]]\nname = "other"\nbase = "scratch:tiny"\nepochs = 3\n')
    text = two_models.replace('name = "prune"\nmethod = "prune"\nratio = 0.5\n',
                              'name = "prune"\nmethod = "prune"\nratio = 0.5\nmodels = ["tiny"]\n')
    text = text.replace('of = "prune"\n', 'of = "prune"\nmodels = ["tiny"]\n')
    compress = {c.name for c in expand(load(tmp_path, text)).cells.values() if c.kind == "compress"}
    assert compress == {"compress:stdlib:tiny:prune", "compress:stdlib:tiny:prune-robust"}
    # restricting an entry leaves its cells' keys alone: a study that adds `models` resumes its cells
    unrestricted = expand(load(tmp_path, two_models)).cells
    restricted = expand(load(tmp_path, text)).cells
    assert restricted["compress:stdlib:tiny:prune-robust"].key == unrestricted["compress:stdlib:tiny:prune-robust"].key
    with pytest.raises(StudyConfigError, match=r"models = \['nowhere'\] names no \[\[models\]\] entry"):
        load(tmp_path, text.replace('models = ["tiny"]\n', 'models = ["nowhere"]\n', 1))
    # a robust entry for every victim of a variant made for one victim only has nothing to compress
    with pytest.raises(StudyConfigError, match=r"of = 'prune' is not made for models \['other'\]"):
        load(tmp_path, text.replace('of = "prune"\nmodels = ["tiny"]\n', 'of = "prune"\n'))
    with pytest.raises(StudyConfigError, match=r"\[labels\]: 'other-prune' names no variant"):
        load(tmp_path, text + '\n[labels]\nother-prune = "Pruned"\n')


# --------------------------------------------------------------------------- [[augment]]: adversarial programs

AUGMENTED = BASE.replace('[attack_defaults]', '''[[compressions]]
name = "prune-adv"
method = "harden"
of = "prune"
adversarial = "alert-prune"

[[augment]]
name = "alert-prune"
of = "prune"
attack = "alert"
budget = 160
n = 6

[mlm]
base = "scratch:tiny"
epochs = 1

[attack_defaults]''', 1)


def test_augment_cells_feed_the_compressions_that_name_them(tmp_path):
    """[[augment]] alert on the pruned variant: train-split substitutes and an augment cell before the
    compression that trains on its programs (`--adversarial`); the attacks' substitutes stay as they were."""
    plan = expand(load(tmp_path, AUGMENTED))
    cells = plan.cells
    augment = cells["augment:stdlib:tiny:alert-prune"]
    assert augment.deps == ("compress:stdlib:tiny:prune", "substitutes:stdlib:train")
    assert cells["substitutes:stdlib:train"].config["splits"] == ["train"]
    assert cells["substitutes:stdlib:train"].deps == ("mlm:stdlib",)
    argv = build_calls(augment, plan, progress=False, options=fake_options)[0].argv
    assert argv[:3] == ("augment", "--attack", "alert")
    assert argv[argv.index("--model") + 1] == "{root}/" + cells["compress:stdlib:tiny:prune"].output
    assert argv[argv.index("--split") + 1] == "train" and argv[argv.index("--n") + 1] == "6"
    assert argv[argv.index("--budget") + 1] == "160"
    assert argv[argv.index("--substitutes") + 1] == "{root}/" + cells["substitutes:stdlib:train"].output
    robust = cells["compress:stdlib:tiny:prune-adv"]
    assert robust.deps == ("compress:stdlib:tiny:prune", augment.name)  # its parent first
    argv = build_calls(robust, plan, progress=False, options=fake_options)[0].argv
    assert argv[argv.index("--adversarial") + 1] == "{root}/" + augment.output
    names = list(cells)
    assert names.index(augment.name) < names.index(robust.name)
    # no test-split attack needs substitutes here: only the train split's cell exists
    assert [c for c in cells if c.startswith("substitutes")] == ["substitutes:stdlib:train"]
    # the cells of the study without it keep their keys
    before = {n: c.key for n, c in expand(load(tmp_path, BASE)).cells.items()}
    assert all(cells[name].key == key for name, key in before.items() if not name.startswith("report"))
    # the augment's settings are in the key of what it feeds
    other = expand(load(tmp_path, AUGMENTED.replace("budget = 160", "budget = 80"))).cells
    assert other["compress:stdlib:tiny:prune-adv"].key != robust.key
    assert other["compress:stdlib:tiny:prune-robust"].key == cells["compress:stdlib:tiny:prune-robust"].key
    # a pilot of N examples makes the adversarial programs of N training programs
    from engine.study.pilot import pilot_config

    assert pilot_config(load(tmp_path, AUGMENTED), 3).augments[0].values["n"] == 3


def test_a_study_with_augment_runs_it_before_its_compression(tmp_path):
    args = build_parser().parse_args(["study", "--config", str(write(tmp_path, AUGMENTED)), "--out",
                                      str(tmp_path / "out"), "--no-progress"])
    runner = FakeRunner()
    assert run_study(args, runner=runner, options=fake_options) == 0
    commands = [" ".join(call) for call in runner.calls]
    augment = next(i for i, call in enumerate(commands) if call.startswith("augment"))
    trained = next(i for i, call in enumerate(commands) if "--adversarial" in call)
    assert augment < trained
    estimate = Estimator(expand(load(tmp_path, AUGMENTED)), tmp_path / "out", _Speeds(), count_builtins=False)
    cell = estimate.plan.cells["augment:stdlib:tiny:alert-prune"]
    assert estimate.cell(cell).seconds > 0


def test_adversarial_programs_are_priced_assumed_then_counted(tmp_path):
    """harden --adversarial trains on one adversarial program per epoch for each example that has some:
    every example is assumed to until the augment cell has written its programs, then they are counted."""
    plan = expand(load(tmp_path, AUGMENTED))
    root = tmp_path / "out"
    estimator = Estimator(plan, root, _Speeds(), count_builtins=False)
    n_train = estimator.dataset_size(plan.cells["train:stdlib:tiny"].config["dataset"])[0]
    cell = plan.cells["compress:stdlib:tiny:prune-adv"]
    per_copy = DEFAULT_EPOCHS["harden"] * n_train * TRAIN_PASSES * 0.001
    assumed = estimator.cell(cell)
    assert assumed.seconds == pytest.approx((1 + HARDEN_RENAMINGS + 1) * per_copy)
    assert "assumed one per example" in assumed.basis
    written = root / plan.cells["augment:stdlib:tiny:alert-prune"].output / "train.jsonl"
    written.parent.mkdir(parents=True)
    rows = [{"original_id": example_id, "code": "x", "label": 0} for example_id in ("a", "a", "b")]
    written.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    counted = Estimator(plan, root, _Speeds(), count_builtins=False).cell(cell)
    assert counted.seconds == pytest.approx((1 + HARDEN_RENAMINGS + 2 / n_train) * per_copy)
    assert "2 examples have some" in counted.basis
    plain = estimator.cell(plan.cells["compress:stdlib:tiny:prune-robust"])
    assert plain.seconds == pytest.approx((1 + HARDEN_RENAMINGS) * per_copy)


def test_robust_distillation_prices_its_renamed_copies(tmp_path):
    """distill --robust: the epochs after the warm-up also train on `renamings` copies of each program."""
    text = BASE.replace("[attack_defaults]", """[[compressions]]
name = "student"
method = "distill"
epochs = 10
target_mb = 0.5

[[compressions]]
name = "robust-student"
method = "distill"
robust = true
renamings = 2
robust_warmup = 4
epochs = 10
target_mb = 0.5

[attack_defaults]""", 1)
    plan = expand(load_config(write(tmp_path, text)))  # the real `engine compress` options
    estimator = Estimator(plan, tmp_path / "out", _Speeds(), count_builtins=False)
    n_train = estimator.dataset_size(plan.cells["train:stdlib:tiny"].config["dataset"])[0]
    plain = estimator.cell(plan.cells["compress:stdlib:tiny:student"]).seconds
    robust = estimator.cell(plan.cells["compress:stdlib:tiny:robust-student"]).seconds
    assert robust - plain == pytest.approx((10 - 4) * 2 * n_train * TRAIN_PASSES * 0.001)


@pytest.mark.parametrize("change, message", [
    (('adversarial = "alert-prune"', 'adversarial = "nothing"'), "adversarial = 'nothing' names no [[augment]] entry"),
    (('of = "prune"\nattack', 'of = "nowhere"\nattack'), "attacks of = 'nowhere', which must be a [[compressions]] entry"),
    (('adversarial = "alert-prune"', ''), "no [[compressions]] entry names it"),
    (('method = "harden"\nof = "prune"\nadversarial', 'method = "prune"\nadversarial'),
     "adversarial programs are for method"),
    (('attack = "alert"', 'attack = "coda"'), "attack"),
    (('method = "harden"\nof = "prune"\nadversarial', 'method = "distill"\nadversarial'),
     "adversarial programs are for method"),  # a plain student does not read them
])
def test_augment_errors(tmp_path, change, message):
    with pytest.raises(StudyConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, AUGMENTED.replace(*change, 1))


def test_augment_of_a_variant_made_later_is_refused(tmp_path):
    text = AUGMENTED.replace('[[augment]]\nname = "alert-prune"\nof = "prune"',
                             '[[augment]]\nname = "alert-prune"\nof = "prune-robust"')
    text = text.replace('name = "prune-adv"\nmethod = "harden"\nof = "prune"',
                        'name = "prune-adv"\nmethod = "harden"\nof = "prune"')
    config = load(tmp_path, text)  # prune-robust is listed before prune-adv: fine
    assert config.augments[0].values["of"] == "prune-robust"
    moved = BASE.replace('[[compressions]]\nname = "prune-robust"', '''[[compressions]]
name = "prune-adv"
method = "harden"
of = "prune"
adversarial = "late"

[[compressions]]
name = "prune-robust"''').replace('[attack_defaults]', '[[augment]]\nname = "late"\nof = "prune-robust"\n'
                                   'attack = "mhm"\n\n[attack_defaults]', 1)
    with pytest.raises(StudyConfigError, match="which must be a \\[\\[compressions\\]\\] entry listed before"):
        load(tmp_path, moved)
