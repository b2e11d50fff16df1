"""engine augment and random renamings: every written program is alpha-equivalent to its original and keeps its
label; draws depend only on (seed, epoch, example id); shards and resumed runs add up to one run."""
from __future__ import annotations

import json

import pytest

from engine.attacks.runner import model_info
from engine.attacks.base import example_rng
from engine.augment.renamings import Renamings
from engine.augment.stage import AugmentOptions, augment, read_programs
from engine.cli import main as engine_main
from engine.code import check_rename, extract
from engine.errors import UserError
from engine.victim import Victim
from tests.test_compress import dataset, parent  # noqa: F401  (the same tiny victim's fixtures)
from tests.test_train import NAMES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(parent, dataset, out, **options):
    victim = Victim.load(parent, device="cpu", cache_size=0)
    run_options = {key: options.pop(key) for key in ("shard", "resume", "overwrite", "n") if key in options}
    summary = augment(victim=victim, dataset=dataset, model=model_info(parent, victim), out=out,
                      options=AugmentOptions(attack="random", **options, run=run_options | {"progress": False}))
    return summary


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_random_renamings_are_alpha_equivalent_and_reproducible(dataset):
    renamings = Renamings(NAMES + ["alpha", "beta_gamma"], "python")
    codes = [ex.code for ex in dataset.split("train")]
    ids = [str(ex.id) for ex in dataset.split("train")]
    views = renamings.views(codes, ids, seed=5, epoch=2, per_example=2)
    assert len(views) == 2 * len(codes) and renamings.stats.rejected == 0
    for index, code in views:
        assert code != codes[index]
        original = extract(codes[index], "python")
        renamed = extract(code, "python")
        mapping = {old: new for old, new in zip(_names(original), _names(renamed)) if old != new}
        assert mapping and check_rename(original, renamed, mapping).ok
    again = Renamings(NAMES + ["alpha", "beta_gamma"], "python").views(codes[::-1], ids[::-1], seed=5, epoch=2, per_example=2)
    assert sorted(code for _, code in again) == sorted(code for _, code in views), "order does not change the draws"
    other_epoch = renamings.views(codes, ids, seed=5, epoch=3, per_example=2)
    assert [code for _, code in other_epoch] != [code for _, code in views], "fresh renamings each epoch"


def _names(extraction):
    return [extraction.source[start:end].decode() for start, end, kind in extraction.tokens if kind == "identifier"]


def test_a_check_that_fails_is_counted_not_returned(monkeypatch):
    import engine.augment.renamings as module

    class Failed:
        alpha_equivalent, parses, reasons = False, True, ["token count changed"]

    monkeypatch.setattr(module, "check_rename", lambda *args: Failed())
    renamings = Renamings(NAMES, "python")
    assert renamings.rename("def f(a):\n    return a\n", example_rng(0, 1)) is None
    assert renamings.stats.rejected == 1 and renamings.stats.made == 0


def test_augment_writes_alpha_equivalent_programs_with_their_labels(parent, dataset, tmp_path):
    out = tmp_path / "aug"
    summary = run(parent, dataset, out, per_example=2, seed=4)
    written = rows(out / "train.jsonl")
    assert summary["programs"] == len(written) > 0
    by_id = {str(ex.id): ex for ex in dataset.split("train")}
    records = {}
    for seed in (4, 5):
        for line in (out / f"seed-{seed}" / "records.jsonl").read_text().splitlines():
            record = json.loads(line)
            records[(record["example_id"], record["seed"])] = record
    for row in written:
        example = by_id[row["original_id"]]
        assert row["label"] == dataset.label_names[example.label]
        record = records[(row["original_id"], row["seed"])]
        assert record["attack"] == "random-renaming" and record["adversarial_code"] == row["code"]
        result = check_rename(example.code, row["code"], record["rename_map"], "python")
        assert result.alpha_equivalent and result.parses, result.reasons
    attacked = [r for r in records.values() if r["status"] in ("success", "failed")]
    assert len(written) == len(attacked)
    programs = read_programs(out, dataset)
    assert sum(len(v) for v in programs.values()) == len(written)
    description = json.loads((out / "dataset.json").read_text())
    from engine.datasets.registry import load_dataset

    loaded = load_dataset("jsonl", out / description["data"], columns=description["columns"],
                          language=description["language"], task=description["task"])
    assert sum(len(split) for split in loaded.splits.values()) == len(written)
    with open(out / "train.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(written[0] | {"label": "format" if written[0]["label"] != "format" else "loop"}) + "\n")
    with pytest.raises(UserError, match=rf"train.jsonl:{len(written) + 1}: example .* is not in"):
        read_programs(out, dataset)


def test_shards_and_resume_add_up_to_one_run(parent, dataset, tmp_path):
    whole = run(parent, dataset, tmp_path / "whole", per_example=1)
    out = tmp_path / "sharded"
    run(parent, dataset, out, per_example=1, shard=(1, 2))
    run(parent, dataset, out, per_example=1, shard=(2, 2))
    assert sorted(map(json.dumps, rows(out / "train.jsonl"))) == sorted(map(json.dumps, rows(tmp_path / "whole" / "train.jsonl")))
    again = run(parent, dataset, out, per_example=1, shard=(2, 2), resume=True)
    assert again["programs"] == whole["programs"]
    with pytest.raises(UserError, match="resume"):
        run(parent, dataset, out, per_example=1, shard=(2, 2))
    with pytest.raises(UserError, match="differs"):
        run(parent, dataset, out, per_example=1, seed=9, shard=(2, 2), resume=True)


def test_cli(parent, dataset, tmp_path, monkeypatch, capsys):
    import engine.commands.augment as command

    monkeypatch.setattr(command, "dataset_from_args", lambda args: dataset)
    code = engine_main(["augment", "--model", str(parent), "--dataset", "stdlib-attribution", "--attack", "random",
                        "--out", str(tmp_path / "cli"), "--n", "5", "--no-progress", "--device", "cpu"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["programs"] == len(rows(tmp_path / "cli" / "train.jsonl")) > 0
    assert engine_main(["augment", "--model", str(parent), "--dataset", "stdlib-attribution", "--attack", "random",
                        "--out", str(tmp_path / "cli2"), "--per-example", "0", "--no-progress"]) != 0
