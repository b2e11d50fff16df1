"""Gap closure (analysis/gap.py): robust variants against their standard counterparts, on logs whose
answers are known — hand-made success patterns checked by hand and with scipy, the bootstrap
against its NumPy reference — and the table, findings and files the report makes of it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from analysis.bootstrap import bootstrap_means_numpy
from analysis.findings import findings
from analysis.gap import robust_pairs
from analysis.render import latex_parts, table_width
from analysis.report import analyse, write_report
from analysis.synthetic import Study, Variant, write_study
from analysis.tables import build_tables
from analysis.texwidth import LINEWIDTH_PT
from engine.common.logschema import FIELD_NAMES, FIELDS, SCHEMA_VERSION, validate_record

LABELS = 3
EXAMPLES = 20


def _record(model: str, method: str, attack: str, example: int, status: str, attack_name: str | None = None,
            version: int = SCHEMA_VERSION) -> dict:
    label = example % LABELS
    record = dict.fromkeys(FIELD_NAMES)
    success = status == "success"
    attacked = status in ("success", "failed")
    record.update(
        schema_version=version, example_id=f"ex{example:02d}", dataset="toy", task="authorship", language="python",
        model=model, compression=method, attack=attack, attack_name=attack_name, seed=0, true_label=label,
        original_prediction=label if status != "skipped_misclassified" else (label + 1) % LABELS,
        original_probability=0.9, status=status, reason=None if attacked else "misclassified",
        adversarial_prediction=((label + 1) % LABELS if success else label) if attacked else None,
        adversarial_probability=(0.2 if success else 0.8) if attacked else None,
        original_code=f"def f{example}(x):\n    return x\n", adversarial_code=f"def g{example}(y):\n    return y\n" if success else None,
        rename_map={"x": "y"} if success else None, identifiers=1, identifiers_changed=1 if attacked else None,
        structure_edits=0 if attacked else None, tokens=10, tokens_changed=2 if attacked else None,
        queries=5 if attacked else 1, forward_passes=5 if attacked else 1, wall_time_s=0.1, victim_time_s=0.05,
        valid_parses=True if success else None, valid_alpha_equivalent=True if success else None)
    if version < 3:
        del record["attack_name"]
    validate_record(record, LABELS)
    return record


def _write_run(root: Path, model: str, method: str, block: dict, attack: str, successes: set[int],
               skipped: set[int] = frozenset(), attack_name: str | None = None, accuracy: float = 0.8,
               version: int = SCHEMA_VERSION) -> None:
    run = root / f"{model}-{attack_name or attack}"
    run.mkdir(parents=True)
    lines = [_record(model, method, attack, i, "skipped_misclassified" if i in skipped else
                     "success" if i in successes else "failed", attack_name, version) for i in range(EXAMPLES)]
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    manifest = {"schema_version": version, "attack": {"name": attack},
                "model": {"name": model, "fingerprint": f"fp-{model}", "compression": {"method": method, **block},
                          "size_mb": 1.0, "test_metrics": {"accuracy": accuracy, "f1": accuracy - 0.05}},
                "dataset": {"name": "toy", "task": "authorship", "label_names": [str(i) for i in range(LABELS)]}}
    (run / "manifest.json").write_text(json.dumps(manifest))


PRUNE = {"ratio": 0.5, "parent": "fp-orig"}
# The robust variant's name does not start with the original's: it is matched through its parent.
# parent_compression is the parent's method, as `engine compress --method harden` writes it: the label
# comes from the parent variant's own ("Pruned 50 %").
HARDEN = {"parent": "fp-orig-prune", "parent_compression": "prune", "robust": True, "epochs": 2}


@pytest.fixture(scope="module")
def hand(tmp_path_factory) -> tuple:
    """O fooled on examples 0-3, S on 0-11, R on 0-5 (MHM); R misclassifies example 19, so 19 examples
    are attacked by all three. Under the 4x budget (attack_name mhm-4x) O: 0-5, S: 0-15, R: 0-15."""
    root = tmp_path_factory.mktemp("hand")
    _write_run(root, "orig", "none", {}, "mhm", set(range(4)), accuracy=0.80)
    _write_run(root, "orig-prune", "prune", PRUNE, "mhm", set(range(12)), accuracy=0.78)
    _write_run(root, "hardened", "harden", HARDEN, "mhm", set(range(6)), {19}, accuracy=0.77)
    _write_run(root, "orig", "none", {}, "mhm", set(range(6)), attack_name="mhm-4x", accuracy=0.80)
    _write_run(root, "orig-prune", "prune", PRUNE, "mhm", set(range(16)), attack_name="mhm-4x", accuracy=0.78)
    _write_run(root, "hardened", "harden", HARDEN, "mhm", set(range(16)), {19}, attack_name="mhm-4x", accuracy=0.77)
    analysis = analyse([root], resamples=400, seed=3)
    return root, analysis


def test_known_gaps_closure_and_mcnemar(hand):
    _, analysis = hand
    rows = {r["attack"]: r for r in analysis.gaps}
    assert set(rows) == {"mhm", "mhm-4x"}  # one recipe, two budgets: two attacks in the report
    r = rows["mhm"]
    assert (r["standard"], r["robust"]) == ("Pruned 50 %", "Pruned 50 % (robust)")
    assert r["n"] == 19
    assert r["asr_original"] == pytest.approx(4 / 19) and r["asr_standard"] == pytest.approx(12 / 19)
    assert r["gap_standard"] == pytest.approx(8 / 19) and r["gap_robust"] == pytest.approx(2 / 19)
    assert r["closed"] == pytest.approx(0.75)
    # S fooled, R not on 6 examples (6-11), never the other way: mid-p = 2 P(X <= 0) - P(X = 0), X ~ B(6, 1/2)
    assert r["robust_vs_standard_p_raw"] == pytest.approx(2 * sps.binom.cdf(0, 6, 0.5) - sps.binom.pmf(0, 6, 0.5))
    assert r["robust_vs_standard_p_raw"] == pytest.approx(1 / 64)
    # Holm over the two rows of the group: p-values 1/64 (mhm) and 1.0 (mhm-4x: S and R agree everywhere)
    four = rows["mhm-4x"]
    assert four["robust_vs_standard_p_raw"] == 1.0 and four["robust_vs_standard_note"] == "no discordant pairs"
    assert r["robust_vs_standard_p_adj"] == pytest.approx(2 / 64)
    assert four["gap_standard"] == pytest.approx(10 / 19) and four["closed"] == pytest.approx(0.0)
    # the standard gap's significance is the report's own test of S against O
    stats = [c for c in analysis.comparisons.rows if c["kind"] == "vs original" and c["outcome"] == "attack success"
             and c["attack"] == "mhm" and c["variant"] == "Pruned 50 %"]
    assert r["standard_gap_p_adj"] == stats[0]["p_adj"] and r["standard_gap_significant"] == (stats[0]["p_adj"] < 0.05)
    assert (r["accuracy_standard"], r["accuracy_robust"]) == (0.78, 0.77)
    assert r["f1_robust"] == pytest.approx(0.72)


def test_the_interval_is_the_paired_bootstrap_of_the_ratio(hand):
    _, analysis = hand
    r = next(r for r in analysis.gaps if r["attack"] == "mhm")
    so = np.array([1.0 if i < 4 else 0.0 for i in range(19)])
    ss = np.array([1.0 if i < 12 else 0.0 for i in range(19)])
    sr = np.array([1.0 if i < 6 else 0.0 for i in range(19)])
    rows = sorted(analysis.gaps, key=lambda g: analysis.gaps.index(g))
    group = rows.index(r)  # the row's position is its bootstrap group
    values = np.concatenate([np.column_stack([np.ones(19), np.ones(19)])] * len(rows))  # placeholders, replaced below
    starts = np.arange(len(rows) + 1) * 19
    for i, row in enumerate(rows):
        s = ss if row["attack"] == "mhm" else np.array([1.0 if j < 16 else 0.0 for j in range(19)])
        o = so if row["attack"] == "mhm" else np.array([1.0 if j < 6 else 0.0 for j in range(19)])
        rb = sr if row["attack"] == "mhm" else s
        values[starts[i]:starts[i + 1]] = np.column_stack([s - o, rb - o])
    means = bootstrap_means_numpy(values, starts, 400, 3)[group]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(means[0] != 0, (means[0] - means[1]) / means[0], np.nan)
    assert r["closed_low"] == pytest.approx(np.nanquantile(ratio, 0.025))
    assert r["closed_high"] == pytest.approx(np.nanquantile(ratio, 0.975))
    assert r["closed_low"] <= r["closed"] <= r["closed_high"]
    assert r["gap_standard_low"] == pytest.approx(np.nanquantile(means[0], 0.025))


def test_table_findings_and_files(hand, tmp_path):
    _, analysis = hand
    inputs = analysis.inputs()
    tables = {t.name: t for t in build_tables(inputs)}
    table = tables["gap"]
    assert table.section == "main" and len(table.rows) == 2
    row = table.rows[0].cells
    texts = {c.key: row[i].text for i, c in enumerate(table.columns)}
    assert texts["attack"] == "MHM" and texts["closed"] == "75" and texts["gap_standard"] == "+42.1"
    assert texts["gap_robust"] == "+10.5" and texts["accuracy_robust"] == "77.0" and texts["p_sr"] == "0.031"
    for part in latex_parts(table):
        assert not part.landscape and table_width(part.table) <= LINEWIDTH_PT
    found = [f for f in findings(inputs, list(tables.values())) if f.kind == "gap"]
    assert found and all(f.ref == "gap" for f in found)
    allowed = {c.text for i in range(len(table.rows)) for c in table.rows[i].cells}
    assert "75 %" in found[0].text or not any(r["standard_gap_significant"] for r in analysis.gaps)
    assert "nowhere above" in found[1].text and "from 78.0 % to 77.0 %" in found[1].text
    assert allowed  # the cited cells exist
    written = write_report(analysis, tmp_path / "report", ["csv", "html", "latex"], make_figures=False, pdf=False)
    assert (tmp_path / "report" / "csv" / "gap.csv").is_file() and (tmp_path / "report" / "data" / "gap.csv").is_file()
    assert "Gap closure" in written["html"][0].read_text(encoding="utf-8")
    assert (tmp_path / "report" / "latex" / "table-gap.tex").is_file()


def test_pairs_robust_distillation_by_target_size_and_skips_reports_without_robust_variants(tmp_path):
    study = Study(dataset="toy", task="authorship", labels=4, examples=120, attacks=("mhm",), variants=[
        Variant("tiny"), Variant("tiny-distill", "distill", {"target_mb": 0.5}, 0.7, 0.2, 0.5),
        Variant("tiny-distill-1mb", "distill", {"target_mb": 1.0}, 0.72, 0.15, 1.0),
        Variant("tiny-distill-robust", "distill", {"target_mb": 0.5, "robust": True}, 0.69, 0.02, 0.5)])
    write_study(tmp_path / "logs", study)
    analysis = analyse([tmp_path / "logs"], resamples=50)
    pairs = robust_pairs(analysis.variants)
    assert [(p["standard"]["model"], p["robust"]["model"], p["original"]["model"]) for p in pairs] == [
        ("tiny-distill", "tiny-distill-robust", "tiny")]
    assert [r["robust"] for r in analysis.gaps] == ["Distilled 0.5 MB (robust)"]
    plain = Study(dataset="toy", task="authorship", labels=4, examples=60, attacks=("mhm",), variants=study.variants[:2])
    write_study(tmp_path / "plain", plain)
    bare = analyse([tmp_path / "plain"], resamples=20)
    assert bare.gaps == [] and "gap" not in {t.name for t in build_tables(bare.inputs())}


def test_logs_of_schema_version_2_read_without_attack_name(tmp_path):
    _write_run(tmp_path, "orig", "none", {}, "alert", {1, 2}, version=2)
    analysis = analyse([tmp_path], resamples=0)
    assert set(analysis.records["attack"].to_list()) == {"alert"} and set(analysis.records["recipe"].to_list()) == {"alert"}
    assert "attack_name" in {f.name for f in FIELDS if f.since == 3}


def test_labels_of_robust_variants():
    from analysis.variants import human_label

    assert human_label("harden", {"parent_compression": "quantize"}) == "Quantized (robust)"
    assert human_label("harden", {"parent_compression": {"method": "prune", "ratio": 0.25}}) == "Pruned 25 % (robust)"
    assert human_label("distill", {"target_mb": 0.5, "robust": True}) == "Distilled 0.5 MB (robust)"
    assert human_label("quantize", {}) == "Quantized"


def test_figures_take_rates_of_exactly_zero_and_one(tmp_path):
    """A transfer replayed on the original succeeds on every example (ASR 1, robust accuracy 0), where a
    Wilson bound can miss the rate by a rounding error (n = 7: the upper bound of 7/7 is below 1)."""
    from analysis.figures import build_figures
    from analysis.stats import wilson_interval

    assert wilson_interval(np.array([7]), np.array([7]))[1][0] < 1.0  # the case this test is about
    global EXAMPLES
    saved, EXAMPLES = EXAMPLES, 7
    try:
        _write_run(tmp_path, "orig", "none", {}, "mhm", set(range(7)), attack_name="mhm-transfer")
        _write_run(tmp_path, "orig-prune", "prune", PRUNE, "mhm", set(range(3)), attack_name="mhm-transfer")
    finally:
        EXAMPLES = saved
    analysis = analyse([tmp_path], resamples=0)
    assert "robust-accuracy" in {built[0] for built in build_figures(analysis.inputs())}


CONTROL = {"parent": "fp-orig-prune", "parent_compression": "prune", "robust": False, "control": True,
           "renamings": 0, "epochs": 6}


def test_the_control_sits_beside_the_robust_variant(tmp_path):
    """Harden's control (the same fine-tuning without renamed programs) of the same standard variant:
    its ASR, gap and McNemar against R on the row's examples it attacked too, its own label, and two
    more columns in the table; a report without a control keeps the table as it was."""
    _write_run(tmp_path, "orig", "none", {}, "mhm", set(range(4)), accuracy=0.80)
    _write_run(tmp_path, "orig-prune", "prune", PRUNE, "mhm", set(range(12)), accuracy=0.78)
    _write_run(tmp_path, "hardened", "harden", HARDEN, "mhm", set(range(6)), {19}, accuracy=0.77)
    # C fooled on 0-10, misclassifies 18 and 19: 18 examples of R's row attacked by C too
    _write_run(tmp_path, "tuned", "harden", CONTROL, "mhm", set(range(11)), {18, 19}, accuracy=0.81)
    # a robust student is distilled, not fine-tuned from the standard one: a fine-tuned student is no control of it
    _write_run(tmp_path, "orig-distill", "distill", {"target_mb": 0.5, "parent": "fp-orig"}, "mhm", set(range(10)))
    _write_run(tmp_path, "orig-distill-robust", "distill", {"target_mb": 0.5, "robust": True, "parent": "fp-orig"},
               "mhm", set(range(5)))
    _write_run(tmp_path, "tuned-student", "harden", CONTROL | {"parent": "fp-orig-distill",
                                                               "parent_compression": "distill"}, "mhm", set(range(9)))
    analysis = analyse([tmp_path], resamples=100, seed=1)
    gaps = {r["robust"]: r for r in analysis.gaps}
    assert set(gaps) == {"Pruned 50 % (robust)", "Distilled 0.5 MB (robust)"}  # a control is no robust variant
    assert gaps["Distilled 0.5 MB (robust)"]["control"] is None
    r = gaps["Pruned 50 % (robust)"]
    assert r["control"] == "Pruned 50 % (fine-tuned)" and r["n"] == 19 and r["n_control"] == 18
    assert r["asr_control"] == pytest.approx(11 / 18) and r["gap_control"] == pytest.approx(11 / 18 - 4 / 18)
    # C fooled, R not on 6-10 (5 examples), never the other way; one row: Holm leaves it
    assert r["robust_vs_control_p_raw"] == pytest.approx(2 * sps.binom.cdf(0, 5, 0.5) - sps.binom.pmf(0, 5, 0.5))
    assert r["robust_vs_control_p_adj"] == pytest.approx(r["robust_vs_control_p_raw"])
    assert r["accuracy_control"] == 0.81
    labels = dict(zip(analysis.variants["model"].to_list(), analysis.variants["label"].to_list()))
    assert labels["tuned"] == "Pruned 50 % (fine-tuned)" and labels["hardened"] == "Pruned 50 % (robust)"
    table = {t.name: t for t in build_tables(analysis.inputs())}["gap"]
    row = next(row for row in table.rows if row.cells[1].text == "Pruned 50 % (robust)")
    texts = {c.key: row.cells[i].text for i, c in enumerate(table.columns)}
    assert texts["gap_control"] == "+38.9" and "accuracy_control" not in texts  # too wide: in data/gap.csv
    assert [c.key for c in table.columns].index("gap_control") == [c.key for c in table.columns].index("gap_robust") + 1
    assert "control" in table.caption
    said = [f.text for f in findings(analysis.inputs(), [table]) if "Against its control" in f.text]
    assert said and "lower in 1 of 1 rows (1 significantly" in said[0]  # mid-p 1/32, one test: Holm keeps it
    for part in latex_parts(table):
        assert table_width(part.table) <= LINEWIDTH_PT or part.landscape


def test_configuration_names_adversarial_programs_by_count_not_path():
    """A path in the variants table cannot break across lines (it overflowed the page)."""
    from analysis.variants import configuration

    block = {"method": "distill", "robust": True, "adversarial": "/runs/x/cells/augment/stdlib.tiny.alert-1/augment",
             "adversarial_programs": 1107, "epochs": 40}
    assert configuration("distill", block) == "distill adversarial_programs=1107 epochs=40 robust=True"
    plain = {"method": "harden", "adversarial": None, "adversarial_programs": 0, "renamings": 3}
    assert configuration("harden", plain) == "harden renamings=3"


def test_harden_control_label():
    from analysis.variants import human_label

    assert human_label("harden", {"parent_compression": "prune", "robust": False}) == "Pruned (fine-tuned)"
    assert human_label("harden", {"parent_compression": "prune", "robust": True}) == "Pruned (robust)"
