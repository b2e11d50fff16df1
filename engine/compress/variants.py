"""From a parent model directory to measured variant directories: checks, outputs, manifests.

`compress(parent_dir, specs, dataset, options)` makes each requested variant (a `VariantSpec`:
method and parameters, output directory), then loads the parent and every variant and measures
them side by side in this one run (`engine.compress.measure`), and finally writes each variant's
`manifest.json`. `engine compress --all` is the same call with `standard_specs(out)`.

A variant directory whose model files are written but whose manifest is not (the run stopped
during measurement) carries `checkpoint/incomplete` and is rebuilt by the next run; a finished
one is never overwritten without `overwrite=True`. Distillation resumes from its epoch
checkpoints (see `engine.compress.distill`).
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.compress.measure import Measurement, measure_side_by_side
from engine.compress.methods import METHODS, find, meaningful_after
from engine.errors import UserError
from engine.manifest import MANIFEST_NAME, file_hashes, model_fingerprint, read_manifest, size_on_disk_mb, write_manifest

PARENT_FIELDS = ("base", "base_info", "task", "language", "dataset", "label_names", "num_labels", "head",
                 "hyperparameters")
INCOMPLETE = Path("checkpoint") / "incomplete"
PARENT_KEY = "(parent)"  # the parent among the measured models (variant names are directory names)


@dataclass
class VariantSpec:
    name: str
    out: Path
    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parent:
    path: Path
    manifest: dict[str, Any] | None
    fingerprint: str
    method: str

    @property
    def third_party(self) -> bool:
        return self.manifest is None


@dataclass
class Options:
    device: str = "auto"
    backend: str = "auto"  # the victims' forward pass (engine.backends), for the test split and the timings
    overwrite: bool = False
    allow_compressed: bool = False
    progress: bool | None = None
    timing_examples: int = 64
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    repeats: int = 3
    eval_batch_size: int = 32
    stop_after_epoch: int | None = None  # distillation only: stop after this epoch, as an interruption would
    log: Any = None

    def say(self, message: str) -> None:
        (self.log or (lambda text: print(text, file=sys.stderr, flush=True)))(message)


def standard_specs(out: Path, training: dict[str, dict[str, Any]] | None = None) -> list[VariantSpec]:
    """`--all`: every method's standard variant (`Method.standard`) in `out/<method>`; `training`
    (method -> options) adds the given training options to the variants of methods that train."""
    specs = []
    for name, spec in METHODS.items():
        if spec.standard is None:
            continue
        params = dict(spec.standard)
        if spec.trains:
            params |= {key: value for key, value in (training or {}).get(name, {}).items() if value is not None}
        specs.append(VariantSpec(name, out / name, name, params))
    return specs


# --------------------------------------------------------------------------- parent


def load_parent(path: str | Path) -> Parent:
    """The parent's manifest (None for a third-party checkpoint), fingerprint and compression method."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"--model {path}: not a directory; engine compress needs a local model directory")
    manifest = read_manifest(path)
    files = file_hashes(path)
    if not files:
        raise UserError(f"--model {path}: the directory holds no model files")
    fingerprint = model_fingerprint(files)
    if manifest and manifest.get("files"):
        changed = [name for name, info in manifest["files"].items()
                   if files.get(name, {}).get("sha256") != info.get("sha256")]
        if changed:
            raise UserError(f"--model {path}: {', '.join(changed[:3])} differ from its {MANIFEST_NAME}; "
                            "the model was changed after it was written")
    method = ((manifest or {}).get("compression") or {}).get("method", "none")
    return Parent(path, manifest, fingerprint, method)


def check_recompress(parent: Parent, name: str, allow: bool) -> None:
    """Compressing a compressed model: an error unless asked for and meaningful."""
    spec = find(name)
    if parent.method == "none" or spec.on_compressed:
        return
    details = (parent.manifest or {}).get("compression") or {}
    what = parent.method + "".join(f", {key} {details[key]}" for key in ("ratio", "dtype", "target_mb") if key in details)
    if not meaningful_after(parent.method, name):
        raise UserError(f"{parent.path} is already compressed ({what}); {name} on top of it is not meaningful "
                        "(int8 weights cannot be pruned or quantized again); compress the original model "
                        f"(fingerprint {details.get('parent')}) instead")
    if not allow:
        raise UserError(f"{parent.path} is already compressed ({what}); pass --allow-compressed to apply {name} "
                        f"on top of it on purpose (the manifest records the chain), or compress the original "
                        f"(fingerprint {details.get('parent')})")


def check_dataset(parent: Parent, dataset) -> None:
    """The test split must exist and its labels must be the parent's."""
    if not dataset.splits.get("test"):
        raise UserError(f"dataset {dataset.name!r} has no test split: compressed models are measured on it")
    names = (parent.manifest or {}).get("label_names")
    if names and list(names) != list(dataset.label_names):
        raise UserError(f"{parent.path} predicts labels {names}, dataset {dataset.name!r} has {dataset.label_names}; "
                        "compress with the dataset the model was trained on")
    trained = (parent.manifest or {}).get("dataset") or {}
    if trained.get("name") == dataset.name and trained.get("fingerprint") not in (None, dataset.fingerprint):
        print(f"warning: {parent.path} was trained on {dataset.name} with fingerprint {trained['fingerprint']}, this is "
              f"{dataset.fingerprint}: its test split may overlap the model's training data", file=sys.stderr)


# --------------------------------------------------------------------------- output directories


def prepare_out(out: Path, overwrite: bool, method: str) -> None:
    """Refuse to replace a finished model; clear a half-written variant; leave a distillation checkpoint alone."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    manifest = read_manifest(out) if out.is_dir() else None
    if overwrite and out.is_dir():
        shutil.rmtree(out)
        return
    if manifest is not None:
        done = ((manifest.get("compression") or {}).get("method") or "none") != "none"
        trained = METHODS[method].trains and manifest.get("base") == method
        if done or not trained:
            raise UserError(f"--out {out} already holds a model ({MANIFEST_NAME}); choose another --out or pass --overwrite")
        return  # a student whose training finished: only the measurement is left
    if (out / INCOMPLETE).is_file():
        shutil.rmtree(out)
        return
    if METHODS[method].trains and (out / "checkpoint").is_dir():
        return  # resumed by training
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out {out} is not empty and holds no model written by engine compress; "
                        "choose another --out or pass --overwrite")


def _mark_incomplete(out: Path) -> None:
    (out / INCOMPLETE).parent.mkdir(parents=True, exist_ok=True)
    (out / INCOMPLETE).write_text("model files written, manifest not yet (measurement pending)\n", encoding="utf-8")


# --------------------------------------------------------------------------- methods


def make_prune(parent: Parent, spec: VariantSpec, dataset, options: Options) -> dict[str, Any]:
    from engine.compress.prune import prune_heads, prune_unstructured
    from engine.common.int8 import is_quantized
    from engine.models import load_classifier, save_model

    ratio = spec.params["ratio"]  # checked by _check_params
    structured = spec.params.get("structured")
    scope = spec.params.get("scope") or "linear"
    model, tokenizer = load_classifier(parent.path)
    if is_quantized(model):
        raise UserError(f"{parent.path} holds int8 weights, which cannot be pruned; prune the float model")
    if structured == "heads":
        from engine.device import resolve_device
        from engine.victim import Victim

        max_length = Victim(model, tokenizer, manifest=parent.manifest, device="cpu", backend="hf").max_length
        sample = dataset.split("train")[: int(spec.params.get("importance_examples") or 256)]
        report = prune_heads(model, tokenizer, [ex.code for ex in sample], [ex.label for ex in sample], ratio,
                             max_length=max_length, device=resolve_device(options.device))
        params = {"ratio": ratio, "structured": "heads", "criterion": "head importance (Michel et al. 2019)",
                  "importance_examples": len(sample)}
    else:
        report = prune_unstructured(model, ratio, scope)
        params = {"ratio": ratio, "structured": None, "scope": scope, "criterion": "global L1 magnitude"}
    save_model(model.to("cpu"), tokenizer, spec.out)
    _mark_incomplete(spec.out)
    sparsity = report["sparsity"] if "sparsity" in report else report
    options.say(f"{spec.name}: pruned to {sparsity['overall']:.1%} sparsity over {sparsity['weights']:,} encoder "
                f"linear weights ({sparsity['scope']})")
    return params | {"report": report}


def make_quantize(parent: Parent, spec: VariantSpec, dataset, options: Options) -> dict[str, Any]:
    from engine.common.int8 import is_quantized, quantize_int8
    from engine.compress.quantize import cast_weights, quantization_report, save_quantized
    from engine.models import load_classifier, save_model

    dtype = spec.params.get("dtype") or "int8"
    model, tokenizer = load_classifier(parent.path)
    if is_quantized(model):
        raise UserError(f"{parent.path} is already int8")
    if dtype == "int8":
        model = quantize_int8(model)
        save_quantized(model, tokenizer, spec.out)
        report = quantization_report(model)
        options.say(f"{spec.name}: {len(report['int8_modules'])} linear layers in int8 ({report['int8_weights']:,} weights), "
                    f"{report['float_parameters']:,} parameters stay float32")
        params = {"dtype": "int8", "scheme": "dynamic", "serialization": "quantized.safetensors: int8 weights, "
                  "per-tensor scale and zero point, float tensors; format of engine.common.int8"}
    else:
        model = cast_weights(model, dtype)
        save_model(model, tokenizer, spec.out)
        report = {"dtype": dtype, "note": "every floating weight cast; Victim.load computes in fp32 unless --dtype is given"}
        params = {"dtype": dtype, "scheme": "cast", "serialization": "model.safetensors in " + dtype}
    _mark_incomplete(spec.out)
    return params | {"report": report}


def make_distill(parent: Parent, spec: VariantSpec, dataset, options: Options) -> dict[str, Any] | None:
    from engine.compress.distill import DistillConfig, distill, read_unlabelled
    from engine.victim import Victim

    params = dict(spec.params)
    unlabelled_path = params.pop("unlabelled", None)
    adversarial_path = params.pop("adversarial", None)
    unlabelled = read_unlabelled(unlabelled_path, dataset.language) if unlabelled_path else []
    config = DistillConfig(**{key: value for key, value in params.items() if value is not None},
                           device=options.device, eval_batch_size=options.eval_batch_size)
    teacher = Victim.load(parent.path, device=options.device, batch_size=options.eval_batch_size, cache_size=0,
                          backend=options.backend)
    adversarial = {}
    if adversarial_path:
        if not config.robust:
            raise UserError("--adversarial is for robust training: pass --robust too (or use --method harden)")
        from engine.augment.stage import read_programs

        adversarial = read_programs(adversarial_path, dataset)
    result, facts = distill(teacher, parent.fingerprint, dataset, config, spec.out, unlabelled=unlabelled,
                            progress=options.progress, stop_after_epoch=options.stop_after_epoch, log=options.log,
                            adversarial=adversarial)
    if not result.finished:
        return None
    if unlabelled_path:
        facts["unlabelled_path"] = str(unlabelled_path)
    robust = {"robust": True, **config.robust_knobs(), "epochs": config.epochs, "lr": config.lr, "seed": config.seed,
              "adversarial": str(adversarial_path) if adversarial_path else None,
              "adversarial_programs": sum(len(v) for v in adversarial.values())} if config.robust else {"robust": False}
    return {"target_mb": config.target_mb, "temperature": config.temperature, "hard_weight": config.hard_weight,
            **robust, "report": facts}


# --------------------------------------------------------------------------- the run


def compress(parent_dir: str | Path, specs: list[VariantSpec], dataset, options: Options) -> dict[str, Any]:
    """Make, measure and record every variant in `specs`; returns {name: manifest} (or {} when stopped early)."""
    parent = load_parent(parent_dir)
    for spec in specs:
        check_recompress(parent, spec.method, options.allow_compressed)
        METHODS[spec.method].checker()(spec.params)
    check_dataset(parent, dataset)
    if parent.third_party:
        options.say(f"{parent.path} has no {MANIFEST_NAME}: treating it as a third-party checkpoint "
                    f"(fingerprint {parent.fingerprint}); its size, parameters and metrics are measured here")
    for spec in specs:
        if spec.name == PARENT_KEY:
            raise UserError(f"--out {spec.out}: choose another directory name than {PARENT_KEY}")
        if spec.out.resolve() == parent.path.resolve():
            raise UserError(f"--out {spec.out} is the parent model's own directory")
        prepare_out(spec.out, options.overwrite, spec.method)
    made: dict[str, dict[str, Any]] = {}
    for spec in specs:
        options.say(f"{spec.name}: {spec.method} {_describe(spec.params)} → {spec.out}")
        info = METHODS[spec.method].maker()(parent, spec, dataset, options)
        if info is None:
            options.say(f"{spec.name}: stopped after epoch {options.stop_after_epoch} as asked; "
                        "run the same command again to resume")
            return {}
        made[spec.name] = info
    measured = _measure(parent, specs, dataset, options)
    manifests = {}
    for spec in specs:
        manifests[spec.name] = _write_variant_manifest(parent, spec, made[spec.name], measured, dataset, options)
        options.say(_summary_line(spec.name, measured[spec.name], measured[PARENT_KEY]))
    return manifests


def write_index(out: Path, specs: list[VariantSpec], manifests: dict[str, dict[str, Any]]) -> Path:
    """`out/variants.json` after `--all`: parent, sub-directory of each variant, the parent's measurement, a summary."""
    import json

    first = next(iter(manifests.values()))
    index = {"parent": first["compression"]["parent_path"], "parent_fingerprint": first["compression"]["parent"],
             "variants": {spec.name: spec.out.name for spec in specs},
             "parent_measurement": first["measurement"]["parent"],
             "summary": {spec.name: summary(manifests[spec.name]) for spec in specs}}
    path = out / "variants.json"
    path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return path


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The headline fields of a variant manifest."""
    return {key: manifest.get(key) for key in ("size_mb", "parameters", "nonzero_parameters", "latency_ms_batch1",
                                               "throughput_per_s", "test_metrics", "agreement")}


def _measure(parent: Parent, specs: list[VariantSpec], dataset, options: Options) -> dict[str, Measurement]:
    from engine.victim import Victim

    from engine.device import resolve_device

    device = options.device
    int8 = any(spec.method == "quantize" and spec.params.get("dtype", "int8") == "int8"
               or (spec.out / "quantized.safetensors").is_file() for spec in specs)
    if int8 and resolve_device(device).type != "cpu":
        options.say("int8 layers run on the CPU only: measuring every model on the CPU, so the ratios compare like with like")
        device = "cpu"
    victims = {PARENT_KEY: Victim.load(parent.path, device=device, cache_size=0, batch_size=options.eval_batch_size,
                                       backend=options.backend)}
    sizes = {PARENT_KEY: size_on_disk_mb(parent.path)}
    for spec in specs:
        victims[spec.name] = Victim.load(spec.out, device=device, cache_size=0, batch_size=options.eval_batch_size,
                                         backend=options.backend)
        sizes[spec.name] = size_on_disk_mb(spec.out)
    options.say(f"measuring {', '.join(victims)} side by side on {len(dataset.split('test'))} test examples "
                f"(timing: {min(options.timing_examples, len(dataset.split('test')))} examples, batch sizes "
                f"{', '.join(map(str, options.batch_sizes))}, best of {options.repeats}, {torch.get_num_threads()} threads)")
    return measure_side_by_side(victims, sizes, dataset.split("test"), num_labels=dataset.num_labels, parent=PARENT_KEY,
                                timing_examples=options.timing_examples, batch_sizes=options.batch_sizes,
                                repeats=options.repeats, progress=options.progress)


def _parent_fields(parent: Parent, dataset, victim_max_length: int | None) -> dict[str, Any]:
    if parent.manifest is not None:
        return {key: parent.manifest[key] for key in PARENT_FIELDS if key in parent.manifest}
    return {"base": str(parent.path), "base_info": {"kind": "third-party", "source": str(parent.path)},
            "task": dataset.task, "language": dataset.language,
            "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint},
            "label_names": list(dataset.label_names), "num_labels": dataset.num_labels,
            "hyperparameters": {"max_length": victim_max_length}}


def _write_variant_manifest(parent: Parent, spec: VariantSpec, info: dict[str, Any], measured: dict[str, Measurement],
                            dataset, options: Options) -> dict[str, Any]:
    mine, reference = measured[spec.name], measured[PARENT_KEY]
    evaluation = mine.evaluation
    if spec.method == "distill":
        fields = {key: value for key, value in (read_manifest(spec.out) or {}).items()
                  if key not in ("manifest_version", "created", "versions", "size_mb", "files", "fingerprint",
                                 "metrics", "metrics_split", "confusion", "compression", "parameters")}
    else:
        fields = _parent_fields(parent, dataset, reference.max_length)
    report = info.pop("report")
    fields |= {
        "kind": "classifier",
        "compression": {"method": spec.method, **info, "parent": parent.fingerprint, "parent_path": str(parent.path),
                        "parent_compression": parent.method, "report": report},
        "metrics_split": "test",
        "metrics": {key: evaluation.metrics[key] for key in ("n", "accuracy", "precision", "recall", "f1", "average",
                                                              "positive_label")},
        "confusion": evaluation.metrics["confusion"],
        "test_metrics": mine.test_metrics,
        "agreement": mine.agreement,
        "parameters": mine.parameters,
        "nonzero_parameters": mine.nonzero_parameters,
        "latency_ms_batch1": round(mine.latency_ms_batch1, 4),
        "throughput_per_s": round(mine.throughput_per_s, 3),
        "best_batch_size": mine.best_batch_size,
        "measurement": {
            "same_run_as_parent": True, "device": mine.device, "torch_threads": torch.get_num_threads(),
            "timing_examples": min(options.timing_examples, len(dataset.split("test"))),
            "batch_sizes": sorted(mine.throughput_by_batch), "repeats": options.repeats,
            "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint, "split": "test"},
            "variant": mine.to_json(),
            "parent": reference.to_json() | {"fingerprint": parent.fingerprint},
        },
    }
    shutil.rmtree(spec.out / "checkpoint", ignore_errors=True)
    return write_manifest(spec.out, fields)


def check_prune(params: dict[str, Any]) -> None:
    from engine.compress.prune import check_ratio

    if params.get("ratio") is None:
        raise UserError("--method prune needs --ratio R (the share of weights, or of heads, to remove; 0 < R < 1)")
    check_ratio(params["ratio"])
    if params.get("structured") not in (None, "heads"):
        raise UserError(f"--structured {params['structured']!r}: the only structured pruning is 'heads'")


def check_quantize(params: dict[str, Any]) -> None:
    if params.get("dtype", "int8") not in ("int8", "fp16", "bf16"):
        raise UserError(f"--dtype {params['dtype']!r}: use int8 (CPU), fp16 or bf16 (GPU weights)")


def check_distill(params: dict[str, Any]) -> None:
    from engine.compress.distill import DistillConfig

    unknown = set(params) - set(DistillConfig.__dataclass_fields__) - {"unlabelled", "adversarial"}
    if unknown:
        raise UserError(f"distill does not take {', '.join(sorted(unknown))}")


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in params.items() if value is not None)


def _summary_line(name: str, mine: Measurement, parent: Measurement) -> str:
    return (f"{name}: {mine.size_mb:.2f} MB ({mine.size_mb / parent.size_mb:.2f}× the parent), latency "
            f"{mine.latency_ms_batch1:.2f} ms ({mine.latency_ms_batch1 / parent.latency_ms_batch1:.2f}×), throughput "
            f"{mine.throughput_per_s:.1f}/s ({mine.throughput_per_s / parent.throughput_per_s:.2f}×), accuracy "
            f"{mine.test_metrics['accuracy']:.4f} (parent {parent.test_metrics['accuracy']:.4f}), agreement "
            f"{mine.agreement:.4f}")
