"""The backend table of `bench/victim.py`: every way to run a victim's forward pass, per model shape.

See `bench/victim.py`'s docstring for what is measured and how to read it. This module builds
the workloads (a model, its tokenizer and real programs per shape), the candidates (the
victim's backends plus bf16 copies and ONNX Runtime, which is measured here but not offered as
a backend), and times them round-robin on the victim's own bucketed mini-batches.
"""
from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.backends import make_forward
from engine.models import SCRATCH_SIZES, ScratchSize, scratch_config, train_bpe_tokenizer
from engine.victim import encode_codes, pad_batch

STUDENT = ScratchSize(hidden=96, layers=12, heads=8, ffn=64, vocab=1000)  # Compressor's 3 MB CodeBERT student
SHAPES = {"small": SCRATCH_SIZES["small"], "student": STUDENT, "base": SCRATCH_SIZES["base"]}
STUDENT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "compressor-codebert-devign-3mb"
EXACT = 1e-4  # |Δp| at most this against `hf` on every program: exact up to float noise


@dataclass
class Workload:
    shape: str
    model: object
    tokenizer: object
    codes: list[str]
    max_length: int
    source: str  # where the weights and programs come from


@dataclass
class Candidate:
    name: str
    run: Callable[[dict[str, torch.Tensor]], torch.Tensor]
    setup_s: float


def cpu_flags() -> str:
    """The CPU's bf16-relevant instruction sets (bf16 is fast only with avx512_bf16 or AMX)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    found = sorted(flag for flag in flags if flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"))
    return ", ".join(found) or "none of avx2/avx512/amx"


def workloads(shapes: list[str], codes: list[str], training: list[str], *, model_dir: str | None,
              max_length: int, base_examples: int) -> list[Workload]:
    from transformers import RobertaForSequenceClassification

    from engine.models import load_classifier

    tokenizer = None
    out = []
    for shape in shapes:
        if shape not in SHAPES:
            raise SystemExit(f"--shapes: unknown shape {shape!r}; use {', '.join(SHAPES)}")
        if shape == "small" and model_dir:
            model, tok = load_classifier(model_dir)
            out.append(Workload(shape, model.eval(), tok, codes, max_length, f"trained victim {model_dir}, stdlib programs"))
            continue
        if shape == "student" and (STUDENT_DIR / "model.safetensors").is_file():
            from bench.shared_data import DEVIGN, devign_functions

            if DEVIGN.is_file():
                model, tok = load_classifier(STUDENT_DIR)
                functions = [code for _, _, code in devign_functions()][: len(codes)]
                out.append(Workload(shape, model.eval(), tok, functions, 512,
                                    "real 3 MB distilled CodeBERT (../shared), Devign functions"))
                continue
        if tokenizer is None:
            tokenizer = train_bpe_tokenizer(training, vocab_size=SCRATCH_SIZES["small"].vocab, max_length=max_length)
        torch.manual_seed(0)
        config = scratch_config(SHAPES[shape], vocab_size=len(tokenizer), max_length=max_length, tokenizer=tokenizer,
                                num_labels=10)
        programs = codes[:base_examples] if shape == "base" else codes
        out.append(Workload(shape, RobertaForSequenceClassification(config).eval(), tokenizer, programs, max_length,
                            "random weights, stdlib programs"))
    return out


def batches(work: Workload, batch_size: int) -> tuple[list[dict[str, torch.Tensor]], list[int], int]:
    """The victim's mini-batches (longest first, each padded to its longest), the row order, and token count."""
    encoded = encode_codes(work.tokenizer, work.codes, work.max_length)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]), reverse=True)
    chunks = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    tensors = [pad_batch(work.tokenizer, [encoded[i] for i in chunk]) for chunk in chunks]
    return tensors, order, sum(len(e["input_ids"]) for e in encoded)


def candidates(work: Workload, names: list[str], example: dict[str, torch.Tensor], tmp: Path) -> list[Candidate]:
    cpu = torch.device("cpu")
    out = []
    for name in names:
        started = time.perf_counter()
        if name in ("hf-eager", "hf", "fast", "compile"):
            run = make_forward(work.model, name, cpu)
        elif name in ("hf bf16", "fast bf16"):
            run = make_forward(copy.deepcopy(work.model).to(torch.bfloat16), name.split()[0], cpu)
        elif name == "onnx":
            run = onnx_runner(work, example, tmp)
            if run is None:
                print("  onnx: skipped (pip install -e '.[onnx]' for onnxruntime and onnx)")
                continue
        else:
            raise SystemExit(f"--backends: unknown {name!r}")
        out.append(Candidate(name, run, time.perf_counter() - started))
    return out


def onnx_runner(work: Workload, example: dict[str, torch.Tensor], tmp: Path):
    """The model exported to ONNX (TorchScript exporter, dynamic batch and length), its attention,
    LayerNorm and GELU fused by ONNX Runtime's transformer optimizer, on the CPU provider."""
    try:
        import onnxruntime
        from onnxruntime.transformers import optimizer
    except ImportError:
        return None
    path = tmp / f"{work.shape}.onnx"
    names = list(example)
    dynamic = {name: {0: "batch", 1: "length"} for name in names} | {"logits": {0: "batch"}}
    model = copy.deepcopy(work.model)
    model.config._attn_implementation = "eager"  # the exporter traces matmul/softmax, which the optimizer fuses
    with torch.inference_mode():
        torch.onnx.export(model, tuple(example[name] for name in names), str(path), dynamo=False, input_names=names,
                          output_names=["logits"], dynamic_axes=dynamic, opset_version=17)
    config = work.model.config
    fused = optimizer.optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size, opt_level=1)
    fused_path = tmp / f"{work.shape}-fused.onnx"
    fused.save_model_to_file(str(fused_path))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(fused_path), options, providers=["CPUExecutionProvider"])
    return lambda tensors: torch.from_numpy(session.run(None, {name: tensors[name].numpy() for name in names})[0])


def measure(work: Workload, names: list[str], batch_size: int, repeat: int) -> None:
    parameters = sum(p.numel() for p in work.model.parameters())
    config = work.model.config
    tensors, order, tokens = batches(work, batch_size)
    padded = sum(t["input_ids"].numel() for t in tensors)
    print(f"\n[{work.shape}] {config.num_hidden_layers} layers x {config.hidden_size} hidden, "
          f"{config.num_attention_heads} heads, FFN {config.intermediate_size}; {parameters / 1e6:.2f} M parameters; "
          f"{work.source}")
    print(f"  {len(work.codes)} programs, {tokens} tokens (max length {work.max_length}), "
          f"{padded / tokens - 1:.0%} padding in {len(tensors)} bucketed batches of {batch_size}")
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        chosen = candidates(work, names, tensors[0], Path(tmp))
        with torch.inference_mode():
            for candidate in chosen:  # warm-up; compile pays its compilation here (every batch shape once)
                started = time.perf_counter()
                for batch in tensors:
                    candidate.run(batch)
                if candidate.name == "compile":
                    candidate.setup_s += time.perf_counter() - started
            best: dict[str, tuple[float, float]] = {}
            logits: dict[str, np.ndarray] = {}
            for _ in range(repeat):  # round-robin: a load spike slows every backend alike
                for candidate in chosen:
                    wall, cpu = time.perf_counter(), time.process_time()
                    out = [candidate.run(batch).float() for batch in tensors]
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    was = best.get(candidate.name, (float("inf"), float("inf")))
                    best[candidate.name] = (min(was[0], wall), min(was[1], cpu))
                    logits[candidate.name] = torch.cat(out).double().numpy()
    reference = logits.get("hf")
    if reference is None:
        reference = next(iter(logits.values()))
    ref_wall, ref_cpu = best.get("hf", next(iter(best.values())))
    print(f"  {'backend':<10} {'setup s':>8} {'seq/s wall':>11} {'seq/s CPU':>10} {'x hf (CPU)':>10} "
          f"{'max |Δp|':>9} {'max |Δlogit|':>12}  exact")
    for candidate in chosen:
        wall, cpu = best[candidate.name]
        mine = logits[candidate.name]
        dp = float(np.abs(_softmax(mine) - _softmax(reference)).max())
        dl = float(np.abs(mine - reference).max())
        print(f"  {candidate.name:<10} {candidate.setup_s:>8.1f} {len(order) / wall:>11.1f} {len(order) / cpu:>10.1f} "
              f"{ref_cpu / cpu:>9.2f}x {dp:>9.1e} {dl:>12.1e}  {'yes' if dp <= EXACT else 'no'}")


def _softmax(logits: np.ndarray) -> np.ndarray:
    if logits.shape[1] == 1:
        positive = 1 / (1 + np.exp(-logits[:, 0]))
        return np.stack([1 - positive, positive], axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
