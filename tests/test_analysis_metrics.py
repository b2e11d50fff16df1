"""Metrics, log loading and variant matching of `analysis`, on hand-computed examples."""
from __future__ import annotations

import json

import polars as pl
import pytest

from engine.errors import UserError
from engine.common.logschema import FIELD_NAMES, SCHEMA_VERSION, validate_record

from analysis.loading import LogWarning, load_logs
from analysis.metrics import cell_metrics, prepare
from analysis.report import analyse
from analysis.tables import clean_full_table, clean_table
from analysis.variants import variant_table


def record(example_id: str, status: str, **changes) -> dict:
    rec = {name: None for name in FIELD_NAMES}
    rec.update(schema_version=SCHEMA_VERSION, example_id=example_id, dataset="toy_set", task="defect", language="python",
               model="m", compression="none", attack="mhm", seed=0, true_label=1, original_prediction=1,
               original_probability=0.9, status=status, original_code="def f(a):\n    return a\n", queries=0,
               forward_passes=0, wall_time_s=0.0, victim_time_s=0.0, identifiers=3, tokens=10)
    rec.update(changes)
    validate_record(rec)
    return rec


def success(example_id, **changes):
    base = dict(adversarial_prediction=0, adversarial_probability=0.2, adversarial_code="def f(b):\n    return b\n",
                rename_map={"a": "b"}, valid_parses=True, valid_alpha_equivalent=True, valid_compiles=True,
                structure_edits=0, validity_reasons=[])
    return record(example_id, "success", **(base | changes))


HAND = [
    success("e1", identifiers=4, identifiers_changed=2, tokens=100, tokens_changed=10, queries=10, wall_time_s=1.0),
    success("e2", identifiers=5, identifiers_changed=5, tokens=50, tokens_changed=5, queries=30, wall_time_s=3.0,
            valid_compiles=False, validity_reasons=["compiles: gcc: error"]),
    record("e3", "failed", identifiers=4, identifiers_changed=4, queries=100, wall_time_s=5.0, adversarial_prediction=1),
    record("e4", "skipped_misclassified", original_prediction=0),
    record("e5", "skipped_no_identifiers", identifiers=0),
    record("e6", "error", original_prediction=None, original_probability=None, reason="boom"),
    success("e7", identifiers=2, identifiers_changed=1, tokens=20, tokens_changed=2, queries=20, wall_time_s=2.0,
            valid_parses=None, valid_alpha_equivalent=False, structure_edits=2),
]


def write_run(folder, records, manifest=None, name="records.jsonl"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def analyse_dir(path, resamples=200):
    logs = load_logs([path])
    variants = variant_table(logs)
    records = prepare(logs, variants)
    return logs, variants, records, cell_metrics(records, resamples=resamples)


def test_metrics_on_a_hand_computed_example(tmp_path):
    write_run(tmp_path / "run", HAND)
    _, variants, _, metrics = analyse_dir(tmp_path)
    row = metrics.row(0, named=True)
    assert (row["records"], row["errors"], row["examples"], row["attacked"], row["successes"]) == (7, 1, 6, 4, 3)
    assert row["asr"] == pytest.approx(3 / 4)
    assert row["robust_accuracy"] == pytest.approx(2 / 6)  # e3 (failed) and e5 (no identifiers, correct)
    assert row["valid_asr"] == pytest.approx(2 / 4)  # e1, and e7 (structure-edited, unknown parse)
    assert row["queries"] == pytest.approx(40.0) and row["queries_success"] == pytest.approx(20.0)
    assert row["wall_time_s"] == pytest.approx(2.75)
    assert row["identifier_change"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert row["token_change"] == pytest.approx(0.1)
    assert (row["compiles_true"], row["compiles_checked"]) == (2, 3)
    assert (row["parses_true"], row["parses_checked"]) == (2, 2)
    assert row["clean_accuracy_records"] == pytest.approx(5 / 6)
    assert row["asr_low"] < 0.75 < row["asr_high"]
    assert row["queries_low"] <= 40.0 <= row["queries_high"]
    # No manifest: clean metrics from the records (each example once, errors have no prediction).
    v = variants.row(0, named=True)
    assert v["accuracy"] == pytest.approx(5 / 6) and v["clean_source"] == "records (all 6 examples)"
    table = clean_table(analyse([tmp_path], resamples=0).inputs())
    cells = {c.key: cell for c, cell in zip(table.columns, table.rows[0].cells)}
    assert cells["size_mb"].text == "n/a" and cells["latency_ms_batch1"].text == "n/a"


def test_truncated_final_line_is_skipped_with_a_warning(tmp_path):
    run = write_run(tmp_path / "run", HAND[:3])
    path = run / "records.jsonl"
    path.write_text(path.read_text() + json.dumps(HAND[3])[:40], encoding="utf-8")
    with pytest.warns(LogWarning, match=r"records\.jsonl:4: truncated final line"):
        logs = load_logs([tmp_path])
    assert logs.records.height == 3 and "records.jsonl:4" in logs.warnings[0]


def test_a_bad_line_names_file_and_line(tmp_path):
    write_run(tmp_path / "a", HAND[:2])
    bad = dict(HAND[2], status="exploded")
    write_run(tmp_path / "b", [HAND[0], bad, HAND[3]])
    with pytest.raises(UserError, match=r"b/records\.jsonl:2: .*unknown status 'exploded'"):
        load_logs([tmp_path])
    (tmp_path / "b" / "records.jsonl").write_text(json.dumps(HAND[0]) + "\n{not json}\n" + json.dumps(HAND[1]) + "\n")
    with pytest.raises(UserError, match=r"b/records\.jsonl:2: "):
        load_logs([tmp_path])


def test_missing_directory_and_empty_directory_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        load_logs([tmp_path / "nope"])
    with pytest.raises(UserError, match="no \\*.jsonl"):
        load_logs([tmp_path])


def test_variants_are_matched_to_their_original(tmp_path):
    original = [dict(r, model="coder") for r in HAND]
    pruned = [dict(r, model="coder-pruned", compression="prune") for r in HAND]
    other = [dict(r, model="stranger", compression="quantize", dataset="toy_set") for r in HAND]
    write_run(tmp_path / "o", original)
    write_run(tmp_path / "p", pruned)
    write_run(tmp_path / "q", other)
    write_run(tmp_path / "o2", [dict(r, model="second") for r in HAND])
    variants = variant_table(load_logs([tmp_path]))
    by_model = {r["model"]: r for r in variants.iter_rows(named=True)}
    assert by_model["coder-pruned"]["base_model"] == "coder" and by_model["coder-pruned"]["match"] == "model-name prefix"
    assert by_model["stranger"]["base_model"] is None and by_model["stranger"]["match"] == "unmatched"


def test_parent_fingerprint_wins_over_names(tmp_path):
    def manifest(name, method, fingerprint, parent=None):
        return {"model": {"name": name, "fingerprint": fingerprint, "compression": {"method": method, "parent": parent, "sparsity": 0.5},
                          "size_mb": 10.0}}
    write_run(tmp_path / "a", [dict(r, model="alpha") for r in HAND], manifest("alpha", "none", "fa"))
    write_run(tmp_path / "b", [dict(r, model="beta") for r in HAND], manifest("beta", "none", "fb"))
    write_run(tmp_path / "c", [dict(r, model="alpha-small", compression="prune") for r in HAND],
              manifest("alpha-small", "prune", "fc", parent="fb"))
    variants = variant_table(load_logs([tmp_path]))
    row = variants.filter(pl.col("model") == "alpha-small").row(0, named=True)
    assert row["base_model"] == "beta" and row["match"] == "parent fingerprint"
    assert row["label"] == "Pruned 50 %" and row["configuration"] == "prune sparsity=0.5"


def test_an_originals_latency_comes_from_its_variants_side_by_side_measurement(tmp_path):
    """Training does not time the original; each compression measured it beside the variant."""
    def manifest(name, method, fingerprint, parent=None, parent_latency=None, latency=None):
        model = {"name": name, "fingerprint": fingerprint, "compression": {"method": method, "parent": parent},
                 "latency_ms_batch1": latency}
        if parent_latency is not None:
            model["measurement"] = {"parent": {"fingerprint": parent, "latency_ms_batch1": parent_latency,
                                               "throughput_per_s": 1000 / parent_latency}}
        return {"model": model}
    write_run(tmp_path / "a", [dict(r, model="alpha") for r in HAND], manifest("alpha", "none", "fa"))
    write_run(tmp_path / "b", [dict(r, model="beta") for r in HAND], manifest("beta", "none", "fb", latency=9.0))
    write_run(tmp_path / "p", [dict(r, model="alpha-p", compression="prune") for r in HAND],
              manifest("alpha-p", "prune", "fp", parent="fa", parent_latency=4.0, latency=3.0))
    write_run(tmp_path / "q", [dict(r, model="alpha-q", compression="quantize") for r in HAND],
              manifest("alpha-q", "quantize", "fq", parent="fa", parent_latency=6.0, latency=2.0))
    write_run(tmp_path / "r", [dict(r, model="beta-q", compression="quantize") for r in HAND],
              manifest("beta-q", "quantize", "fr", parent="fb", parent_latency=5.0, latency=2.0))
    by_model = {r["model"]: r for r in variant_table(load_logs([tmp_path])).iter_rows(named=True)}
    assert by_model["alpha"]["latency_ms_batch1"] == pytest.approx(5.0)  # median of 4 and 6
    assert by_model["alpha"]["throughput_per_s"] == pytest.approx((250 + 1000 / 6) / 2)
    assert by_model["beta"]["latency_ms_batch1"] == pytest.approx(9.0)  # its own figure is kept
    assert by_model["alpha-p"]["latency_ms_batch1"] == pytest.approx(3.0)  # variants keep their own


def test_partial_manifest_shows_na_and_falls_back_to_records(tmp_path):
    write_run(tmp_path / "run", HAND, manifest={"schema_version": 1, "model": {"name": "m", "size_mb": 12.5}})
    variants = variant_table(load_logs([tmp_path]))
    row = variants.row(0, named=True)
    assert row["size_mb"] == 12.5 and row["latency_ms_batch1"] is None and row["label"] == "Original"
    assert row["clean_source"].startswith("records")
    table = clean_full_table(analyse([tmp_path], resamples=0).inputs())
    cells = {c.key: cell.text for c, cell in zip(table.columns, table.rows[0].cells)}
    assert cells["size_mb"] == "12.5" and cells["throughput_per_s"] == "n/a"


def test_seeds_are_reduced_to_one_value_per_example_in_paired_tests(tmp_path):
    from analysis.comparisons import compare
    from analysis.synthetic import Study, write_study

    write_study(tmp_path, Study(examples=50, attacks=("mhm",), seeds=(0, 1)))
    logs, variants, records, metrics = analyse_dir(tmp_path, resamples=0)
    assert set(metrics["seeds"].to_list()) == {2}
    assert metrics["records"].to_list() == [100] * 3  # metrics pool (example, seed) records
    rows = compare(records, variants, metrics).rows
    robust = [r for r in rows if r["outcome"] == "robust-correct" and r["kind"] == "vs original"]
    assert robust and all(r["n"] <= 50 for r in robust)  # paired on examples, not on example x seed


def test_engine_side_files_are_not_read_as_records(tmp_path):
    run = write_run(tmp_path / "run", HAND[:3])
    (run / "extras.jsonl").write_text('{"recipe": "alert", "not": "a record"}\n')
    assert load_logs([tmp_path]).records.height == 3


def test_configurations_name_what_was_done_not_where_it_came_from():
    from analysis.variants import configuration

    block = {"method": "distill", "target_mb": 0.5, "temperature": 2.0, "parent": "ab12",
             "parent_path": "/runs/tiny", "parent_compression": "none", "report": {"epochs": 3}}
    assert configuration("distill", block) == "distill target_mb=0.5 temperature=2.0"
    assert configuration("none", None) == "none"


def test_an_example_recorded_twice_is_a_clear_error(tmp_path):
    write_run(tmp_path / "run", HAND[:3])
    write_run(tmp_path / "copy-of-run", HAND[1:2])
    with pytest.raises(UserError, match=r"example 'e2' .* is recorded 2 times \(in .*copy-of-run/records\.jsonl, .*run/records\.jsonl; 1 duplicated"):
        load_logs([tmp_path])


def test_several_seeds_get_cluster_bootstrap_intervals_over_examples(tmp_path):
    """Seeds that always agree add no information: the interval must be the one over examples,
    not the narrower Wilson interval over example × seed records."""
    import numpy as np

    from analysis.bootstrap import bootstrap_means_numpy, percentile_interval
    from analysis.stats import wilson_interval

    outcomes = [i % 3 != 0 for i in range(60)]  # 40 successes, 20 failures among 60 attacked examples
    runs = []
    for seed in (0, 1, 2):
        runs += [success(f"e{i}", seed=seed, queries=10 + i) if won else
                 record(f"e{i}", "failed", seed=seed, queries=100 + i, adversarial_prediction=1)
                 for i, won in enumerate(outcomes)]
    write_run(tmp_path / "seeds", runs)
    _, _, _, metrics = analyse_dir(tmp_path, resamples=400)
    row = metrics.row(0, named=True)
    assert (row["seeds"], row["attacked"], row["successes"], row["interval"]) == (3, 180, 120, "cluster-bootstrap")
    assert row["asr"] == pytest.approx(2 / 3)
    order = sorted(range(60), key=lambda i: f"e{i}")  # examples are resampled in id order
    per_example = np.array([outcomes[i] for i in order], dtype=np.float64)[:, None]  # mean over its seeds
    low, high = percentile_interval(bootstrap_means_numpy(per_example, np.array([0, 60]), 400, 0))
    assert (row["asr_low"], row["asr_high"]) == pytest.approx((low[0, 0], high[0, 0]))
    pooled_low, pooled_high = wilson_interval(120, 180)
    assert row["asr_high"] - row["asr_low"] > 1.4 * (pooled_high - pooled_low)  # ~√3 wider
    queries = np.array([10 + i if outcomes[i] else 100 + i for i in order], dtype=np.float64)[:, None]
    low, high = percentile_interval(bootstrap_means_numpy(queries, np.array([0, 60]), 400, 0))
    assert (row["queries_low"], row["queries_high"]) == pytest.approx((low[0, 0], high[0, 0]))

    write_run(tmp_path / "one", [{**r, "model": "other"} for r in runs[:60]])
    _, _, _, metrics = analyse_dir(tmp_path / "one", resamples=400)
    row = metrics.row(0, named=True)
    assert row["interval"] == "wilson"
    assert (row["asr_low"], row["asr_high"]) == pytest.approx(tuple(float(v) for v in wilson_interval(40, 60)))


def version_1(rec: dict) -> dict:
    """The record as schema version 1 wrote it: without the fields added since."""
    from engine.common.logschema import FIELDS

    return {k: v for k, v in rec.items() if k in {f.name for f in FIELDS if f.since == 1}} | {"schema_version": 1}


def test_truncated_records_are_counted_and_filtered_and_version_1_logs_still_read(tmp_path):
    from analysis.audit import audit
    from analysis.loading import select_truncated

    long = [success("t1", truncated=True, input_tokens=900, input_tokens_read=512, compile_differential=True),
            record("t2", "failed", truncated=True, input_tokens=700, input_tokens_read=512)]
    short = [success("s1", truncated=False, input_tokens=90, input_tokens_read=90, compile_differential=False)]
    write_run(tmp_path / "new", long + short)
    write_run(tmp_path / "old", [version_1(success("o1"))],
              manifest=None, name="records-old.jsonl")
    logs = load_logs([tmp_path])
    assert logs.records.height == 4 and logs.records.filter(pl.col("example_id") == "o1")["truncated"].to_list() == [None]
    assert sorted(select_truncated(logs, "only").records["example_id"]) == ["t1", "t2"]
    assert sorted(select_truncated(logs, "exclude").records["example_id"]) == ["o1", "s1"]  # unknown: not truncated
    records = prepare(logs, variant_table(logs))
    assert cell_metrics(records, resamples=0)["truncated"].sum() == 2
    checks = audit(records).checks
    assert (checks["successes"].sum(), checks["compiles_differential"].sum(), checks["truncated"].sum()) == (3, 1, 1)


def test_the_audit_command_filters_truncated_records_and_counts_differential_verdicts(tmp_path, capsys):
    from analysis.cli import main as analysis_main

    write_run(tmp_path / "run", [
        success("t1", truncated=True, input_tokens=900, input_tokens_read=512, compile_differential=True),
        success("s1", truncated=False, input_tokens=90, input_tokens_read=90, compile_differential=True),
        success("s2", truncated=False, input_tokens=80, input_tokens_read=80, compile_differential=False)])
    for mode, expected in (("include", (3, 2, 1)), ("exclude", (2, 1, 0)), ("only", (1, 1, 1))):
        assert analysis_main(["audit", "--logs", str(tmp_path), "--truncated", mode, "--json"]) == 0
        row = json.loads(capsys.readouterr().out)["checks"][0]
        assert (row["successes"], row["compiles_differential"], row["truncated"]) == expected
    assert analysis_main(["audit", "--logs", str(tmp_path)]) == 0
    assert "2 of 3 compile verdicts differential" in capsys.readouterr().out
