"""`engine attack` end to end on a real tiny trained model: records, manifest, summary, transfer,
and the victim's cache accounting seen through the runner."""
from __future__ import annotations

import json
import random

import pytest

from engine.attacks import registry
from engine.attacks.environment import make_environment
from engine.attacks.records import read_records
from engine.attacks.runner import AttackRunner, RunOptions
from engine.datasets.registry import load_dataset
from engine.common.logschema import validate_record

TEMPLATES = {
    0: "def {f}({a}, {b}):\n    total = 0\n    for {i} in range({a}):\n        total += {i} * {b}\n    return total\n",
    1: "def {f}({a}):\n    while {a} > 0:\n        {a} -= 1\n    return {a}\n",
    2: "def {f}({a}, {b}):\n    return '{{}} {{}}'.format({a}, {b}).upper()\n",
}
COLUMNS = "code=code,label=label,id=id"
NAMES = ["x", "y", "count", "value", "item", "node", "left", "right", "size", "data", "key", "acc"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def victim_dir(tmp_path_factory):
    from engine.train import TrainConfig, train

    root = tmp_path_factory.mktemp("attack-cli")
    rng = random.Random(0)
    rows = {"train": [], "valid": [], "test": []}
    for label, template in TEMPLATES.items():
        for k in range(14):
            a, b, i = rng.sample(NAMES, 3)
            split = "train" if k < 9 else "valid" if k < 11 else "test"
            rows[split].append({"id": f"s{label}-{k}", "code": template.format(f=f"fn{label}{k}", a=a, b=b, i=i),
                                "label": label})
    data = root / "data"
    data.mkdir()
    for split, items in rows.items():
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    dataset = load_dataset("jsonl", data, language="python", columns=COLUMNS)
    config = TrainConfig(base="scratch:tiny", epochs=2, batch_size=8, lr=3e-3, max_length=64, patience=0, seed=7,
                         vocab_size=300, eval_batch_size=16, device="cpu")
    train(dataset, config, root / "victim", progress=False, log=lambda _m: None)
    return root


def data_args(root):
    return ["--data-format", "jsonl", "--data", str(root / "data"), "--language", "python", "--columns", COLUMNS]


def test_engine_attack_writes_schema_records_a_manifest_and_a_summary(victim_dir, tmp_path, capsys):
    from engine import cli

    out = tmp_path / "logs"
    argv = ["attack", "--attack", "wir-random", "--model", str(victim_dir / "victim"), *data_args(victim_dir),
            "--out", str(out), "--threads", "1", "--no-progress", "--wir-candidates", "10", "--seed", "3"]
    assert cli.main(argv) == 0
    table = capsys.readouterr().out
    assert "Attack success rate" in table and "wir-random" in table
    records = read_records(out / "records.jsonl")
    assert len(records) == 9
    for record in records:
        validate_record(record)
        assert record["model"] and record["attack"] == "wir-random" and record["seed"] == 3
        if record["status"] == "success":
            assert record["valid_alpha_equivalent"] and record["valid_compiles"] and record["valid_parses"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["attack"]["params"] == {"candidates": 10, "importance": "occurrence"}
    assert manifest["model"]["fingerprint"] and manifest["model"]["parameters"] > 0
    assert manifest["model"]["compression"]["method"] == "none" and manifest["model"]["test_metrics"]["n"] == 9
    assert manifest["dataset"]["task"] == "classification" and manifest["dataset"]["language"] == "python"
    assert manifest["model"]["victim"]["backend"] == "fast" and manifest["interleave"] == 1

    assert cli.main([*argv, "--resume", "--backend", "hf"]) == 0  # allowed: float noise only, with a warning
    assert "model.victim.backend" in capsys.readouterr().err
    assert cli.main([*argv, "--resume", "--seed", "4"]) == 2  # a different seed cannot continue this run
    assert "seed" in capsys.readouterr().err
    assert cli.main([*argv, "--resume"]) == 0
    assert len(read_records(out / "records.jsonl")) == 9

    transfer = tmp_path / "transfer"
    assert cli.main(["attack", "--attack", "wir-random", "--model", str(victim_dir / "victim"), *data_args(victim_dir),
                     "--out", str(transfer), "--threads", "1", "--no-progress", "--transfer-from", str(out)]) == 0
    replayed = read_records(transfer / "records.jsonl")
    successes = [r for r in records if r["status"] == "success"]
    assert [r["example_id"] for r in replayed] == sorted(r["example_id"] for r in successes)
    assert all(r["status"] == "success" and r["queries"] == 2 for r in replayed)  # same model: same outcome


def test_cached_queries_count_as_queries_but_not_forward_passes(victim_dir, tmp_path):
    from engine.victim import Victim

    dataset = load_dataset("jsonl", victim_dir / "data", language="python", columns=COLUMNS)
    victim = Victim.load(victim_dir / "victim", batch_size=16)
    params = registry.params_from_args("mhm", iterations=5, candidates=6)
    runs = []
    for name in ("first", "second"):
        search = registry.build_search("mhm", params, make_environment(dataset, victim))
        runner = AttackRunner(victim=victim, dataset=dataset, search=search, out=tmp_path / name,
                              options=RunOptions(attack="mhm", params=params, progress=False, n=4))
        runner.run()
        runs.append(read_records(runner.records_path))
    first, second = runs
    assert [r["queries"] for r in first] == [r["queries"] for r in second]
    assert sum(r["forward_passes"] for r in first) > 0
    assert all(r["forward_passes"] == 0 for r in second)
    assert [r["status"] for r in first] == [r["status"] for r in second]
