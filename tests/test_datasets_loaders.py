"""File-format loaders on hand-written fixtures: formats, bad lines, labels, splits, CLI options."""
from __future__ import annotations

import argparse
import ast
import json

import pytest

from engine.datasets.base import SPLITS
from engine.datasets.loaders import Record, complete_splits, split_records
from engine.datasets.registry import add_dataset_options, dataset_from_args, load_dataset
from engine.errors import UserError

C_FUNCS = [
    "int add(int a, int b) {\n    return a + b;\n}\n",
    "void copy(char *dst, const char *src) {\n    strcpy(dst, src);\n}\n",
    "int sub(int a, int b) {\n\n    return a - b;\n\n}\n",
    "int get(int *p, int i) {\n    return p[i];\n}\n",
]


def write_jsonl(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows), encoding="utf-8")
    return path


def devign_rows(n, start=0):
    return [{"func": C_FUNCS[i % 4] + f"// {i}\n", "target": i % 2, "idx": i, "project": "demo"} for i in range(start, start + n)]


def all_examples(dataset):
    return [ex for split in SPLITS for ex in dataset.splits[split]]


# --------------------------------------------------------------------------- devign


def test_devign_directory_with_three_splits(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", devign_rows(6))
    write_jsonl(tmp_path / "valid.jsonl", devign_rows(2, 100))
    write_jsonl(tmp_path / "test.jsonl", devign_rows(2, 200))
    ds = load_dataset("devign", tmp_path)
    assert (ds.task, ds.language, ds.label_names) == ("defect", "c", ["clean", "vulnerable"])
    assert [len(ds.splits[s]) for s in SPLITS] == [6, 2, 2]
    first = ds.split("train")[0]
    assert (first.id, first.label, first.meta["project"]) == ("0", 0, "demo")
    assert first.code.startswith("int add")
    assert ds.manifest["splits_made"] == {}
    assert ds.manifest["files"]["train"]["sha256"]


def test_devign_substitutes_are_parsed_as_literals_never_evaluated(tmp_path):
    subs = "{'a': ['x', 'y'], 'b': ['z']}"
    rows = [{"func": C_FUNCS[0], "target": 1, "idx": 7, "substitutes": subs}]
    write_jsonl(tmp_path / "one.jsonl", rows)
    ds = load_dataset("devign", tmp_path / "one.jsonl")
    (ex,) = all_examples(ds)
    assert ex.meta["substitutes"] == {"a": ["x", "y"], "b": ["z"]}
    assert ds.manifest["with_substitutes"] == 1
    evil = [{"func": C_FUNCS[0], "target": 1, "idx": 8, "substitutes": "__import__('os').system('false')"}]
    write_jsonl(tmp_path / "evil.jsonl", evil)
    with pytest.raises(UserError, match=r"evil\.jsonl:1: bad substitutes"):
        load_dataset("devign", tmp_path / "evil.jsonl")


def test_devign_bad_line_names_file_and_line(tmp_path):
    rows = devign_rows(3) + ['{"func": "int f(void) {', *map(json.dumps, devign_rows(2, 10))]
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    with pytest.raises(UserError, match=r"data\.jsonl:4: not valid JSON.*--skip-bad"):
        load_dataset("devign", path)
    ds = load_dataset("devign", path, skip_bad=True)
    assert len(all_examples(ds)) == 5
    assert ds.manifest["skipped"]["count"] == 1
    assert ds.manifest["skipped"]["first"][0].endswith("data.jsonl:4: not valid JSON (Unterminated string starting at)")


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"func": "int f(void) { return 0; }", "idx": 1}, "missing label"),
        ({"func": "int f(void) { return 0; }", "target": 2, "idx": 1}, "unknown label"),
        ({"func": "int f(void) { return 0; }", "target": "yes", "idx": 1}, "unknown label"),
        ({"func": "   \n ", "target": 0, "idx": 1}, "empty code"),
        ({"target": 0, "idx": 1}, "missing code"),
        ({"func": 12, "target": 0, "idx": 1}, "code is not text"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_devign_reports_missing_unknown_labels_and_empty_code(tmp_path, row, reason):
    path = write_jsonl(tmp_path / "d.jsonl", [*devign_rows(2), row])
    with pytest.raises(UserError, match=rf"d\.jsonl:3: {reason}"):
        load_dataset("devign", path)
    ds = load_dataset("devign", path, skip_bad=True)
    assert ds.manifest["skipped"]["by_reason"] == {reason: 1}


def test_skip_bad_is_printed_by_dataset_from_args(tmp_path, capsys):
    path = write_jsonl(tmp_path / "d.jsonl", [*devign_rows(4), "not json", {"func": "", "target": 0}])
    args = parse_args(["--data-format", "devign", "--data", str(path), "--skip-bad"])
    ds = dataset_from_args(args)
    assert ds.manifest["skipped"]["count"] == 2
    assert "skipped 2 bad line(s)" in capsys.readouterr().err


# --------------------------------------------------------------------------- splits


def test_single_file_is_split_80_10_10_stratified_and_by_seed(tmp_path):
    path = write_jsonl(tmp_path / "all.jsonl", devign_rows(40))
    a = load_dataset("devign", path, seed=0)
    b = load_dataset("devign", path, seed=0)
    c = load_dataset("devign", path, seed=1)
    assert [len(a.splits[s]) for s in SPLITS] == [32, 4, 4]
    assert a.fingerprint == b.fingerprint
    assert [ex.id for ex in a.split("test")] == [ex.id for ex in b.split("test")]
    assert a.fingerprint != c.fingerprint
    assert {ex.id for ex in a.split("test")} != {ex.id for ex in c.split("test")}
    for split in SPLITS:  # stratified: both labels in every split, half each
        labels = [ex.label for ex in a.split(split)]
        assert labels.count(0) == labels.count(1)
    ids = [ex.id for ex in all_examples(a)]
    assert sorted(ids, key=int) == [str(i) for i in range(40)]
    assert "80%" in a.manifest["splits_made"]["train"]


def test_missing_test_is_held_out_of_train_as_large_as_valid():
    train = [Record(f"t{i}", "x", str(i % 4)) for i in range(40)]
    valid = [Record(f"v{i}", "x", str(i % 4)) for i in range(8)]
    splits, made = complete_splits({"train": train, "valid": valid}, seed=3)
    assert len(splits["test"]) == 8 and len(splits["train"]) == 32 and splits["valid"] == valid
    assert {r.label for r in splits["test"]} == {"0", "1", "2", "3"}
    assert not {r.id for r in splits["test"]} & {r.id for r in splits["train"]}
    assert "held out of train" in made["test"]
    again, _ = complete_splits({"train": train, "valid": valid}, seed=3)
    assert [r.id for r in again["test"]] == [r.id for r in splits["test"]]
    other, _ = complete_splits({"train": train, "valid": valid}, seed=4)
    assert [r.id for r in other["test"]] != [r.id for r in splits["test"]]


def test_missing_valid_is_held_out_of_train_as_large_as_test():
    train = [Record(f"t{i}", "x", str(i % 2)) for i in range(20)]
    test = [Record(f"s{i}", "x", str(i % 2)) for i in range(4)]
    splits, made = complete_splits({"train": train, "test": test}, seed=0)
    assert (len(splits["train"]), len(splits["valid"]), len(splits["test"])) == (16, 4, 4)
    assert set(made) == {"train", "valid"}


def test_group_split_keeps_groups_together():
    records = [Record(f"g{g}/{k}", "x", str(k % 2), group=f"g{g}") for g in range(30) for k in range(4)]
    splits = split_records(records, {"train": 0.8, "valid": 0.1, "test": 0.1}, seed=0)
    owner = {}
    for split, members in splits.items():
        for record in members:
            assert owner.setdefault(record.group, split) == split
    assert [len(splits[s]) // 4 for s in SPLITS] == [24, 3, 3]


# --------------------------------------------------------------------------- bigclonebench


JAVA = {
    "10": "int max(int a, int b) { return a > b ? a : b; }",
    "11": "int biggest(int x, int y) { if (x > y) return x; return y; }",
    "12": "void hello() { System.out.println(\"hi\"); }",
    "13": "String read(File f) throws IOException { return Files.readString(f.toPath()); }",
}


def write_bcb(root, pairs_by_split):
    write_jsonl(root / "data.jsonl", [{"func": code, "idx": idx} for idx, code in JAVA.items()])
    for split, pairs in pairs_by_split.items():
        (root / f"{split}.txt").write_text("".join(f"{line}\n" for line in pairs), encoding="utf-8")


def test_bigclonebench_examples_are_pairs(tmp_path):
    write_bcb(tmp_path, {
        "train": ["10\t11\t1", "10\t12\t0", "12\t13\t0", "11\t10\t1"],
        "valid": ["12 10 0", "13\t11\t0"],
        "test": ["11\t12\t0", "10\t11\t1"],
    })
    ds = load_dataset("bigclonebench", tmp_path)
    assert (ds.task, ds.language, ds.label_names) == ("clone", "java", ["not-clone", "clone"])
    first = ds.split("train")[0]
    assert first.is_pair and first.code == (JAVA["10"], JAVA["11"]) and first.label == 1
    assert first.id == "10-11" and first.meta == {"id1": "10", "id2": "11"}
    assert [len(ds.splits[s]) for s in SPLITS] == [4, 2, 2]
    test_ids = [ex.id for ex in ds.split("test")]
    assert test_ids == ["11-12", "10-11#2"]  # the same pair again (here in train) gets #2
    assert len({ex.id for ex in all_examples(ds)}) == 8
    assert ds.manifest["functions"] == 4


def test_bigclonebench_unknown_function_and_bad_pair_lines(tmp_path):
    write_bcb(tmp_path, {"train": ["10\t11\t1", "10\t99\t0", "10 11", "10\t12\t3"]})
    with pytest.raises(UserError, match=r"train\.txt:2: unknown function id \(99 not in data\.jsonl\)"):
        load_dataset("bigclonebench", tmp_path)
    ds = load_dataset("bigclonebench", tmp_path, skip_bad=True)
    assert ds.manifest["skipped"]["by_reason"] == {"not a pair line": 1, "unknown function id": 1, "unknown label": 1}


def test_bigclonebench_needs_data_jsonl(tmp_path):
    (tmp_path / "train.txt").write_text("1\t2\t0\n")
    with pytest.raises(UserError, match="no data.jsonl"):
        load_dataset("bigclonebench", tmp_path)


# --------------------------------------------------------------------------- gcj


# as in the real files: newlines written as backslash-n, two extra spaces before every line after the first
GCJ_LINE = (
    "import sys\\n  for t in range(2):\\n      sys.stdout.write('Case #%d:\\n' % (t + 1))\\n"
    " <CODESPLIT> 1"
)


def test_gcj_decodes_lines_and_keeps_newline_escapes_inside_strings(tmp_path):
    (tmp_path / "classes.txt").write_text("0\talice\n1\tbob\n2\tcarol\n", encoding="utf-8")
    other = "def f(x):\\n      return x + 1\\n <CODESPLIT> 0"
    (tmp_path / "train.txt").write_text("\n".join([GCJ_LINE, other] * 5) + "\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text(GCJ_LINE + "\n" + other + "\n", encoding="utf-8")
    ds = load_dataset("gcj", tmp_path)
    assert (ds.task, ds.language, ds.label_names) == ("authorship", "python", ["alice", "bob", "carol"])
    example = next(ex for ex in ds.split("valid") if ex.label == 1)
    assert example.id == "valid:1"
    code = example.code
    assert "'Case #%d:\\n'" in code  # the escape stays an escape inside the literal
    assert code.startswith("import sys\n")  # dedented
    ast.parse(code)
    assert len(code.strip().splitlines()) == 3
    # no test file: held out of train, as large as valid, both labels present
    assert [len(ds.splits[s]) for s in SPLITS] == [8, 2, 2]
    assert {ex.label for ex in ds.split("test")} == {0, 1}
    assert "held out of train" in ds.manifest["splits_made"]["test"]


def test_gcj_bad_lines_and_unknown_labels(tmp_path):
    (tmp_path / "classes.txt").write_text("0\talice\n1\tbob\n", encoding="utf-8")
    (tmp_path / "train.txt").write_text(
        GCJ_LINE + "\n" + "  x = 1\\n <CODESPLIT> 7\n" + "no separator here\n" + "  y = 2\\n <CODESPLIT> \n"
        + " \\n  <CODESPLIT> 0\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"train\.txt:2: unknown label"):
        load_dataset("gcj", tmp_path / "train.txt")
    ds = load_dataset("gcj", tmp_path / "train.txt", skip_bad=True)
    assert ds.manifest["skipped"]["by_reason"] == {
        "empty code": 1, "missing label": 1, "no <CODESPLIT>": 1, "unknown label": 1}


def test_gcj_without_classes_uses_numeric_labels(tmp_path):
    lines = [f"  print({i})\\n <CODESPLIT> {i % 3 * 5}" for i in range(30)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = load_dataset("gcj", tmp_path)
    assert ds.label_names == ["0", "5", "10"]


def test_gcj_malformed_classes_file(tmp_path):
    (tmp_path / "classes.txt").write_text("0 alice\n", encoding="utf-8")
    (tmp_path / "train.txt").write_text(GCJ_LINE + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"classes\.txt:1: expected 'label<TAB>author'"):
        load_dataset("gcj", tmp_path)


# --------------------------------------------------------------------------- poj104


def poj_rows(labels, start=0):
    return [{"code": f"int main() {{ return {i}; }}", "label": str(label), "index": str(start + i)}
            for i, label in enumerate(labels)]


def test_poj104_keeps_the_files_splits_when_labels_are_shared(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", poj_rows([1, 2, 10] * 4))
    write_jsonl(tmp_path / "valid.jsonl", poj_rows([1, 2, 10], 100))
    write_jsonl(tmp_path / "test.jsonl", poj_rows([10, 2], 200))
    ds = load_dataset("poj104", tmp_path)
    assert (ds.task, ds.language, ds.label_names) == ("classification", "c", ["1", "2", "10"])
    assert [len(ds.splits[s]) for s in SPLITS] == [12, 3, 2]
    assert "resplit" not in ds.manifest


def test_poj104_problem_disjoint_splits_are_pooled_and_resplit(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", poj_rows([1, 2] * 10))
    write_jsonl(tmp_path / "valid.jsonl", poj_rows([3] * 10, 100))
    write_jsonl(tmp_path / "test.jsonl", poj_rows([4] * 10, 200))
    ds = load_dataset("poj104", tmp_path)
    assert "pooled" in ds.manifest["resplit"]
    for split in SPLITS:
        assert {ex.label for ex in ds.split(split)} == {0, 1, 2, 3}


# --------------------------------------------------------------------------- jsonl / csv


def test_jsonl_with_column_mapping(tmp_path):
    rows = [{"src": f"def f{i}():\n    return {i}\n", "y": ["neg", "pos"][i % 2], "key": f"k{i}"} for i in range(20)]
    path = write_jsonl(tmp_path / "mine.jsonl", rows)
    ds = load_dataset("jsonl", path, columns="code=src,label=y,id=key", language="python")
    assert (ds.task, ds.language, ds.label_names) == ("classification", "python", ["neg", "pos"])
    assert sorted(ex.id for ex in all_examples(ds)) == sorted(f"k{i}" for i in range(20))
    assert ds.manifest["columns"] == {"code": "src", "label": "y", "id": "key"}


def test_jsonl_pairs_with_code2(tmp_path):
    rows = [{"a": "int f() { return 1; }", "b": "int g() { return 1; }", "same": i % 2} for i in range(10)]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    ds = load_dataset("jsonl", path, columns={"code": "a", "code2": "b", "label": "same"}, language="java")
    assert ds.task == "clone" and all(ex.is_pair for ex in all_examples(ds))
    assert ds.split("train")[0].id.startswith("pairs:")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"language": "python"}, "--columns is required"),
        ({"columns": "code=src", "language": "python"}, "must map label=COLUMN"),
        ({"columns": "code=src,label=y,colour=z", "language": "python"}, "unknown key 'colour'"),
        ({"columns": "code=src,label", "language": "python"}, "not of the form KEY=COLUMN"),
        ({"columns": "code=src,label=y"}, "--language is required"),
        ({"columns": "code=src,label=y", "language": "cobol"}, "unknown language 'cobol'"),
        ({"columns": "code=src,label=y", "language": "python", "task": "clone"}, "clone task needs a pair"),
        ({"columns": "code=src,label=y", "language": "python", "task": "sorting"}, "unknown task"),
    ],
)
def test_generic_option_errors(tmp_path, options, message):
    path = write_jsonl(tmp_path / "x.jsonl", [{"src": "x = 1", "y": 0}])
    with pytest.raises(UserError, match=message):
        load_dataset("jsonl", path, **options)


def test_csv_with_multiline_fields_bad_rows_and_line_numbers(tmp_path):
    lines = ["id,program,target"]
    for i in range(12):
        lines.append(f'{i},"def f():\n    return {i}\n",{i % 3}')
    # a record takes 3 lines (the code holds 2 newlines): records end on line 37
    lines.append("12,,1")  # empty code, on line 38
    lines.append('13,"x = 1",')  # missing label, on line 39
    lines.append("14,too,many,fields")  # line 40
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"data\.csv:38: empty code"):
        load_dataset("csv", path, columns="code=program,label=target,id=id", language="python")
    ds = load_dataset("csv", path, columns="code=program,label=target,id=id", language="python", skip_bad=True)
    assert ds.manifest["skipped"]["first"] == [
        f"{path}:38: empty code ('program' is blank)",
        f"{path}:39: missing label (no 'target')",
        f"{path}:40: wrong number of fields (4 for 3 columns)",
    ]
    assert len(all_examples(ds)) == 12 and ds.label_names == ["0", "1", "2"]
    code = next(ex.code for ex in all_examples(ds) if ex.id == "5")
    assert code == "def f():\n    return 5\n"


def test_csv_missing_column_is_reported_with_the_header(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"no column 'program'; its columns are a, b"):
        load_dataset("csv", path, columns="code=program,label=b", language="c")


# --------------------------------------------------------------------------- paths and CLI options


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(UserError, match="no such file or directory"):
        load_dataset("devign", tmp_path / "nope.jsonl")
    with pytest.raises(UserError, match="no devign split files found; expected train.jsonl"):
        load_dataset("devign", tmp_path)
    write_jsonl(tmp_path / "only.jsonl", devign_rows(10))  # one loose file: used as the whole data
    assert load_dataset("devign", tmp_path).manifest["source_splits"] == {"all": 10}
    write_jsonl(tmp_path / "second.jsonl", devign_rows(10))
    with pytest.raises(UserError, match="it has only.jsonl, second.jsonl: pass one of them"):
        load_dataset("devign", tmp_path)
    (tmp_path / "train.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(UserError, match="no examples were read"):
        load_dataset("devign", tmp_path)


def parse_args(argv, own_seed=False):
    parser = argparse.ArgumentParser()
    if own_seed:
        parser.add_argument("--seed", type=int, default=7)
    add_dataset_options(parser)
    return parser.parse_args(argv)


def test_dataset_options_share_one_spelling(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", devign_rows(20))
    args = parse_args(["--data-format", "devign", "--data", str(path), "--seed", "3"])
    assert args.data_seed == 3
    assert dataset_from_args(args).manifest["seed"] == 3
    args = parse_args(["--data-format", "devign", "--data", str(path), "--data-seed", "4", "--seed", "1"], own_seed=True)
    assert (args.data_seed, args.seed) == (4, 1)


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "choose a dataset"),
        (["--data", "x"], "--data needs --data-format"),
        (["--data-format", "devign"], "needs --data PATH"),
        (["--dataset", "stdlib-attribution", "--data", "x"], "reads no files"),
        (["--dataset", "stdlib-attribution", "--data-format", "devign"], "not both"),
        (["--dataset", "stdlib-attribution", "--skip-bad"], "--skip-bad does not apply"),
        (["--dataset", "stdlib-attribution", "--language", "c"], "--language does not apply"),
        (["--data-format", "devign", "--data", "x", "--columns", "code=a,label=b"], "--columns does not apply"),
        (["--data-format", "gcj", "--data", "x", "--dataset-size", "3"], "--dataset-size does not apply"),
    ],
)
def test_bad_option_combinations_are_user_errors(argv, message):
    with pytest.raises(UserError, match=message):
        dataset_from_args(parse_args(argv))
